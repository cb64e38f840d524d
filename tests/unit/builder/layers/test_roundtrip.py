"""Writer → applier round trips: the tree that comes out is the tree that went in."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from builder.layers import apply_layer, write_layer
from builder.layers.compression import Compression
from builder.oci import mediatypes
from tests.conftest import require_root
from tests.unit.builder.layers.conftest import describe_tree, make_rich_tree


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_rich_tree_round_trips_exactly(tmp_path: Path, compression: Compression) -> None:
    require_root("owners, devices and security xattrs need root")
    source, unpacked = tmp_path / "source", tmp_path / "unpacked"
    make_rich_tree(source)
    unpacked.mkdir()
    blob = io.BytesIO()

    written = write_layer(source, blob, compression=compression)
    diff_id = apply_layer(io.BytesIO(blob.getvalue()), unpacked, whiteout_format="oci")

    assert diff_id == written.diff_id
    assert written.size == len(blob.getvalue())
    assert describe_tree(unpacked) == describe_tree(source)
    assert os.stat(unpacked / "bin" / "tool").st_mode & 0o7777 == 0o4755
    assert os.getxattr(unpacked / "bin" / "tool", "security.capability")[:4] == b"\x01\x00\x00\x02"


def test_descriptor_matches_blob_and_tar(tmp_path: Path) -> None:
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "file").write_text("hello")
    blob = io.BytesIO()

    written = write_layer(tmp_path / "tree", blob, compression="none")

    assert written.digest == written.diff_id
    assert written.media_type == mediatypes.OCI_LAYER
    assert written.descriptor().size == len(blob.getvalue())
    gz = write_layer(tmp_path / "tree", io.BytesIO(), compression="gzip")
    zst = write_layer(tmp_path / "tree", io.BytesIO(), compression="zstd")
    assert gz.diff_id == zst.diff_id == written.diff_id
    assert (gz.media_type, zst.media_type) == (mediatypes.OCI_LAYER_GZIP, mediatypes.OCI_LAYER_ZSTD)
    assert len({gz.digest, zst.digest, written.digest}) == 3


def test_entries_are_sorted_depth_first_with_dir_slash(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    for name in ("b/z", "b/a", "a-b", "a/c", "-x"):
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_text(name)
    blob = io.BytesIO()
    write_layer(tree, blob, compression="none")
    blob.seek(0)

    with tarfile.open(fileobj=blob) as archive:
        names = [(member.name, member.isdir()) for member in archive]

    assert [name for name, _ in names] == ["-x", "a", "a/c", "a-b", "b", "b/a", "b/z"]
    raw = blob.getvalue()
    assert b"a/\0" in raw and b"./" not in raw[:100]


def test_hardlinks_become_link_entries_to_first_name(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "b").write_text("shared")
    (tree / "a").hardlink_to(tree / "b")
    blob = io.BytesIO()
    write_layer(tree, blob, compression="none")
    blob.seek(0)

    with tarfile.open(fileobj=blob) as archive:
        members = {member.name: member for member in archive}

    assert members["a"].isreg() and members["a"].size == 6
    assert members["b"].islnk() and members["b"].linkname == "a"


def test_exclude_leaves_out_paths_and_subtrees(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc" / "hosts").write_text("stub")
    (tree / "etc" / "keep").write_text("k")
    (tree / "run" / "secrets").mkdir(parents=True)
    (tree / "run" / "secrets" / "s").write_text("secret")
    excluded = {"etc/hosts", "run/secrets"}
    blob = io.BytesIO()
    write_layer(tree, blob, compression="none", exclude=lambda path: path in excluded)
    blob.seek(0)

    with tarfile.open(fileobj=blob) as archive:
        assert archive.getnames() == ["etc", "etc/keep", "run"]


def test_sockets_are_left_out(tmp_path: Path) -> None:
    import socket

    tree = tmp_path / "tree"
    tree.mkdir()
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(tree / "sock"))
    (tree / "file").write_text("f")
    blob = io.BytesIO()
    try:
        write_layer(tree, blob, compression="none")
    finally:
        listener.close()
    blob.seek(0)
    with tarfile.open(fileobj=blob) as archive:
        assert archive.getnames() == ["file"]


def test_applier_replaces_final_symlink_instead_of_following_it(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "target").write_text("original")
    (root / "name").symlink_to(outside / "target")
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as archive:
        info = tarfile.TarInfo("name")
        info.size = 3
        archive.addfile(info, io.BytesIO(b"new"))

    apply_layer(io.BytesIO(tar.getvalue()), root, whiteout_format="oci")

    assert (outside / "target").read_text() == "original"
    assert not (root / "name").is_symlink()
    assert (root / "name").read_text() == "new"


def test_applier_replaces_file_by_directory_and_back(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "was-dir").mkdir(parents=True)
    (root / "was-dir" / "child").write_text("c")
    (root / "was-file").write_text("f")
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as archive:
        info = tarfile.TarInfo("was-dir")
        archive.addfile(info, io.BytesIO(b""))
        folder = tarfile.TarInfo("was-file")
        folder.type = tarfile.DIRTYPE
        folder.mode = 0o711
        archive.addfile(folder)

    apply_layer(io.BytesIO(tar.getvalue()), root, whiteout_format="oci")

    assert stat.S_ISREG(os.lstat(root / "was-dir").st_mode)
    assert stat.S_IMODE(os.lstat(root / "was-file").st_mode) == 0o711


def test_missing_parents_are_created(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as archive:
        info = tarfile.TarInfo("./deep/er/file")
        info.size = 1
        archive.addfile(info, io.BytesIO(b"1"))

    apply_layer(io.BytesIO(tar.getvalue()), root)

    assert (root / "deep" / "er" / "file").read_bytes() == b"1"


def test_diff_id_mismatch_is_refused(tmp_path: Path) -> None:
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "f").write_text("x")
    blob = io.BytesIO()
    write_layer(tmp_path / "tree", blob)
    (tmp_path / "root").mkdir()
    from builder.errors import LayerError

    with pytest.raises(LayerError, match="expected sha256:0000"):
        apply_layer(io.BytesIO(blob.getvalue()), tmp_path / "root", diff_id="sha256:" + "0" * 64)


def test_odd_names_big_ids_and_long_links_round_trip(tmp_path: Path) -> None:
    require_root("a uid above 2097151 needs root")
    source, unpacked = tmp_path / "source", tmp_path / "unpacked"
    source.mkdir()
    unpacked.mkdir()
    latin1 = os.fsencode(source) + b"/caf\xe9"
    with open(latin1, "wb") as handle:
        handle.write(b"not utf-8 name")
    big_owner = source / "big-owner"
    big_owner.write_text("x")
    os.chown(big_owner, 3_000_000, 3_000_001)
    (source / "far").symlink_to("/" + "x" * 200 + "/target")
    blob = io.BytesIO()

    write_layer(source, blob, compression="gzip")
    apply_layer(io.BytesIO(blob.getvalue()), unpacked, whiteout_format="oci")

    assert describe_tree(unpacked) == describe_tree(source)
    assert os.stat(unpacked / "big-owner").st_uid == 3_000_000
    assert os.path.exists(os.fsencode(unpacked) + b"/caf\xe9")


def test_replacing_a_linked_directory_redirects_later_entries(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "real").mkdir(parents=True)
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as archive:
        link = tarfile.TarInfo("lib")
        link.type = tarfile.SYMTYPE
        link.linkname = "real"
        archive.addfile(link)
        archive.addfile(tarfile.TarInfo("lib/sub/first"), io.BytesIO(b""))
        folder = tarfile.TarInfo("lib")
        folder.type = tarfile.DIRTYPE
        archive.addfile(folder)
        archive.addfile(tarfile.TarInfo("lib/sub/second"), io.BytesIO(b""))

    apply_layer(io.BytesIO(tar.getvalue()), root, whiteout_format="oci")

    assert sorted(os.listdir(root / "real" / "sub")) == ["first"]
    assert not (root / "lib").is_symlink()
    assert sorted(os.listdir(root / "lib" / "sub")) == ["second"]
