"""builder.context: ignore-file choice, the filtered walk, in-root resolution, COPY globs."""

from __future__ import annotations

import os
import re
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from builder.context import BuildContext, EntryKind, contains_wildcards
from builder.errors import ContextError
from builder.patterns import PatternMatcher


def make_tree(root: Path, files: list[str], dirs: tuple[str, ...] = ()) -> None:
    for directory in dirs:
        (root / directory).mkdir(parents=True, exist_ok=True)
    for name in files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(name)


def context_with(root: Path, patterns: list[str]) -> BuildContext:
    return BuildContext(root, PatternMatcher(patterns))


def raises_exactly(message: str) -> AbstractContextManager[Any]:
    """Expect a ContextError whose whole message is ``message``."""
    return pytest.raises(ContextError, match=f"^{re.escape(message)}$")


def walked(context: BuildContext, prefix: str = "") -> list[tuple[str, str]]:
    return [(str(entry.kind), entry.path) for entry in context.walk(prefix)]


# --- choosing the ignore file ----------------------------------------------------------


def test_dockerfile_specific_ignore_file_wins(tmp_path: Path) -> None:
    make_tree(tmp_path, ["foo", "bar", "Dockerfile", "build/Dockerfile.prod"])
    (tmp_path / ".dockerignore").write_text("foo\n")
    (tmp_path / "build" / "Dockerfile.prod.dockerignore").write_text("bar\n")

    specific = BuildContext.open(tmp_path, tmp_path / "build" / "Dockerfile.prod")
    assert specific.ignore_file == tmp_path / "build" / "Dockerfile.prod.dockerignore"
    assert (specific.is_excluded("bar"), specific.is_excluded("foo")) == (True, False)

    default = BuildContext.open(tmp_path, tmp_path / "Dockerfile")
    assert default.ignore_file == tmp_path / ".dockerignore"
    assert (default.is_excluded("bar"), default.is_excluded("foo")) == (False, True)


def test_dockerfile_outside_the_context_brings_its_ignore_file(tmp_path: Path) -> None:
    context_root = tmp_path / "ctx"
    make_tree(context_root, ["keep", "drop"])
    (tmp_path / "app.Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "app.Dockerfile.dockerignore").write_text("drop\n")
    context = BuildContext.open(context_root, tmp_path / "app.Dockerfile")
    assert walked(context) == [("file", "keep")]


def test_no_ignore_file_keeps_everything(tmp_path: Path) -> None:
    make_tree(tmp_path, ["a", "d/b"])
    context = BuildContext.open(tmp_path, None)
    assert context.ignore_file is None
    assert walked(context) == [("file", "a"), ("dir", "d"), ("file", "d/b")]


def test_bad_ignore_file_is_a_context_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / ".dockerignore").write_text("ok\n!\n")
    with pytest.raises(ContextError, match=r'^\.dockerignore: illegal exclusion pattern: "!"$'):
        BuildContext.open(tmp_path, tmp_path / "Dockerfile")


