"""Shell-style patterns of ``${VAR#pat}``, ``${VAR%pat}`` and ``${VAR/pat/repl}``.

BuildKit turns such a pattern into a regular expression (``*`` any run, ``?`` one character,
``\\`` escapes ``*``, ``?`` and itself, no bracket classes) and applies it with Go's
``regexp``. This module does the same with Python's ``re`` and keeps the two places where the
libraries differ on Go's side: ``ReplaceAllString`` skips an empty match right after a
previous match and expands ``$0``/``${name}`` in the replacement.
"""

from __future__ import annotations

import re
from functools import lru_cache

from builder.errors import DockerfileError

# What Go's fmt prints for the rune text/scanner returns at the end of input (-1).
GO_EOF_RUNE = "\ufffd"


class PatternError(DockerfileError):
    """A pattern with an escape BuildKit does not accept (only ``\\*``, ``\\?``, ``\\\\``)."""


@lru_cache(maxsize=512)
def compile_pattern(pattern: str, greedy: bool) -> re.Pattern[str]:
    """The regex for ``pattern``; ``*`` takes the longest run when ``greedy``, else the shortest.

    ``\\}`` and ``\\/`` lose their backslash: inside ``${...}`` they only protected the
    delimiter. Callers anchor with ``match``; the regex itself is never anchored.
    """
    star = ".*" if greedy else ".*?"
    parts: list[str] = []
    # Go's text/scanner drops a byte order mark at the start of its input.
    index = 1 if pattern.startswith("\ufeff") else 0
    length = len(pattern)
    while index < length:
        char = pattern[index]
        index += 1
        if char == "*":
            parts.append(star)
        elif char == "?":
            parts.append(".")
        elif char == "\\":
            following = pattern[index] if index < length else ""
            if following in ("}", "/"):
                continue
            index += 1
            if following not in ("*", "?", "\\"):
                raise PatternError(f"invalid escape '\\{following or GO_EOF_RUNE}'")
            parts.append(re.escape(following))
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts))


def _reverse_pattern(pattern: str) -> str:
    """``pattern`` read backwards, keeping each ``\\x`` escape pair in order (``a\\*c`` → ``c\\*a``)."""
    tokens: list[str] = []
    index = 0
    last = len(pattern) - 1
    while index <= last:
        if pattern[index] == "\\" and index != last:
            tokens.append(pattern[index : index + 2])
            index += 2
        else:
            tokens.append(pattern[index])
            index += 1
    tokens.reverse()
    return "".join(tokens)


def trim_prefix(pattern: str, value: str, greedy: bool) -> str:
    """``${VAR#pat}`` (shortest) or ``${VAR##pat}`` (longest, ``greedy``)."""
    found = compile_pattern(pattern, greedy).match(value)
    return value[found.end() :] if found else value


def trim_suffix(pattern: str, value: str, greedy: bool) -> str:
    """``${VAR%pat}`` / ``${VAR%%pat}``.

    A regex cannot find the shortest match that ends at the end of the text, so, as BuildKit
    does, both the pattern and the value are reversed and the prefix rule applied.
    """
    return trim_prefix(_reverse_pattern(pattern), value[::-1], greedy)[::-1]


def replace(pattern: str, value: str, replacement: str, replace_all: bool) -> str:
    """``${VAR/pat/repl}`` (first match, replacement literal) or ``${VAR//pat/repl}``."""
    regex = compile_pattern(pattern, True)
    if not replace_all:
        found = regex.search(value)
        if found is None:
            return value
        return value[: found.start()] + replacement + value[found.end() :]
    return _replace_all_go(regex, value, replacement)


def _replace_all_go(regex: re.Pattern[str], value: str, template: str) -> str:
    """Go's ``Regexp.ReplaceAllString``: an empty match right after a match is not replaced
    (Python's ``re.sub`` replaces it), and the template is expanded per match."""
    pieces: list[str] = []
    last_match_end = 0
    search_at = 0
    end = len(value)
    while search_at <= end:
        found = regex.search(value, search_at)
        if found is None:
            break
        start, stop = found.span()
        pieces.append(value[last_match_end:start])
        if stop > last_match_end or start == 0:
            pieces.append(_expand_go_template(template, found.group()))
        last_match_end = stop
        if search_at + 1 > stop:
            search_at += 1
        else:
            search_at = stop
    pieces.append(value[last_match_end:])
    return "".join(pieces)


def _is_name_char(char: str) -> bool:
    return char == "_" or char.isalpha() or char.isdecimal()


def _expand_go_template(template: str, whole_match: str) -> str:
    """Go's ``Regexp.Expand`` for a regex whose only group is the whole match.

    ``$$`` is ``$``; ``$0``/``${0}`` the match; any other name or number is empty; a ``$`` that
    starts no name stays literal.
    """
    if "$" not in template:
        return template
    out: list[str] = []
    rest = template
    while True:
        before, dollar, after = rest.partition("$")
        out.append(before)
        if not dollar:
            return "".join(out)
        if after.startswith("$"):
            out.append("$")
            rest = after[1:]
            continue
        braced = after.startswith("{")
        body = after[1:] if braced else after
        length = 0
        while length < len(body) and _is_name_char(body[length]):
            length += 1
        if length == 0 or (braced and body[length : length + 1] != "}"):
            out.append("$")
            rest = after
            continue
        name = body[:length]
        rest = body[length + 1 :] if braced else body[length:]
        # Group 0 is the only group: every other number or name expands to nothing.
        if name == "0":
            out.append(whole_match)
