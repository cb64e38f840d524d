"""Go's text formats that BuildKit's output shows: ``%q`` strings and lists, durations.

Image history (``created_by``) is written by BuildKit with Go's fmt verbs, so matching
its text means writing strings the way ``strconv.Quote`` does and durations the way
``time.Duration.String`` does; HEALTHCHECK flags are read by ``time.ParseDuration``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache

from builder.errors import DockerfileError

_ESCAPES = {"\a": r"\a", "\b": r"\b", "\f": r"\f", "\n": r"\n", "\r": r"\r", "\t": r"\t", "\v": r"\v"}


def go_quote(text: str) -> str:
    """``strconv.Quote``: double quotes, backslash escapes, printable Unicode kept."""
    out = ['"']
    for char in text:
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif char.isprintable() or char == " ":
            out.append(char)
        elif ord(char) < 0x80:
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) <= 0xFFFF:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    out.append('"')
    return "".join(out)


def go_quoted_list(items: Iterable[str]) -> str:
    """``fmt.Sprintf("%q", []string{...})``: ``["a" "b"]``."""
    return "[" + " ".join(go_quote(item) for item in items) + "]"


def go_list(items: Iterable[str]) -> str:
    """``fmt.Sprintf("%v", []string{...})``: ``[a b]``."""
    return "[" + " ".join(items) + "]"


_UNITS_NS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}


@cache
def _duration_part() -> re.Pattern[str]:
    """One ``1.5s`` of a Go duration: compiled on the first duration, not at import."""
    return re.compile(r"(\d*\.?\d*)(ns|us|µs|μs|ms|s|m|h)")


def parse_go_duration(text: str) -> int:
    """``time.ParseDuration`` in nanoseconds: ``1h30m``, ``1.5s``, ``0``, ``-2ms``."""
    body = text
    sign = 1
    if body[:1] in "+-" and body:
        sign = -1 if body[0] == "-" else 1
        body = body[1:]
    if body == "0":
        return 0
    if not body:
        raise DockerfileError(f'time: invalid duration "{text}"')
    total = 0.0
    position = 0
    while position < len(body):
        match = _duration_part().match(body, position)
        if match is None or match.group(1) in ("", "."):
            raise DockerfileError(f'time: invalid duration "{text}"')
        total += float(match.group(1)) * _UNITS_NS[match.group(2)]
        position = match.end()
    return sign * round(total)


def format_go_duration(nanoseconds: int) -> str:
    """``time.Duration.String``: ``1m30s``, ``500ms``, ``0s``."""
    if nanoseconds == 0:
        return "0s"
    sign = "-" if nanoseconds < 0 else ""
    value = abs(nanoseconds)
    if value < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if value >= size:
                return sign + _decimal(value, size) + unit
    hours, rest = divmod(value, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    text = _decimal(rest, 1_000_000_000) + "s"
    if hours or minutes:
        text = f"{minutes}m" + text
    if hours:
        text = f"{hours}h" + text
    return sign + text


def _decimal(value: int, unit: int) -> str:
    whole, fraction = divmod(value, unit)
    if not fraction:
        return str(whole)
    digits = len(str(unit)) - 1
    return f"{whole}.{fraction:0{digits}d}".rstrip("0")