def test_root_must_be_a_directory(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with raises_exactly(f"build context {tmp_path / 'file'} is not a directory"):
        BuildContext(tmp_path / "file", PatternMatcher([]))


# --- the filtered walk -----------------------------------------------------------------


def test_walk_is_depth_first_in_per_directory_name_order(tmp_path: Path) -> None:
    # Go's filepath.Walk order: "foo-x" sorts after "foo" but after foo's children too.
    make_tree(tmp_path, ["foo/bar", "foo-x", "Zed", "a"])
    assert walked(context_with(tmp_path, [])) == [
        ("file", "Zed"),
        ("file", "a"),
        ("dir", "foo"),
        ("file", "foo/bar"),
        ("file", "foo-x"),
    ]


def test_walk_lists_excluded_directory_only_before_a_reincluded_entry(tmp_path: Path) -> None:
    make_tree(tmp_path, ["foo/bar/baz/x", "foo/bar/baz/y", "foo/other", "empty/z"])
    context = context_with(tmp_path, ["foo", "empty", "!foo/bar/baz/x", "!empty/nothing"])
    assert walked(context) == [
        ("dir", "foo"),
        ("dir", "foo/bar"),
        ("dir", "foo/bar/baz"),
        ("file", "foo/bar/baz/x"),
    ]
    assert context.exists("foo/bar")
    assert not context.exists("empty")
    assert not context.exists("foo/other")


def test_walk_never_reads_a_subtree_nothing_could_be_reincluded_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_tree(tmp_path, ["node_modules/x/y", "src/a", "src/cache/c"])
    listed: list[str] = []
    real_listdir = os.listdir

    def recording_listdir(path: str | os.PathLike[str]) -> list[str]:
        listed.append(os.path.relpath(path, tmp_path))
        return real_listdir(path)

    monkeypatch.setattr(os, "listdir", recording_listdir)
    context = context_with(tmp_path, ["node_modules", "src/*", "!src/a"])
    assert walked(context) == [("dir", "src"), ("file", "src/a")]
    assert listed == [".", "src"]


def test_walk_lists_symlinks_without_following_them(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    make_tree(outside, ["secret"])
    root = tmp_path / "ctx"
    root.mkdir()
    (root / "link").symlink_to(outside)
    entries = list(context_with(root, []).walk())
    assert [(entry.path, entry.kind) for entry in entries] == [("link", EntryKind.SYMLINK)]
    assert entries[0].stat.st_ino == os.lstat(root / "link").st_ino


def test_walk_below_a_prefix(tmp_path: Path) -> None:
    make_tree(tmp_path, ["app/src/main.py", "app/src/main.pyc", "other"])
    context = context_with(tmp_path, ["**/*.pyc"])
    assert walked(context, "app") == [("dir", "app/src"), ("file", "app/src/main.py")]
    with raises_exactly("other: not a directory in the build context"):
        list(context.walk("other"))
    with raises_exactly("missing: not found in build context"):
        list(context.walk("missing"))


def test_root_is_never_excluded(tmp_path: Path) -> None:
    make_tree(tmp_path, ["a", "keep"])
    context = context_with(tmp_path, ["**", "!keep"])
    assert not context.is_excluded(".")
    assert context.is_excluded("a")
    assert context.exists(".")
    assert walked(context) == [("file", "keep")]


def test_walk_fails_on_a_pattern_that_fails_when_matching(tmp_path: Path) -> None:
    make_tree(tmp_path, ["x"])
    with pytest.raises(ContextError, match=r"^syntax error in pattern$"):
        list(context_with(tmp_path, ["[Local-Only]/"]).walk())


# --- resolving paths inside the root ---------------------------------------------------


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("..", "..: path escapes the build context"),
        ("../x", "../x: path escapes the build context"),
        ("a/../../x", "a/../../x: path escapes the build context"),
        ("/etc/passwd", "/etc/passwd: absolute paths are not allowed in the build context"),
    ],
)
def test_resolve_refuses_paths_outside_the_root(tmp_path: Path, path: str, message: str) -> None:
    with raises_exactly(message):
        context_with(tmp_path, []).resolve(path)


def test_resolve_refuses_a_symlink_climbing_out_of_the_root(tmp_path: Path) -> None:
    root = tmp_path / "ctx"
    make_tree(tmp_path, ["outside/secret"], dirs=("ctx/sub",))
    (root / "sub" / "escape").symlink_to("../../outside")
    context = context_with(root, [])
    for path in ("sub/escape", "sub/escape/secret"):
        with raises_exactly(f"{path}: a symlink leads out of the build context"):
            context.resolve(path)
    with raises_exactly("sub/escape/secret: a symlink leads out of the build context"):
        context.open_file("sub/escape/secret")


