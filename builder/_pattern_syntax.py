"""The shared grammar behind ``.dockerignore`` patterns and COPY wildcards.

Both follow Go's ``filepath.Match`` syntax: ``*`` and ``?`` never cross ``/``, ``[...]`` and
``[^...]`` are classes with ranges, ``\\`` escapes the next character, and every other
character (regex metacharacters included) is literal. ``.dockerignore`` patterns add ``**``
(moby/patternmatcher): ``**/`` (or a ``**`` followed by more pattern) matches any number of
leading directories, a trailing ``**`` matches everything.

A pattern is scanned once into tokens; the tokens become a Python regex for matching and
drive a tiny NFA that answers "could this pattern match something below that directory?",
which the context walk needs to prune safely.
"""

from __future__ import annotations

import enum
import re

from builder.errors import ContextError
from builder.lazyclasses import dataclass

#: Go's ``filepath.ErrBadPattern`` wording, which users of docker already know.
BAD_PATTERN = "syntax error in pattern"


class Wildcard(enum.Enum):
    """The wildcard tokens; literal characters are plain one-character strings."""

    STAR = "*"  # any run of characters except "/"
    ANY_CHAR = "?"  # one character except "/"
    ANY_DIRS = "**/"  # zero or more whole leading directories: regex (.*/)?
    ANY_REST = "**"  # a trailing **: everything from here on


@dataclass(frozen=True)
class CharClass:
    """A ``[...]`` class: inclusive code-point ranges, possibly negated.

    A reversed range (``[z-a]``) is legal for ``filepath.Match`` (it matches nothing) but
    makes patternmatcher's regex fail to compile, so it is kept and judged by the caller.
    """

    ranges: tuple[tuple[str, str], ...]
    negated: bool

    @property
    def has_reversed_range(self) -> bool:
        return any(low > high for low, high in self.ranges)

    def matches(self, char: str) -> bool:
        inside = any(low <= char <= high for low, high in self.ranges)
        return inside != self.negated

    def to_regex(self) -> str:
        members = "".join(
            re.escape(low) if low == high else f"{re.escape(low)}-{re.escape(high)}"
            for low, high in self.ranges
            if low <= high
        )
        if not members:
            return "(?s:.)" if self.negated else "(?!)"
        return f"[{'^' if self.negated else ''}{members}]"


Token = str | Wildcard | CharClass


def tokenize(pattern: str, *, double_star: bool) -> tuple[Token, ...]:
    """Scan ``pattern``; raise ``ContextError(BAD_PATTERN)`` where ``filepath.Match`` would.

    With ``double_star`` (``.dockerignore``), ``**`` is the directory wildcard and a ``/``
    right after it is part of it; without it (COPY sources), ``**`` is just two stars.
    """
    tokens: list[Token] = []
    index = 0
    length = len(pattern)
    while index < length:
        char = pattern[index]
        if char == "\\":
            if index + 1 >= length:
                raise ContextError(BAD_PATTERN)
            tokens.append(pattern[index + 1])
            index += 2
        elif char == "[":
            char_class, index = _scan_class(pattern, index + 1)
            tokens.append(char_class)
        elif char == "?":
            tokens.append(Wildcard.ANY_CHAR)
            index += 1
        elif char == "*" and double_star and pattern.startswith("**", index):
            index += 2
            if pattern.startswith("/", index):
                index += 1
            tokens.append(Wildcard.ANY_REST if index >= length else Wildcard.ANY_DIRS)
        elif char == "*":
            tokens.append(Wildcard.STAR)
            index += 1
        else:
            tokens.append(char)
            index += 1
    return tuple(tokens)


def _scan_class(pattern: str, index: int) -> tuple[CharClass, int]:
    """Read a class body starting after ``[``; the same checks as Go's ``matchChunk``."""
    negated = index < len(pattern) and pattern[index] == "^"
    if negated:
        index += 1
    ranges: list[tuple[str, str]] = []
    while True:
        if index < len(pattern) and pattern[index] == "]" and ranges:
            return CharClass(tuple(ranges), negated), index + 1
        low, index = _class_char(pattern, index)
        high = low
        if pattern[index] == "-":
            high, index = _class_char(pattern, index + 1)
        ranges.append((low, high))


