"""COPY from the context and from a stage: paths, wildcards, trailing slashes, metadata."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

from builder.context import BuildContext
from builder.errors import BuildError
from builder.fileops import copy_into
from builder.fileops.writer import copy_tree
from builder.graph import StageSource
from tests.conftest import require_root
from tests.fixtures.context_files import make_tree
from tests.unit.builder.fileops.helpers import copy_op, listing, owner


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    return make_tree(
        tmp_path / "ctx",
        {
            "file-a.txt": "a",
            "file-b.txt": "b",
            "dir/file": "in dir",
            "dir/sub/deep": "deep",
            "subdir-b/.dot-b": "dot",
            "subdir-c/file-c.txt": "c",
        },
    )


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "rootfs", {"usr/bin/": None, "etc/": None})


def run(op_paths: tuple[str, ...], dest: str, ctx: Path, rootfs: Path, **options: object) -> None:
    op = copy_op(*op_paths, dest=dest, **options)  # type: ignore[arg-type]
    copy_into(op, dest_root=rootfs, source_root=ctx)


def test_file_to_new_name_and_into_existing_dir(ctx: Path, rootfs: Path) -> None:
    run(("file-a.txt",), "/usr/bin/renamed", ctx, rootfs)
    run(("file-b.txt",), "/usr/bin", ctx, rootfs)
    assert listing(rootfs / "usr/bin") == {"renamed": ("f", "644", "a"), "file-b.txt": ("f", "644", "b")}


def test_trailing_slash_makes_the_destination_a_directory(ctx: Path, rootfs: Path) -> None:
    run(("file-a.txt",), "/a/b/c/", ctx, rootfs)
    run(("file-b.txt",), "/x/y/z", ctx, rootfs)
    assert listing(rootfs / "a") == {
        "b": ("d", "755", ""),
        "b/c": ("d", "755", ""),
        "b/c/file-a.txt": ("f", "644", "a"),
    }
    assert listing(rootfs / "x") == {"y": ("d", "755", ""), "y/z": ("f", "644", "b")}


def test_directory_copies_its_contents(ctx: Path, rootfs: Path) -> None:
    run(("dir",), "/target", ctx, rootfs)
    run(("dir/.",), "/dot/", ctx, rootfs)
    expected = {"file": ("f", "644", "in dir"), "sub": ("d", "755", ""), "sub/deep": ("f", "644", "deep")}
    assert listing(rootfs / "target") == expected
    assert listing(rootfs / "dot") == expected


def test_empty_source_copies_the_whole_context(ctx: Path, rootfs: Path) -> None:
    run(("",), "/usr/local/tmp/", ctx, rootfs)
    assert sorted(os.listdir(rootfs / "usr/local/tmp")) == sorted(os.listdir(ctx))


def test_wildcards_merge_matches_and_skip_nothing_matched(ctx: Path, rootfs: Path) -> None:
    run(("file-a.txt", "subdir-*", "file-?.txt", "missing*"), "/subdir/", ctx, rootfs)
    assert listing(rootfs / "subdir") == {
        ".dot-b": ("f", "644", "dot"),
        "file-a.txt": ("f", "644", "a"),
        "file-b.txt": ("f", "644", "b"),
        "file-c.txt": ("f", "644", "c"),
    }
    run(("missing*",), "/nothing/", ctx, rootfs)
    assert not (rootfs / "nothing").exists()


def test_escaped_wildcard_is_literal(tmp_path: Path, rootfs: Path) -> None:
    ctx = make_tree(tmp_path / "glob", {"app/n?pe/file.txt": "literal", "app/nope/file.txt": "other"})
    run((r"app/n\?pe/file.txt",), "/app4/file.txt", ctx, rootfs)
    run(("app/[[]*",), "/none/", ctx, rootfs)
    assert (rootfs / "app4/file.txt").read_text() == "literal"
    assert not (rootfs / "none").exists()


def test_missing_source_fails_with_not_found(ctx: Path, rootfs: Path) -> None:
    with pytest.raises(BuildError, match=re.escape('"/file-z.txt" not found')) as caught:
        run(("file-a.txt", "file-z.txt"), "/subdir/", ctx, rootfs)
    assert caught.value.span is not None and caught.value.span.start_line == 3


def test_dotdot_source_is_refused(ctx: Path, rootfs: Path) -> None:
    with pytest.raises(BuildError, match="outside the build context"):
        run(("../rootfs/etc",), "/x/", ctx, rootfs)
    run(("dir/../file-a.txt",), "/ok", ctx, rootfs)
    assert (rootfs / "ok").read_text() == "a"


def test_symlinked_source_is_followed_and_keeps_its_name(ctx: Path, rootfs: Path) -> None:
    os.symlink("file-a.txt", ctx / "link.txt")
    os.symlink("/dir", ctx / "dirlink")
    run(("link.txt",), "/", ctx, rootfs)
    run(("dirlink",), "/fromlink", ctx, rootfs)
    assert listing(rootfs)["link.txt"] == ("f", "644", "a")
    assert listing(rootfs / "fromlink")["file"] == ("f", "644", "in dir")


def test_source_symlink_out_of_the_context_stays_inside(tmp_path: Path, rootfs: Path) -> None:
    ctx = make_tree(tmp_path / "escape", {"etc/passwd": "context passwd"})
    os.symlink("/etc/passwd", ctx / "abs")
    os.symlink("../../../../../etc/passwd", ctx / "rel")
    run(("abs", "rel"), "/got/", ctx, rootfs)
    assert listing(rootfs / "got") == {
        "abs": ("f", "644", "context passwd"),
        "rel": ("f", "644", "context passwd"),
    }


def test_links_inside_a_directory_are_copied_as_links(ctx: Path, rootfs: Path) -> None:
    os.symlink("../file", ctx / "dir/sub/up")
    os.link(ctx / "dir/file", ctx / "dir/hard")
    run(("dir",), "/d", ctx, rootfs)
    assert listing(rootfs / "d")["sub/up"] == ("l", "777", "../file")
    assert os.stat(rootfs / "d/hard").st_ino == os.stat(rootfs / "d/file").st_ino


def test_mtimes_are_preserved(ctx: Path, rootfs: Path) -> None:
    os.utime(ctx / "dir/file", (1485449953, 1485449953))
    os.utime(ctx / "dir", (1485449900, 1485449900))
    run(("dir",), "/d/", ctx, rootfs)
    run(("dir",), "/e/dir", ctx, rootfs)
    assert os.stat(rootfs / "d/file").st_mtime == 1485449953
    assert os.stat(rootfs / "e/dir/file").st_mtime == 1485449953


def test_chmod_octal_and_symbolic(ctx: Path, rootfs: Path) -> None:
    run(("file-a.txt",), "/octal", ctx, rootfs, chmod="0751")
    run(("dir",), "/sym/", ctx, rootfs, chmod="u+x,g-r,o=")
    assert listing(rootfs)["octal"] == ("f", "751", "a")
    assert listing(rootfs / "sym") == {
        "file": ("f", "700", "in dir"),
        "sub": ("d", "710", ""),
        "sub/deep": ("f", "700", "deep"),
    }


def test_exclude_patterns_apply_below_each_source(ctx: Path, rootfs: Path) -> None:
    run(("dir", "file-*"), "/out/", ctx, rootfs, exclude=("sub", "*-b.txt"))
    assert sorted(listing(rootfs / "out")) == ["file", "file-a.txt"]


def test_exclude_exception_brings_back_an_entry_below_an_excluded_dir(ctx: Path, rootfs: Path) -> None:
    run(("dir",), "/out/", ctx, rootfs, exclude=("sub", "file", "!sub/deep"))
    assert listing(rootfs / "out") == {"sub": ("d", "755", ""), "sub/deep": ("f", "644", "deep")}


def test_parents_keep_the_source_directories(ctx: Path, rootfs: Path) -> None:
    run(("dir/sub/deep", "subdir-*/file-c.txt"), "/p", ctx, rootfs, parents=True)
    run(("dir/./sub/deep",), "/pivot/", ctx, rootfs, parents=True)
    assert listing(rootfs / "p") == {
        "dir": ("d", "755", ""),
        "dir/sub": ("d", "755", ""),
        "dir/sub/deep": ("f", "644", "deep"),
        "subdir-c": ("d", "755", ""),
        "subdir-c/file-c.txt": ("f", "644", "c"),
    }
    assert listing(rootfs / "pivot") == {"sub": ("d", "755", ""), "sub/deep": ("f", "644", "deep")}


def test_dockerignore_hides_sources(ctx: Path, rootfs: Path) -> None:
    (ctx / ".dockerignore").write_text("dir/sub\nsubdir-*\n!subdir-c/file-c.txt\n")
    context = BuildContext.open(ctx)
    op = copy_op("dir", dest="/d/")
    copy_into(op, dest_root=rootfs, source_root=ctx, context=context)
    copy_into(copy_op("subdir-*", dest="/s/"), dest_root=rootfs, source_root=ctx, context=context)
    assert sorted(listing(rootfs / "d")) == ["file"]
    assert sorted(listing(rootfs / "s")) == ["file-c.txt"]
    with pytest.raises(BuildError, match='"/subdir-b" not found'):
        copy_into(copy_op("subdir-b", dest="/x/"), dest_root=rootfs, source_root=ctx, context=context)


def test_context_files_become_root_owned_and_chown_spares_existing_dirs(ctx: Path, rootfs: Path) -> None:
    require_root()
    os.chown(ctx / "dir/file", 99, 99)
    run(("dir",), "/plain/", ctx, rootfs)
    copy_into(copy_op("dir", dest="/plain/"), dest_root=rootfs, source_root=ctx, chown=(99, 99))
    copy_into(copy_op("dir", dest="/fresh/new/"), dest_root=rootfs, source_root=ctx, chown=(7, 4))
    assert owner(rootfs / "plain") == (0, 0)
    assert owner(rootfs / "plain/file") == (99, 99)
    assert owner(rootfs / "plain/sub") == (99, 99)
    assert [owner(rootfs / p) for p in ("fresh", "fresh/new", "fresh/new/sub/deep")] == [(7, 4)] * 3


def test_copy_from_a_stage_keeps_owners(tmp_path: Path, rootfs: Path) -> None:
    require_root()
    stage = make_tree(tmp_path / "stage", {"test": "", "a/1": ""})
    os.chown(stage / "test", 65, 65)
    os.chown(stage / "a/1", 65, 65)
    stage_op = copy_op("/test", "/a", dest="/got/", source=StageSource(stage=0))
    copy_into(stage_op, dest_root=rootfs, source_root=stage)
    chowned = copy_op("/test", dest="/chowned", source=StageSource(stage=0))
    copy_into(chowned, dest_root=rootfs, source_root=stage, chown=(1, 1))
    assert owner(rootfs / "got/test") == (65, 65)
    assert owner(rootfs / "got/1") == (65, 65)
    assert owner(rootfs / "chowned") == (1, 1)


def test_file_cannot_replace_a_directory(ctx: Path, rootfs: Path) -> None:
    (rootfs / "target/file-a.txt").mkdir(parents=True)
    with pytest.raises(
        BuildError, match=re.escape("cannot replace to directory /target/file-a.txt with file")
    ):
        run(("file-a.txt",), "/target/", ctx, rootfs)


def test_copy_tree_recreates_devices_instead_of_reading_them(tmp_path: Path) -> None:
    require_root()
    source = make_tree(tmp_path / "src", {"dev/": None, "etc/hostname": "box"})
    os.mknod(source / "dev/zero", 0o666 | stat.S_IFCHR, os.makedev(1, 5))
    os.mkfifo(source / "dev/pipe")
    os.symlink("/proc/self/fd", source / "dev/fd")
    copy_tree(source, tmp_path / "copy")
    copied = os.lstat(tmp_path / "copy/dev/zero")
    assert stat.S_ISCHR(copied.st_mode) and copied.st_rdev == os.makedev(1, 5)
    assert stat.S_ISFIFO(os.lstat(tmp_path / "copy/dev/pipe").st_mode)
    assert os.readlink(tmp_path / "copy/dev/fd") == "/proc/self/fd"
    assert (tmp_path / "copy/etc/hostname").read_text() == "box"
