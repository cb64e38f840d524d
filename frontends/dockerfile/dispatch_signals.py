"""Which STOPSIGNAL values a Dockerfile may give, by BuildKit's rule.

BuildKit checks the expanded value with moby's ``signal.ParseSignal`` for Linux: a base-10
integer other than zero (Go's ``strconv.Atoi``: an optional sign, digits only, within 64
bits; a negative number passes), or a Linux signal name in any case, with or without one
``SIG`` prefix (``SIGTERM``, ``term``, ``SIGRTMIN+3``, ``RTMAX-1``). The image keeps the
value as written; the number is only the proof that it names a signal.
"""

from __future__ import annotations

import re

_SIGRTMIN = 34
_SIGRTMAX = 64

#: moby's Linux signal table (amd64, arm64 and the other non-MIPS architectures).
_LINUX_SIGNALS: dict[str, int] = {
    "ABRT": 6,
    "ALRM": 14,
    "BUS": 7,
    "CHLD": 17,
    "CLD": 17,
    "CONT": 18,
    "FPE": 8,
    "HUP": 1,
    "ILL": 4,
    "INT": 2,
    "IO": 29,
    "IOT": 6,
    "KILL": 9,
    "PIPE": 13,
    "POLL": 29,
    "PROF": 27,
    "PWR": 30,
    "QUIT": 3,
    "SEGV": 11,
    "STKFLT": 16,
    "STOP": 19,
    "SYS": 31,
    "TERM": 15,
    "TRAP": 5,
    "TSTP": 20,
    "TTIN": 21,
    "TTOU": 22,
    "URG": 23,
    "USR1": 10,
    "USR2": 12,
    "VTALRM": 26,
    "WINCH": 28,
    "XCPU": 24,
    "XFSZ": 25,
    "RTMIN": _SIGRTMIN,
    **{f"RTMIN+{offset}": _SIGRTMIN + offset for offset in range(1, 16)},
    **{f"RTMAX-{offset}": _SIGRTMAX - offset for offset in range(1, 15)},
    "RTMAX": _SIGRTMAX,
}

#: What Go's strconv.Atoi reads: ASCII digits after an optional sign, nothing else.
_GO_INTEGER = re.compile(r"[+-]?[0-9]+")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def parse_signal(text: str) -> int | None:
    """The signal number ``text`` names, or None when BuildKit rejects it
    (``invalid signal: <text>``)."""
    if _GO_INTEGER.fullmatch(text):
        number = int(text)
        if _INT64_MIN <= number <= _INT64_MAX:
            return number if number != 0 else None
        # Out of Atoi's range: Go goes on to look the text up as a name, which fails.
        return None
    name = text.upper()
    return _LINUX_SIGNALS.get(name[3:] if name.startswith("SIG") else name)
