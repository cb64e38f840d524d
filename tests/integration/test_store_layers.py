"""A layer with deletions and an opaque directory survives writer → archive → load → applier.

The same tree comes out of the original store, of a store that loaded the image from an OCI
archive, and of one that loaded it from a docker archive; as root, the snapshots hold
overlay whiteouts and an overlay mount of them shows that tree too.
"""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from builder.export.directory import export_directory
from builder.export.docker_archive import write_docker_archive
from builder.export.load import load_archive
from builder.export.oci_archive import write_oci_archive
from builder.layers import write_layer
from builder.store import Store, StoredLayer
from tests.conftest import REPO_ROOT, require_root

EXPECTED_TREE = {
    "dir": "dir",
    "dir/new.txt": "new",
    "keep.txt": "keep",
}


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return root


def store_layer(store: Store, diff_dir: Path) -> StoredLayer:
    blob = io.BytesIO()
    descriptor = write_layer(diff_dir, blob, whiteout_format="oci", source_date_epoch=0)
    info = store.blobs.put_bytes(blob.getvalue(), expected_digest=descriptor.digest)
    return StoredLayer(info.digest, descriptor.diff_id, info.size, descriptor.media_type)


def tree(root: Path) -> dict[str, str]:
    """Every path under ``root``: file contents, ``dir`` for directories."""
    found: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        found[relative] = "dir" if path.is_dir() else path.read_text()
    return found


@pytest.fixture
def source(tmp_path: Path) -> Store:
    store = Store.open(tmp_path / "source")
    base = write_tree(
        tmp_path / "base",
        {"keep.txt": "keep", "gone.txt": "gone", "dir/old.txt": "old", "dir/sub/deep.txt": "deep"},
    )
    top = write_tree(tmp_path / "top", {".wh.gone.txt": "", "dir/.wh..wh..opq": "", "dir/new.txt": "new"})
    layers = [store_layer(store, base), store_layer(store, top)]
    config = {"architecture": "amd64", "os": "linux", "config": {}}
    store.put_image(config, layers, "whiteouts:1")
    return store


@pytest.mark.parametrize("archive_format", ["oci", "docker"])
def test_whiteouts_round_trip(source: Store, tmp_path: Path, archive_format: str) -> None:
    flattened = tmp_path / "flattened-source"
    export_directory(source, "whiteouts:1", flattened)
    assert tree(flattened) == EXPECTED_TREE

    archive = io.BytesIO()
    writer = write_oci_archive if archive_format == "oci" else write_docker_archive
    writer(source, ["whiteouts:1"], archive)
    archive.seek(0)
    target = Store.open(tmp_path / "target")
    load_archive(target, archive)
    copy = tmp_path / "flattened-copy"
    export_directory(target, "whiteouts:1", copy)
    assert tree(copy) == EXPECTED_TREE


def test_snapshots_are_overlay_lower_dirs(source: Store, tmp_path: Path) -> None:
    require_root("overlay whiteouts are character devices and trusted xattrs")
    base_dir, top_dir = source.snapshot_for("whiteouts:1")
    assert base_dir.parent == top_dir.parent == source.root / "snapshots"
    gone = os.lstat(top_dir / "gone.txt")
    assert stat.S_ISCHR(gone.st_mode) and gone.st_rdev == 0
    assert os.getxattr(top_dir / "dir", "trusted.overlay.opaque") == b"y"
    assert source.snapshot_for("whiteouts:1") == [base_dir, top_dir]  # unpacked once, then reused

    merged = tmp_path / "merged"
    merged.mkdir()
    mount = subprocess.run(
        ["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={top_dir}:{base_dir}", str(merged)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mount.returncode != 0:
        pytest.skip(f"overlayfs is not available: {mount.stderr.strip()}")
    try:
        assert tree(merged) == EXPECTED_TREE
    finally:
        subprocess.run(["umount", str(merged)], check=True)


def test_prune_keeps_snapshots_of_tagged_images(source: Store) -> None:
    require_root("snapshots hold overlay whiteouts")
    from builder.store import prune

    snapshot_dirs = source.snapshot_for("whiteouts:1")
    assert prune(source).snapshots == []
    assert all(path.is_dir() for path in snapshot_dirs)
    source.untag("whiteouts:1")
    report = prune(source)
    assert len(report.snapshots) == 2
    assert not any(path.exists() for path in snapshot_dirs)


def test_two_processes_unpack_one_snapshot(source: Store) -> None:
    require_root("snapshots hold overlay whiteouts")
    script = (
        "import sys\nfrom pathlib import Path\nfrom builder.store import Store\n"
        "with Store.open(Path(sys.argv[1])) as store:\n"
        "    print(':'.join(str(path) for path in store.snapshot_for('whiteouts:1')))\n"
    )
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(source.root)],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [worker.communicate(timeout=120) for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], outputs
    assert outputs[0][0] == outputs[1][0]
    assert sorted(entry.name for entry in (source.root / "snapshots").iterdir()) == sorted(
        Path(path).name for path in outputs[0][0].strip().split(":")
    )
    assert len(source.meta.snapshots()) == 2
