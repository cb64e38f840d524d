"""Every destination resolves inside the rootfs: image symlinks never lead onto the host."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from builder.errors import BuildError
from builder.fileops import copy_into
from tests.fixtures.context_files import make_tree
from tests.unit.builder.fileops.helpers import copy_op, listing

HOST_MARKER = "kiln-fileops-confinement-test"


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "ctx", {HOST_MARKER: "payload", "app/passwd": "from context"})


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    root = make_tree(tmp_path / "rootfs", {"etc/passwd": "image passwd"})
    os.symlink("/etc", root / "app")
    os.symlink("../../../../../../etc", root / "rel")
    return root


def copy(ctx: Path, rootfs: Path, *paths: str, dest: str) -> None:
    copy_into(copy_op(*paths, dest=dest), dest_root=rootfs, source_root=ctx)


@pytest.mark.parametrize("dest", ["/app/", "/rel/", "/app/" + HOST_MARKER, "/app/../app/./"])
def test_symlinked_destination_leads_to_the_image_etc(ctx: Path, rootfs: Path, dest: str) -> None:
    copy(ctx, rootfs, HOST_MARKER, dest=dest)
    assert (rootfs / "etc" / HOST_MARKER).read_text() == "payload"
    assert not Path("/etc", HOST_MARKER).exists()


def test_symlinked_final_component_is_followed_inside_the_root(ctx: Path, rootfs: Path) -> None:
    os.symlink("/etc/passwd", rootfs / "passwd-link")
    copy(ctx, rootfs, HOST_MARKER, dest="/passwd-link")
    assert (rootfs / "etc/passwd").read_text() == "payload"
    assert os.readlink(rootfs / "passwd-link") == "/etc/passwd"


def test_a_directory_is_not_merged_into_a_symlink(ctx: Path, rootfs: Path) -> None:
    with pytest.raises(BuildError, match=re.escape("cannot copy to non-directory: /app")):
        copy(ctx, rootfs, ".", dest="/")
    assert (rootfs / "etc/passwd").read_text() == "image passwd"


def test_a_file_replaces_a_symlink_instead_of_writing_through_it(ctx: Path, rootfs: Path) -> None:
    (rootfs / "data").mkdir()
    os.symlink("/etc/passwd", rootfs / "data/passwd")
    copy(ctx, rootfs, "app/passwd", dest="/data/")
    assert listing(rootfs / "data") == {"passwd": ("f", "644", "from context")}
    assert (rootfs / "etc/passwd").read_text() == "image passwd"


def test_dangling_parent_symlink_is_created_inside_the_root(ctx: Path, rootfs: Path) -> None:
    os.symlink("symlink-target", rootfs / "symlink")
    copy(ctx, rootfs, HOST_MARKER, dest="/symlink/subdirectory/")
    assert (rootfs / "symlink-target/subdirectory" / HOST_MARKER).read_text() == "payload"


def test_dotdot_after_a_symlink_is_cleaned_first(ctx: Path, rootfs: Path) -> None:
    os.symlink("/symlink-target/subdirectory", rootfs / "symlink")
    copy(ctx, rootfs, HOST_MARKER, dest="/symlink/..")
    assert (rootfs / HOST_MARKER).read_text() == "payload"
    assert not (rootfs / "symlink-target").exists()
