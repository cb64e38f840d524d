"""The image commands, run in-process: their output and exit statuses."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from builder.cli.main import main


def rootfs(path: Path, marker: bytes) -> Path:
    with tarfile.open(path, "w") as archive:
        info = tarfile.TarInfo("marker")
        info.size = len(marker)
        archive.addfile(info, io.BytesIO(marker))
    return path


@pytest.fixture
def root(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    store_root = tmp_path / "store"
    assert main(["--root", str(store_root), "import", str(rootfs(tmp_path / "a.tar", b"a")), "app:1"]) == 0
    capsys.readouterr()
    return store_root


def run(root: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(["--root", str(root), *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_rmi_by_id_with_several_names_needs_force(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(root, capsys, "tag", "app:1", "app:2")[0] == 0
    [document] = json.loads(run(root, capsys, "inspect", "app:1")[1])
    image_id = document["Id"][7:19]
    status, _out, err = run(root, capsys, "rmi", image_id)
    assert status == 1
    assert (
        err == f"error: unable to delete {image_id} (must be forced): image is referenced in multiple names\n"
    )
    status, out, _err = run(root, capsys, "rmi", "-f", image_id)
    assert status == 0
    manifest_digest = document["Metadata"]["ManifestDigest"]
    assert out == f"Untagged: app:1\nUntagged: app:2\nDeleted: {manifest_digest}\n"
    assert run(root, capsys, "images", "-q") == (0, "", "")


def test_dangling_image_after_retag(root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(root, capsys, "import", str(rootfs(tmp_path / "b.tar", b"b")))[0] == 0
    lines = run(root, capsys, "images")[1].splitlines()
    assert [line.split()[:2] for line in lines] == [["REPOSITORY", "TAG"], ["app", "1"], ["<none>", "<none>"]]


def test_tag_unknown_image(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(root, capsys, "tag", "missing", "x") == (1, "", "error: no such image: missing\n")


def test_bad_reference_is_usage_error(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _out, err = run(root, capsys, "tag", "app:1", "Bad:Name")
    assert status == 2
    assert "repository name must be lowercase" in err


def test_prune_dry_run(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(root, capsys, "rmi", "app:1")[0] == 0
    status, out, _err = run(root, capsys, "prune", "--dry-run")
    assert status == 0
    space, counts = out.splitlines()[-2:]
    assert space.startswith("Reclaimable space: ") and space.endswith("B")
    assert counts == "3 blobs, 0 snapshots to remove"
    assert len(list((root / "blobs" / "sha256").iterdir())) == 3
