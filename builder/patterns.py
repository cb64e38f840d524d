"""``.dockerignore`` patterns: reading the file and deciding which context paths are ignored.

The rules are moby/patternmatcher's, which BuildKit and docker use:

* patterns apply in order and a ``!`` pattern re-includes; a path is excluded when the last
  pattern that matches it *or any of its parent directories* is not a ``!`` pattern (the
  ``MatchesOrParentMatches`` rule), so ``docs`` excludes ``docs/README.md``;
* ``*``, ``?``, ``[...]``, ``[^...]`` and ``\\`` escapes as in Go's ``filepath.Match``;
  ``**`` spans directories; everything else is literal.

Every pattern is compiled once, and all of them together into one regex whose alternatives
run from the last pattern to the first, so one ``fullmatch`` finds the deciding pattern.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from builder._pattern_syntax import (
    BAD_PATTERN,
    Token,
    can_match_below,
    has_reversed_range,
    to_regex,
    tokenize,
)
from builder.errors import ContextError
from builder.lazyclasses import dataclass

#: What Go's ``strings.TrimSpace`` strips (``unicode.IsSpace``). Python's ``str.strip()``
#: would also strip U+001C..U+001F, which Go keeps.
GO_WHITESPACE = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)

_UTF8_BOM = "\ufeff"


def clean_path(path: str) -> str:
    """Go's ``path.Clean``: the shortest equivalent slash path, purely lexically.

    ``a/../b`` → ``b``, ``docs/`` → ``docs``, ``/..`` → ``/``, ``""`` → ``.``.
    """
    rooted = path.startswith("/")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(part)
    cleaned = "/".join(parts)
    if rooted:
        return "/" + cleaned
    return cleaned or "."


def read_ignore_file(text: str) -> list[str]:
    """The pattern list of a ``.dockerignore`` file, as moby's ``ignorefile.ReadAll`` reads it.

    Lines beginning with ``#`` in column 1 are comments; lines are trimmed and empty ones
    dropped; a leading ``!`` is kept while the rest is trimmed again and path-cleaned; a
    leading ``/`` is removed (patterns are relative to the context root); a BOM opening the
    file is dropped. A lone ``!`` is passed through: :class:`PatternMatcher` rejects it.
    """
    patterns: list[str] = []
    if text.startswith(_UTF8_BOM):
        text = text[len(_UTF8_BOM) :]
    for raw_line in text.split("\n"):
        line = raw_line.removesuffix("\r")
        if line.startswith("#"):
            continue
        pattern = line.strip(GO_WHITESPACE)
        if not pattern:
            continue
        inverted = pattern.startswith("!")
        if inverted:
            pattern = pattern[1:].strip(GO_WHITESPACE)
        if pattern:
            pattern = clean_path(pattern)
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern[1:]
        patterns.append("!" + pattern if inverted else pattern)
    return patterns


@dataclass(frozen=True)
class IgnorePattern:
    """One cleaned pattern: its text without the ``!``, and whether it re-includes."""

    text: str
    exclusion: bool
    tokens: tuple[Token, ...]


class PatternMatcher:
    """Decides whether a context path is ignored, and whether a walk may skip a directory.

    Raises :class:`ContextError` for a pattern ``filepath.Match`` rejects
    (``syntax error in pattern``) and for a lone ``!``. As upstream, a reversed class range
    such as ``[Local-Only]`` is accepted here and fails every later match instead.
    """

    def __init__(self, patterns: Sequence[str]) -> None:
        self.patterns: tuple[IgnorePattern, ...] = tuple(
            pattern for pattern in map(_parse_pattern, patterns) if pattern is not None
        )
        self.has_exclusions = any(pattern.exclusion for pattern in self.patterns)
        self._late_error = any(has_reversed_range(pattern.tokens) for pattern in self.patterns)
        self._decider: re.Pattern[str] | None = None
        self._last_index = len(self.patterns) - 1
        if self.patterns and not self._late_error:
            # Alternative k is pattern (n-1-k); each may also match a parent directory,
            # which is the same as being followed by "/" and anything.
            alternatives = (f"({to_regex(pattern.tokens)}(?:/.*)?)" for pattern in reversed(self.patterns))
            self._decider = re.compile("|".join(alternatives), re.DOTALL)
        self._exclusion_tokens = [pattern.tokens for pattern in self.patterns if pattern.exclusion]

    def excluded(self, path: str) -> bool:
        """Whether ``path`` (slash-separated, relative to the context root) is ignored."""
        if self._late_error:
            raise ContextError(BAD_PATTERN)
        if self._decider is None:
            return False
        found = self._decider.fullmatch(path)
        if found is None or found.lastindex is None:
            return False
        deciding = self.patterns[self._last_index - (found.lastindex - 1)]
        return not deciding.exclusion

    def dir_may_contain_included(self, directory: str) -> bool:
        """Whether something strictly below ``directory`` could be kept although it is excluded.

        Only a ``!`` pattern matching a path below the directory can re-include something
        there (a ``!`` pattern matching the directory or one of its parents already lost to a
        later pattern, or the directory would not be excluded). ``False`` means a walk may
        skip the whole subtree.
        """
        if self._late_error:
            raise ContextError(BAD_PATTERN)
        return any(can_match_below(tokens, directory) for tokens in self._exclusion_tokens)


def _parse_pattern(raw_pattern: str) -> IgnorePattern | None:
    """Trim, split off ``!``, path-clean and check one pattern; ``None`` for an empty one.

    Unlike upstream, the ``!`` is split off before cleaning, so ``!./a`` means ``!a`` and
    ``!a/../b`` stays a re-include.
    """
    text = raw_pattern.strip(GO_WHITESPACE)
    if not text:
        return None
    exclusion = text.startswith("!")
    if exclusion:
        if len(text) == 1:
            raise ContextError('illegal exclusion pattern: "!"')
        text = text[1:]
    text = clean_path(text)
    return IgnorePattern(text=text, exclusion=exclusion, tokens=tokenize(text, double_star=True))