def test_absolute_symlink_target_is_read_inside_the_root(tmp_path: Path) -> None:
    make_tree(tmp_path, ["etc/passwd"])
    (tmp_path / "abs").symlink_to("/etc/passwd")
    context = context_with(tmp_path, [])
    assert context.resolve("abs") == tmp_path.resolve() / "etc" / "passwd"
    with context.open_file("abs") as opened:
        assert opened.read() == b"etc/passwd"


def test_symlink_chain_and_loop(tmp_path: Path) -> None:
    make_tree(tmp_path, ["real/file"])
    (tmp_path / "one").symlink_to("two/file")
    (tmp_path / "two").symlink_to("real")
    (tmp_path / "loop_a").symlink_to("loop_b")
    (tmp_path / "loop_b").symlink_to("loop_a")
    context = context_with(tmp_path, [])
    assert context.resolve("one") == tmp_path.resolve() / "real" / "file"
    assert context.resolve("./real/../missing") == tmp_path.resolve() / "missing"
    with raises_exactly("loop_a: too many levels of symbolic links"):
        context.resolve("loop_a")


def test_open_file_refuses_excluded_targets_and_links(tmp_path: Path) -> None:
    make_tree(tmp_path, ["secret.key", "public", "dir/file"])
    (tmp_path / "to_secret").symlink_to("secret.key")
    (tmp_path / "ignored_link").symlink_to("public")
    context = context_with(tmp_path, ["*.key", "ignored_link"])
    for path in ("secret.key", "to_secret", "ignored_link"):
        with raises_exactly(f"{path}: not found in build context (excluded by the ignore file)"):
            context.open_file(path)
    with raises_exactly("dir: not a regular file in the build context"):
        context.open_file("dir")
    with raises_exactly("missing: not found in build context"):
        context.open_file("missing")


# --- COPY source wildcards -------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [("a*b", True), ("a?", True), ("x[ab]", True), ("a\\*b", False), ("plain/path", False)],
)
def test_contains_wildcards(path: str, expected: bool) -> None:
    assert contains_wildcards(path) is expected


@pytest.fixture
def glob_context(tmp_path: Path) -> BuildContext:
    make_tree(
        tmp_path,
        [
            "a.txt",
            "b.txt",
            ".hidden.txt",
            "c.md",
            "star*name",
            "src/one/main.py",
            "src/two/main.py",
            "src/two/skip.pyc",
            "src/main.py",
            "secret/keep.txt",
            "secret/drop.txt",
            "real/inner.txt",
        ],
    )
    (tmp_path / "linked").symlink_to("real")
    return context_with(tmp_path, ["c.md", "secret", "!secret/keep.txt", "**/*.pyc"])


@pytest.mark.parametrize(
    ("pattern", "matches"),
    [
        ("*.txt", [".hidden.txt", "a.txt", "b.txt"]),
        ("/[ab].txt", ["a.txt", "b.txt"]),
        ("?.*", ["a.txt", "b.txt"]),
        ("*.md", []),
        ("src/*/main.py", ["src/one/main.py", "src/two/main.py"]),
        ("**/main.py", ["src/main.py"]),
        ("src/two/*", ["src/two/main.py"]),
        ("secre?/*", ["secret/keep.txt"]),
        ("sec*", ["secret"]),
        ("linked/*", []),
        ("lin*", ["linked"]),
        ("star\\*na*", ["star*name"]),
        ("a.txt", ["a.txt"]),
        ("c.md", []),
        ("missing", []),
        (".", ["."]),
    ],
)
def test_glob(glob_context: BuildContext, pattern: str, matches: list[str]) -> None:
    assert glob_context.glob(pattern) == matches


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("../*", "../*: path escapes the build context"),
        ("/a/../../b*", "/a/../../b*: path escapes the build context"),
        ("a[", "a[: syntax error in pattern"),
    ],
)
def test_glob_refuses(glob_context: BuildContext, pattern: str, message: str) -> None:
    with raises_exactly(message):
        glob_context.glob(pattern)
