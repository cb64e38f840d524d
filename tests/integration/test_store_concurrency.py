"""Two kiln processes on one store at once (importing, tagging, removing, pruning) leave it
consistent: every command succeeds, every name resolves to an image whose blobs are all
present and whole, the root ``index.json`` lists exactly the names, and no temporary file
is left behind.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import pytest

from builder.store import Store
from tests.conftest import REPO_ROOT

ROUNDS = 6

# Each worker is one shell loop of kiln commands, so the two interleave as two users would.
IMPORTER = """
set -e
for i in $(seq 1 {rounds}); do
  $KILN import "$ROOTFS_DIR/rootfs-$i.tar" "app-$i:latest" >/dev/null
  $KILN tag "app-$i" "alias-$i" >/dev/null
  $KILN rmi "app-$i" >/dev/null
done
"""
PRUNER = """
set -e
for i in $(seq 1 {rounds}); do
  $KILN import "$ROOTFS_DIR/other-$i.tar" "other-$i" >/dev/null
  $KILN prune >/dev/null
  $KILN images >/dev/null
done
"""


def rootfs(path: Path, marker: str) -> None:
    payload = (marker * 4096).encode()
    with tarfile.open(path, "w") as archive:
        info = tarfile.TarInfo(f"data/{marker}.bin")
        info.size = len(payload)
        archive.addfile(info, io.BytesIO(payload))


@pytest.mark.slow
def test_two_processes_share_one_store(tmp_path: Path) -> None:
    root = tmp_path / "store"
    rootfs_dir = tmp_path / "rootfs"
    rootfs_dir.mkdir()
    for index in range(1, ROUNDS + 1):
        rootfs(rootfs_dir / f"rootfs-{index}.tar", f"app{index}")
        rootfs(rootfs_dir / f"other-{index}.tar", f"other{index}")
    environment = dict(
        os.environ,
        KILN=f"{sys.executable} -m builder.cli.main --root {root}",
        ROOTFS_DIR=str(rootfs_dir),
    )
    workers = [
        subprocess.Popen(
            ["sh", "-c", textwrap.dedent(script.format(rounds=ROUNDS))],
            cwd=REPO_ROOT,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for script in (IMPORTER, PRUNER)
    ]
    for worker in workers:
        _stdout, stderr = worker.communicate(timeout=300)
        assert worker.returncode == 0, stderr

    with Store.open(root) as store:
        names = sorted(ref.name for ref in store.meta.refs())
        expected = [f"docker.io/library/alias-{index}:latest" for index in range(1, ROUNDS + 1)]
        expected += [f"docker.io/library/other-{index}:latest" for index in range(1, ROUNDS + 1)]
        assert names == sorted(expected)
        for name in names:
            manifest, config = store.get_image(name)
            needed = [store.resolve(name), manifest["config"]["digest"]]
            needed += [layer.digest for layer in store.layers(manifest, config)]
            assert all(store.blobs.verify(digest) for digest in needed), name
        index = json.loads((root / "index.json").read_text())
        listed = sorted(entry["annotations"]["io.containerd.image.name"] for entry in index["manifests"])
        assert listed == names
    leftovers = [path for path in root.rglob(".tmp-*")]
    assert leftovers == []
