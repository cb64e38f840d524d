"""In-root resolution: every symlink read relative to the root, never leaving it."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.errors import StoreError
from builder.rootpath import (
    MAX_SYMLINKS,
    ensure_dir_in_root,
    is_within,
    parent_in_root,
    resolve_in_root,
)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "usr" / "lib").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "lib").symlink_to("usr/lib")
    (root / "abs").symlink_to("/etc")
    (root / "up").symlink_to("../../../../..")
    (root / "etc" / "self").symlink_to("../etc/self-target")
    (root / "loop").symlink_to("loop")
    return root


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/", ""),
        ("", ""),
        ("/etc/passwd", "etc/passwd"),
        ("etc/./passwd", "etc/passwd"),
        ("/lib/x.so", "usr/lib/x.so"),
        ("/abs/passwd", "etc/passwd"),
        ("/up/etc", "etc"),
        ("/../../etc", "etc"),
        ("/usr/lib/../../etc", "etc"),
        ("/missing/../etc", "etc"),
        ("/etc/self", "etc/self-target"),
        ("/lib", "usr/lib"),
    ],
)
def test_resolution_stays_in_root(root: Path, path: str, expected: str) -> None:
    assert resolve_in_root(root, path) == root.joinpath(*expected.split("/") if expected else ())


def test_final_link_kept_when_not_following(root: Path) -> None:
    assert resolve_in_root(root, "/lib", follow_final=False) == root / "lib"
    assert resolve_in_root(root, "/lib/x", follow_final=False) == root / "usr" / "lib" / "x"


def test_symlink_loop_fails_like_eloop(root: Path) -> None:
    with pytest.raises(StoreError, match="too many levels of symbolic links"):
        resolve_in_root(root, "/loop/x")
    assert MAX_SYMLINKS == 40


@pytest.mark.parametrize("path", ["/abs/passwd", "/up/etc", "../etc"])
def test_strict_refuses_what_would_leave_on_the_host(root: Path, path: str) -> None:
    with pytest.raises(StoreError):
        resolve_in_root(root, path, strict=True)


def test_strict_follows_relative_links_inside(root: Path) -> None:
    assert resolve_in_root(root, "lib/x", strict=True) == root / "usr" / "lib" / "x"


def test_ensure_dir_creates_through_links_inside_root(root: Path) -> None:
    made = ensure_dir_in_root(root, "/abs/new/deeper")

    assert made == root / "etc" / "new" / "deeper"
    assert made.is_dir()
    assert not Path("/etc/new").exists()


def test_ensure_dir_refuses_a_file_in_the_way(root: Path) -> None:
    (root / "etc" / "file").write_text("x")
    with pytest.raises(StoreError, match="/etc/file exists and is not a directory"):
        ensure_dir_in_root(root, "/etc/file/sub")


def test_parent_in_root_keeps_last_component(root: Path) -> None:
    assert parent_in_root(root, "/lib/libc.so") == (root / "usr" / "lib", "libc.so")
    assert parent_in_root(root, "/new/dir/file", create=True) == (root / "new" / "dir", "file")
    assert (root / "new" / "dir").is_dir()
    with pytest.raises(StoreError):
        parent_in_root(root, "/")


def test_is_within_is_lexical() -> None:
    assert is_within(Path("/a/b"), Path("/a/b/c"))
    assert is_within(Path("/a/b"), Path("/a/b"))
    assert not is_within(Path("/a/b"), Path("/a/bc"))
    assert not is_within(Path("/a/b"), Path("/a/b/../c"))
