"""Whiteouts both ways: overlay upper dir → OCI tar → overlay snapshot, or → deletions."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

from builder.layers import apply_layer, write_layer
from tests.conftest import require_root
from tests.unit.builder.layers.conftest import describe_tree, set_times


def _upper_dir(root: Path) -> Path:
    """An overlay upper dir: ``gone`` deleted, ``opq`` made opaque and refilled."""
    root.mkdir()
    os.mknod(root / "gone", stat.S_IFCHR | 0o600, os.makedev(0, 0))
    (root / "opq").mkdir()
    os.setxattr(root / "opq", "trusted.overlay.opaque", b"y")
    (root / "opq" / "keep").write_text("new")
    (root / "opq" / "-first").write_text("sorts before the marker")
    (root / "added").write_text("a")
    set_times(root, 1_700_000_000)
    return root


def _names(blob: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(blob)) as archive:
        return archive.getnames()


def test_overlay_whiteouts_become_oci_whiteouts(tmp_path: Path) -> None:
    require_root("whiteout devices and trusted xattrs need root")
    blob = io.BytesIO()
    write_layer(_upper_dir(tmp_path / "upper"), blob, compression="none")

    assert _names(blob.getvalue()) == [
        "added",
        ".wh.gone",
        "opq",
        "opq/.wh..wh..opq",
        "opq/-first",
        "opq/keep",
    ]
    with tarfile.open(fileobj=io.BytesIO(blob.getvalue())) as archive:
        opaque_dir = archive.getmember("opq")
    assert not any(key.startswith("SCHILY.xattr.trusted.overlay") for key in opaque_dir.pax_headers)


def test_overlay_snapshot_round_trips_to_same_diff_id(tmp_path: Path) -> None:
    require_root("whiteout devices and trusted xattrs need root")
    upper = _upper_dir(tmp_path / "upper")
    blob = io.BytesIO()
    written = write_layer(upper, blob, compression="gzip")
    snapshot = tmp_path / "snapshot"
    snapshot.mkdir()

    apply_layer(io.BytesIO(blob.getvalue()), snapshot, whiteout_format="overlay")

    gone = os.lstat(snapshot / "gone")
    assert stat.S_ISCHR(gone.st_mode) and gone.st_rdev == 0
    assert os.getxattr(snapshot / "opq", "trusted.overlay.opaque") == b"y"
    assert sorted(os.listdir(snapshot / "opq")) == ["-first", "keep"]
    assert write_layer(snapshot, io.BytesIO(), compression="gzip").diff_id == written.diff_id


def test_oci_whiteouts_delete_from_lower_tree(tmp_path: Path) -> None:
    require_root("whiteout devices and trusted xattrs need root")
    blob = io.BytesIO()
    write_layer(_upper_dir(tmp_path / "upper"), blob, compression="zstd")
    merged = tmp_path / "merged"
    (merged / "opq" / "old" / "deeper").mkdir(parents=True)
    (merged / "opq" / "stale").write_text("old")
    (merged / "gone").mkdir()
    (merged / "gone" / "inside").write_text("x")
    (merged / "untouched").write_text("u")

    apply_layer(io.BytesIO(blob.getvalue()), merged, whiteout_format="oci")

    assert sorted(describe_tree(merged)) == ["added", "opq", "opq/-first", "opq/keep", "untouched"]


def test_opaque_marker_after_new_children_keeps_them(tmp_path: Path) -> None:
    merged = tmp_path / "merged"
    (merged / "d").mkdir(parents=True)
    (merged / "d" / "old").write_text("old")
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as archive:
        archive.addfile(tarfile.TarInfo("d/a-new"), io.BytesIO(b""))
        archive.addfile(tarfile.TarInfo("d/.wh..wh..opq"), io.BytesIO(b""))

    apply_layer(io.BytesIO(tar.getvalue()), merged, whiteout_format="oci")

    assert os.listdir(merged / "d") == ["a-new"]


def test_oci_format_writer_keeps_whiteout_files_verbatim(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "d").mkdir(parents=True)
    (tree / "d" / ".wh..wh..opq").write_bytes(b"")
    (tree / ".wh.x").write_bytes(b"")
    blob = io.BytesIO()

    write_layer(tree, blob, compression="none", whiteout_format="oci")

    assert _names(blob.getvalue()) == [".wh.x", "d", "d/.wh..wh..opq"]


def test_overlay_private_xattrs_from_a_tar_are_dropped(tmp_path: Path) -> None:
    require_root("trusted xattrs need root")
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w", format=tarfile.PAX_FORMAT) as archive:
        info = tarfile.TarInfo("d")
        info.type = tarfile.DIRTYPE
        info.pax_headers = {
            "SCHILY.xattr.trusted.overlay.redirect": "/elsewhere",
            "SCHILY.xattr.user.kept": "yes",
        }
        archive.addfile(info)
    root = tmp_path / "root"
    root.mkdir()

    apply_layer(io.BytesIO(tar.getvalue()), root, whiteout_format="overlay")

    assert os.listxattr(root / "d") == ["user.kept"]


def test_flattening_a_whiteout_in_a_missing_directory_creates_nothing(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as archive:
        archive.addfile(tarfile.TarInfo("absent/.wh.file"), io.BytesIO(b""))
        archive.addfile(tarfile.TarInfo("absent2/.wh..wh..opq"), io.BytesIO(b""))

    apply_layer(io.BytesIO(tar.getvalue()), root, whiteout_format="oci")

    assert os.listdir(root) == []


def test_overlayfs_honours_an_unpacked_snapshot(tmp_path: Path) -> None:
    require_root("mounting overlayfs needs root")
    import subprocess

    blob = io.BytesIO()
    write_layer(_upper_dir(tmp_path / "upper"), blob, compression="gzip")
    base = tmp_path / "base"
    (base / "opq").mkdir(parents=True)
    (base / "opq" / "old").write_text("hidden by the opaque dir")
    (base / "gone").write_text("hidden by the whiteout")
    (base / "kept").write_text("still there")
    snapshot, merged = tmp_path / "snapshot", tmp_path / "merged"
    snapshot.mkdir()
    merged.mkdir()
    apply_layer(io.BytesIO(blob.getvalue()), snapshot, whiteout_format="overlay")

    options = f"lowerdir={snapshot}:{base}"
    mounted = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, str(merged)], check=False)
    if mounted.returncode != 0:
        import pytest

        pytest.skip("overlayfs cannot be mounted here")
    try:
        listing = sorted(str(path.relative_to(merged)) for path in merged.rglob("*"))
    finally:
        subprocess.run(["umount", str(merged)], check=True)

    assert listing == ["added", "kept", "opq", "opq/-first", "opq/keep"]


def test_user_xattr_opaque_form_is_read_too(tmp_path: Path) -> None:
    upper = tmp_path / "upper"
    (upper / "d").mkdir(parents=True)
    os.setxattr(upper / "d", "user.overlay.opaque", b"y")
    (upper / "e").mkdir()
    os.setxattr(upper / "e", "user.overlay.opaque", b"n")
    blob = io.BytesIO()

    write_layer(upper, blob, compression="none")

    assert _names(blob.getvalue()) == ["d", "d/.wh..wh..opq", "e"]
