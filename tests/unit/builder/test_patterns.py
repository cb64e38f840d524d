"""builder.patterns: reading ignore files, deciding exclusion, and safe walk pruning."""

from __future__ import annotations

import pytest

from builder.errors import ContextError
from builder.patterns import PatternMatcher, clean_path, read_ignore_file


@pytest.mark.parametrize(
    ("path", "cleaned"),
    [
        ("", "."),
        (".", "."),
        ("a/../b", "b"),
        ("docs/", "docs"),
        ("./a//b/./c", "a/b/c"),
        ("a/../..", ".."),
        ("/..", "/"),
        ("/a/b/../c", "/a/c"),
        ("../../x", "../../x"),
    ],
)
def test_clean_path_is_go_path_clean(path: str, cleaned: str) -> None:
    assert clean_path(path) == cleaned


def test_read_ignore_file_handles_bom_crlf_and_column_one_comments() -> None:
    text = "\ufeff# comment\r\n  # not a comment\r\nbuild/\r\n/\r\n!/keep/./me\r\n\r\n"
    assert read_ignore_file(text) == ["# not a comment", "build", "/", "!keep/me"]


def test_read_ignore_file_trims_go_whitespace_only() -> None:
    # U+001C is whitespace to Python's str.strip() but not to Go's strings.TrimSpace.
    assert read_ignore_file("\u00a0a\u3000\n\x1cb\n") == ["a", "\x1cb"]


def test_parent_directory_match_excludes_children() -> None:
    matcher = PatternMatcher(["docs"])
    assert matcher.excluded("docs")
    assert matcher.excluded("docs/a/b.md")
    assert not matcher.excluded("docsy/a")


def test_last_matching_pattern_wins() -> None:
    matcher = PatternMatcher(["*.md", "!README*.md", "README.secret.md"])
    assert matcher.excluded("CHANGES.md")
    assert not matcher.excluded("README.md")
    assert matcher.excluded("README.secret.md")
    assert not matcher.excluded("src/CHANGES.md")


def test_double_star_inside_a_name_needs_a_slash_before_the_rest() -> None:
    # patternmatcher turns "a**b" into a(.*/)?b: "a/x/b" and "ab", never "axb".
    matcher = PatternMatcher(["a**b"])
    assert matcher.excluded("ab")
    assert matcher.excluded("a/x/b")
    assert not matcher.excluded("axb")


def test_regex_metacharacters_and_caret_are_literal() -> None:
    matcher = PatternMatcher(["a^b", "x.y", "[[]z"])
    assert matcher.excluded("a^b")
    assert not matcher.excluded("xzy")
    assert matcher.excluded("[z")


def test_newline_in_a_name_is_matched_by_stars() -> None:
    assert PatternMatcher(["**/x"]).excluded("a\nb/x")
    assert PatternMatcher(["a*"]).excluded("a\nb")


def test_patterns_are_cleaned_and_exclusions_counted() -> None:
    matcher = PatternMatcher(["  docs/ ", "", "!./docs/keep"])
    assert [(pattern.text, pattern.exclusion) for pattern in matcher.patterns] == [
        ("docs", False),
        ("docs/keep", True),
    ]
    assert matcher.has_exclusions


def test_no_patterns_exclude_nothing() -> None:
    matcher = PatternMatcher([])
    assert not matcher.excluded("anything")
    assert not matcher.dir_may_contain_included("anything")


def test_reversed_range_fails_every_match_not_construction() -> None:
    matcher = PatternMatcher(["ok", "[z-a]"])
    for _ in range(2):
        with pytest.raises(ContextError, match=r"^syntax error in pattern$"):
            matcher.excluded("ok")


@pytest.mark.parametrize("pattern", ["[", "a[", "[]a]", "[x-]", "\\", "[a-b-c]"])
def test_malformed_pattern_is_refused_when_built(pattern: str) -> None:
    with pytest.raises(ContextError, match=r"^syntax error in pattern$"):
        PatternMatcher([pattern])


@pytest.mark.parametrize(
    ("patterns", "directory", "expected"),
    [
        (["foo"], "foo", False),
        (["foo", "!foo/bar"], "foo", True),
        (["foo", "!foo/bar"], "foo/baz", False),
        (["foo", "!foo/bar", "foo/bar/baz"], "foo/bar/baz", False),
        (["foo", "!foo/bar", "foo/bar/baz", "!foo/bar/baz/x"], "foo/bar/baz", True),
        (["foo", "!foo"], "foo", False),
        (["*", "!*/keep"], "src", True),
        (["*", "!*/keep"], "src/sub", False),
        (["**", "!**/keep"], "a/b/c", True),
        (["build/**", "!build/assets/**"], "build", True),
        (["build/**", "!build/assets/**"], "build/cache", False),
        (["foo*", "!foo/bar2"], "foo2", False),
        (["x", "!x/[ab]?/y"], "x/a1", True),
        (["x", "!x/[ab]?/y"], "x/c1", False),
        (["x", "!x/a**b"], "x/aq", True),
    ],
)
def test_dir_may_contain_included(patterns: list[str], directory: str, expected: bool) -> None:
    assert PatternMatcher(patterns).dir_may_contain_included(directory) is expected
