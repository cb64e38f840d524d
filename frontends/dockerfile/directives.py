"""Finding a parser directive (``syntax``, ``check``) before parsing, as BuildKit's DetectSyntax does.

The parser proper reads only ``# key=value`` lines (:mod:`.lines`). Choosing a frontend needs
more forms, tried in order: ``#`` lines after an optional ``#!`` shebang line, then ``//``
lines, then the whole file as a JSON object with a string under the key. ``check`` accepts only
the ``#`` form (corpus README §4.2).
"""

from __future__ import annotations

import json

from builder.lazyclasses import dataclass
from frontends.dockerfile.lines import ALLOWED_DIRECTIVES, match_directive


@dataclass(frozen=True)
class FoundDirective:
    """A directive's value: ``ref`` up to the first space, the whole ``cmdline``, its 1-based line."""

    ref: str
    cmdline: str
    line: int


def _scan_lines(text: str) -> list[str]:
    """Lines as Go's ``bufio.ScanLines`` gives them: split at LF, one trailing CR dropped."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def _from_comment_block(key: str, text: str, prefix: str, first_line: int) -> FoundDirective | None:
    """Read the leading directive block written with comment ``prefix``; stop at the first other line."""
    seen: set[str] = set()
    for number, line in enumerate(_scan_lines(text), start=first_line + 1):
        found = match_directive(line, prefix)
        if found is None or found[0] not in ALLOWED_DIRECTIVES:
            return None
        name, value = found
        if name in seen:
            continue
        seen.add(name)
        if name == key:
            return FoundDirective(value.split(" ", 1)[0], value, number)
    return None


def _from_json(key: str, text: str, line: int) -> FoundDirective | None:
    try:
        document = json.loads(text)
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    value = document.get(key)
    if not isinstance(value, str):
        return None
    return FoundDirective(value, value, line)


def detect_directive(text: str, key: str = "syntax", *, other_forms: bool = True) -> FoundDirective | None:
    """The directive ``key`` of a Dockerfile, or None.

    ``other_forms`` allows the ``//`` and JSON forms (true for ``syntax``, false for ``check``).
    """
    text = text.removeprefix("\ufeff")
    first_line = 0
    head, _, rest = text.partition("\n")
    if head.startswith("#!"):
        text, first_line = rest, 1
    found = _from_comment_block(key, text, "#", first_line)
    if found is not None or not other_forms:
        return found
    found = _from_comment_block(key, text, "//", first_line)
    if found is not None:
        return found
    return _from_json(key, text, first_line)