def _class_char(pattern: str, index: int) -> tuple[str, int]:
    """One possibly escaped class character; a class must not end right after it."""
    if index >= len(pattern) or pattern[index] in "-]":
        raise ContextError(BAD_PATTERN)
    if pattern[index] == "\\":
        index += 1
        if index >= len(pattern):
            raise ContextError(BAD_PATTERN)
    char = pattern[index]
    index += 1
    if index >= len(pattern):
        raise ContextError(BAD_PATTERN)
    return char, index


def has_reversed_range(tokens: tuple[Token, ...]) -> bool:
    """Whether patternmatcher would reject these tokens when it first matches with them."""
    return any(isinstance(token, CharClass) and token.has_reversed_range for token in tokens)


def to_regex(tokens: tuple[Token, ...]) -> str:
    """The regex body (no anchors) matching exactly what the tokens match.

    Meant to be compiled with ``re.DOTALL``: ``**`` covers every character, as
    patternmatcher's prefix and match-everything shortcuts do.
    """
    parts: list[str] = []
    for token in tokens:
        if isinstance(token, CharClass):
            parts.append(token.to_regex())
        elif token is Wildcard.STAR:
            parts.append("[^/]*")
        elif token is Wildcard.ANY_CHAR:
            parts.append("[^/]")
        elif token is Wildcard.ANY_DIRS:
            parts.append("(?:.*/)?")
        elif token is Wildcard.ANY_REST:
            parts.append(".*")
        else:
            parts.append(re.escape(token))
    return "".join(parts)


def literal_text(tokens: tuple[Token, ...]) -> str | None:
    """The one string the tokens match when they hold no wildcard at all, else ``None``."""
    if all(isinstance(token, str) for token in tokens):
        return "".join(token for token in tokens if isinstance(token, str))
    return None


# A position in the token list; ``inside`` is True once an ANY_DIRS group has consumed
# characters, so it can no longer be skipped without finishing on a "/".
_State = tuple[int, bool]


def can_match_below(tokens: tuple[Token, ...], directory: str) -> bool:
    """Whether the tokens could match some path strictly below ``directory``.

    Runs the pattern as an NFA over ``directory + "/"`` and reports whether any state is
    still alive with pattern left to match. It errs only towards ``True`` (a class that
    matches nothing counts as satisfiable), which costs a walk time, never correctness.
    """
    end = len(tokens)
    states = _closure({(0, False)}, tokens)
    for char in directory + "/":
        if any(index < end and tokens[index] is Wildcard.ANY_REST for index, _ in states):
            return True
        advanced: set[_State] = set()
        for index, inside in states:
            if index < end:
                advanced.update(_step(tokens, index, inside, char))
        states = _closure(advanced, tokens)
        if not states:
            return False
    return any(index < end for index, _ in states)


def _step(tokens: tuple[Token, ...], index: int, inside: bool, char: str) -> list[_State]:
    token = tokens[index]
    if token is Wildcard.ANY_DIRS:
        return [(index, True), (index + 1, False)] if char == "/" else [(index, True)]
    if token is Wildcard.STAR:
        return [(index, False)] if char != "/" else []
    if token is Wildcard.ANY_CHAR:
        return [(index + 1, False)] if char != "/" else []
    if isinstance(token, CharClass):
        return [(index + 1, False)] if token.matches(char) else []
    return [(index + 1, False)] if token == char else []


def _closure(states: set[_State], tokens: tuple[Token, ...]) -> set[_State]:
    """Add the states reachable without consuming: past a ``*`` or an unentered ``**/``."""
    pending = list(states)
    reached = set(states)
    while pending:
        index, inside = pending.pop()
        if index >= len(tokens):
            continue
        token = tokens[index]
        skippable = token is Wildcard.STAR or (token is Wildcard.ANY_DIRS and not inside)
        if skippable and (index + 1, False) not in reached:
            reached.add((index + 1, False))
            pending.append((index + 1, False))
    return reached
