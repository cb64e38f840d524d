"""``(did you mean X?)`` hints for misspelt names, as BuildKit adds them to its errors.

BuildKit suggests the closest known name by edit distance when a flag, an instruction, a
mount key or a target stage is unknown; the hint is part of the message users see.
"""

from __future__ import annotations

from collections.abc import Iterable


def edit_distance(left: str, right: str) -> int:
    """The Levenshtein distance: single-character inserts, deletes and substitutions."""
    previous = list(range(len(right) + 1))
    for row, left_char in enumerate(left, start=1):
        current = [row]
        for column, right_char in enumerate(right, start=1):
            cost = 0 if left_char == right_char else 1
            current.append(min(previous[column] + 1, current[column - 1] + 1, previous[column - 1] + cost))
        previous = current
    return previous[-1]


def closest(value: str, options: Iterable[str], *, case_sensitive: bool = False) -> str | None:
    """The option nearest to ``value``, or None when nothing is near enough to be a typo.

    "Near enough" is at most two edits, or a third of the word for longer words.
    """
    if not value:
        return None
    needle = value if case_sensitive else value.lower()
    best: str | None = None
    best_distance = max(2, len(value) // 3) + 1
    for option in options:
        candidate = option if case_sensitive else option.lower()
        if candidate == needle:
            continue
        distance = edit_distance(needle, candidate)
        if distance < best_distance:
            best, best_distance = option, distance
    return best


def did_you_mean(value: str, options: Iterable[str], *, case_sensitive: bool = False) -> str:
    """`` (did you mean X?)`` to append to an error message, or an empty string."""
    match = closest(value, options, case_sensitive=case_sensitive)
    return f" (did you mean {match}?)" if match else ""
