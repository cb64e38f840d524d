"""SourceTree listings: each directory's entries are exactly the ones ``lstat`` shows."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from builder.context import BuildContext
from builder.fileops.sources import SourceTree, context_tree
from builder.patterns import PatternMatcher

IGNORED = ["secret.txt", "build/", "!build/keep", "logs/*.log", "deep", "**/*.tmp"]


def _context(root: Path, patterns: list[str]) -> SourceTree:
    return context_tree(BuildContext(root, PatternMatcher(patterns)))


def _make_tree(root: Path) -> None:
    for rel in (
        "secret.txt",
        "a.txt",
        "build/out.o",
        "build/keep/k.txt",
        "logs/x.log",
        "logs/x.txt",
        "deep/inner/d.txt",
        "src/b.tmp",
        "src/b.txt",
    ):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rel)


def _one_by_one(tree: SourceTree, directory: Path) -> list[tuple[str, int]]:
    """The listing :meth:`SourceTree.entries` must give, from :meth:`SourceTree.lstat`."""
    found = []
    for name in sorted(os.listdir(directory), key=os.fsencode):
        info = tree.lstat(directory / name)
        if info is not None:
            found.append((name, info.st_ino))
    return found


def test_entries_show_what_lstat_shows_in_every_directory(tmp_path: Path) -> None:
    _make_tree(tmp_path)
    tree = _context(tmp_path, IGNORED)
    for directory in [tmp_path, *(path for path in tmp_path.rglob("*") if path.is_dir())]:
        listed = [(name, info.st_ino) for name, info in tree.entries(directory)]
        assert listed == _one_by_one(tree, directory), directory
        assert [(name, info.st_ino) for name, info in tree.entries(str(directory))] == listed


def test_ignore_rules_hide_entries_and_everything_below_an_excluded_directory(tmp_path: Path) -> None:
    _make_tree(tmp_path)
    tree = _context(tmp_path, IGNORED)

    def names(rel: str) -> list[str]:
        return [name for name, _info in tree.entries(tmp_path / rel)]

    assert names("") == ["a.txt", "build", "logs", "src"]
    assert names("build") == ["keep"]  # excluded but kept: a ! pattern reaches below it
    assert names("build/keep") == ["k.txt"]
    assert names("logs") == ["x.txt"]
    assert names("src") == ["b.txt"]
    assert names("deep") == [] and names("deep/inner") == []  # excluded, not kept


def test_entries_come_in_byte_order_also_for_names_that_are_not_utf8(tmp_path: Path) -> None:
    # U+FFFD is EF BF BD in UTF-8, so it sorts before the lone byte FF, whose text form
    # (the surrogate U+DCFF) sorts before it as text.
    for name in (b"\xff", "\ufffd".encode(), b"b", b"A"):
        (tmp_path / os.fsdecode(name)).write_text("")
    listed = [os.fsencode(name) for name, _info in SourceTree(tmp_path).entries(tmp_path)]
    assert listed == [b"A", b"b", "\ufffd".encode(), b"\xff"]


def test_an_entry_gone_between_listing_and_lstat_is_left_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a").write_text("")
    (tmp_path / "b").write_text("")
    real_listdir = os.listdir

    def listdir_then_remove(path: str) -> list[str]:
        names = real_listdir(path)
        (tmp_path / "a").unlink()
        return names

    monkeypatch.setattr(os, "listdir", listdir_then_remove)
    assert [name for name, _info in SourceTree(tmp_path).entries(tmp_path)] == ["b"]


def test_a_context_without_patterns_filters_nothing(tmp_path: Path) -> None:
    _make_tree(tmp_path)
    tree = _context(tmp_path, ["", "  "])  # blank patterns are dropped
    assert [name for name, _info in tree.entries(tmp_path)] == sorted(os.listdir(tmp_path))
    assert tree.lstat(tmp_path / "deep/inner/d.txt") is not None
