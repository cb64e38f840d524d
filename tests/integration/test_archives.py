"""Archives against the real validators: skopeo and umoci read what ``kiln save`` writes, and
``kiln load`` brings it back, or refuses a damaged archive and leaves the store as it was.

Every command runs as ``python -m builder.cli.main``, as a user would run kiln.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, require_tool

BUSYBOX = Path("/bin/busybox")


def kiln(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "builder.cli.main", "--root", str(root), *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"kiln {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result


def busybox_rootfs(path: Path) -> Path:
    """A root filesystem tar: /bin/busybox, /bin/sh and /bin/ls linking to it, /etc/passwd."""
    if not BUSYBOX.is_file():
        pytest.skip("/bin/busybox is not installed")
    with tarfile.open(path, "w") as archive:
        for directory in ("bin", "etc", "tmp"):
            info = tarfile.TarInfo(directory)
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777 if directory == "tmp" else 0o755
            archive.addfile(info)
        archive.add(BUSYBOX, "bin/busybox")
        for applet in ("sh", "ls"):
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type = tarfile.SYMTYPE
            link.linkname = "busybox"
            archive.addfile(link)
        passwd = b"root:x:0:0:root:/root:/bin/sh\n"
        info = tarfile.TarInfo("etc/passwd")
        info.size = len(passwd)
        info.mode = 0o644
        archive.addfile(info, io.BytesIO(passwd))
    return path


def store_state(root: Path) -> tuple[list[str], str, str]:
    blobs = sorted(os.listdir(root / "blobs" / "sha256"))
    return blobs, (root / "index.json").read_text(), kiln(root, "images", "-q", "--no-trunc").stdout


@pytest.fixture
def source_root(tmp_path: Path) -> Path:
    root = tmp_path / "source"
    rootfs = busybox_rootfs(tmp_path / "rootfs.tar")
    kiln(root, "import", "--change", 'CMD ["/bin/sh"]', "--change", "ENV A=1", str(rootfs), "busybox")
    kiln(root, "tag", "busybox", "localhost:5000/a/b:t")
    return root


def inspect(root: Path, image: str) -> dict[str, object]:
    [document] = json.loads(kiln(root, "inspect", image).stdout)
    assert isinstance(document, dict)
    return document


def test_import_inspect_history(source_root: Path) -> None:
    document = inspect(source_root, "busybox:latest")
    assert document["RepoTags"] == ["busybox:latest", "localhost:5000/a/b:t"]
    assert document["Config"] == {"Cmd": ["/bin/sh"], "Env": ["A=1"]}
    assert document["Architecture"] in ("amd64", "arm64")
    assert document["Os"] == "linux"
    root_fs = document["RootFS"]
    assert isinstance(root_fs, dict) and root_fs["Type"] == "layers" and len(root_fs["Layers"]) == 1
    history = kiln(source_root, "history", "busybox").stdout.splitlines()
    assert history[0].split() == ["IMAGE", "CREATED", "CREATED", "BY", "SIZE", "COMMENT"]
    assert "kiln import" in history[1]
    listing = kiln(source_root, "images").stdout.splitlines()
    assert [line.split()[:2] for line in listing] == [
        ["REPOSITORY", "TAG"],
        ["busybox", "latest"],
        ["localhost:5000/a/b", "t"],
    ]


def test_store_root_is_readable_by_skopeo(source_root: Path) -> None:
    skopeo = require_tool("skopeo")
    result = subprocess.run(
        [skopeo, "inspect", f"oci:{source_root}:busybox:latest"], capture_output=True, text=True, check=True
    )
    manifest_digest = inspect(source_root, "busybox")["Metadata"]
    assert isinstance(manifest_digest, dict)
    assert json.loads(result.stdout)["Digest"] == manifest_digest["ManifestDigest"]


def test_oci_archive_accepted_by_skopeo_and_umoci(source_root: Path, tmp_path: Path) -> None:
    skopeo, umoci = require_tool("skopeo"), require_tool("umoci")
    archive = tmp_path / "busybox-oci.tar"
    kiln(source_root, "save", "--format", "oci", "-o", str(archive), "busybox", "localhost:5000/a/b:t")
    result = subprocess.run(
        [skopeo, "inspect", f"oci-archive:{archive}:latest"], capture_output=True, text=True, check=True
    )
    skopeo_view = json.loads(result.stdout)
    document = inspect(source_root, "busybox")
    metadata = document["Metadata"]
    assert isinstance(metadata, dict)
    assert skopeo_view["Digest"] == metadata["ManifestDigest"]
    assert skopeo_view["Os"] == "linux"

    layout = tmp_path / "layout"
    layout.mkdir()
    with tarfile.open(archive) as opened:
        opened.extractall(layout, filter="data")
    bundle = tmp_path / "bundle"
    command = [umoci, "unpack", "--image", f"{layout}:latest", str(bundle)]
    if os.geteuid() != 0:
        command.insert(2, "--rootless")
    subprocess.run(command, capture_output=True, check=True)
    assert (bundle / "rootfs" / "bin" / "busybox").read_bytes() == BUSYBOX.read_bytes()
    assert os.readlink(bundle / "rootfs" / "bin" / "sh") == "busybox"
    config = json.loads((bundle / "config.json").read_text())
    assert config["process"]["args"] == ["/bin/sh"]


def test_docker_archive_accepted_by_skopeo(source_root: Path, tmp_path: Path) -> None:
    skopeo = require_tool("skopeo")
    archive = tmp_path / "busybox-docker.tar"
    kiln(source_root, "save", "-o", str(archive), "busybox")
    command = [skopeo, "inspect", "--config", f"docker-archive:{archive}"]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    config = json.loads(result.stdout)
    document = inspect(source_root, "busybox")
    root_fs = document["RootFS"]
    assert isinstance(root_fs, dict)
    assert config["rootfs"]["diff_ids"] == root_fs["Layers"]
    assert config["config"]["Cmd"] == ["/bin/sh"]


@pytest.mark.parametrize("archive_format", ["oci", "docker"])
def test_save_and_load_round_trip(source_root: Path, tmp_path: Path, archive_format: str) -> None:
    archive = tmp_path / f"images-{archive_format}.tar"
    images = ("busybox", "localhost:5000/a/b:t")
    kiln(source_root, "save", "--format", archive_format, "-o", str(archive), *images)
    target_root = tmp_path / "target"
    loaded = kiln(target_root, "load", "-i", str(archive)).stdout.splitlines()
    assert loaded == ["Loaded image: busybox:latest", "Loaded image: localhost:5000/a/b:t"]
    for image in ("busybox", "localhost:5000/a/b:t"):
        original, copy = inspect(source_root, image), inspect(target_root, image)
        for field in ("Id", "RepoTags", "Config", "RootFS", "Created", "Architecture", "Os"):
            assert copy[field] == original[field], field


@pytest.mark.parametrize("damage", ["truncated", "corrupted"])
def test_damaged_archive_leaves_store_unchanged(source_root: Path, tmp_path: Path, damage: str) -> None:
    archive = tmp_path / "busybox-oci.tar"
    kiln(source_root, "save", "--format", "oci", "-o", str(archive), "busybox")
    payload = bytearray(archive.read_bytes())
    if damage == "truncated":
        payload = payload[: len(payload) * 2 // 3]
    else:
        # Flip bytes in the middle of the largest member: the busybox layer.
        with tarfile.open(archive) as opened:
            largest = max(opened.getmembers(), key=lambda member: member.size)
        middle = largest.offset_data + largest.size // 2
        payload[middle : middle + 16] = bytes(byte ^ 0xFF for byte in payload[middle : middle + 16])
    damaged = tmp_path / "damaged.tar"
    damaged.write_bytes(bytes(payload))

    target_root = tmp_path / "target"
    kiln(target_root, "import", str(busybox_rootfs(tmp_path / "other.tar")), "other:1")
    before = store_state(target_root)
    result = kiln(target_root, "load", "-i", str(damaged), check=False)
    assert result.returncode == 1
    expected = "truncated" if damage == "truncated" else "is corrupt"
    assert result.stderr.startswith("error: ") and expected in result.stderr
    assert "Traceback" not in result.stderr
    assert store_state(target_root) == before
    assert [name for name in os.listdir(target_root) if name.startswith(".tmp-")] == []


def test_rmi_and_prune(source_root: Path) -> None:
    blobs_before = len(os.listdir(source_root / "blobs" / "sha256"))
    assert kiln(source_root, "rmi", "localhost:5000/a/b:t").stdout == "Untagged: localhost:5000/a/b:t\n"
    assert "Total reclaimed space: 0B" in kiln(source_root, "prune").stdout
    assert len(os.listdir(source_root / "blobs" / "sha256")) == blobs_before
    removed = kiln(source_root, "rmi", "busybox").stdout.splitlines()
    assert removed[0] == "Untagged: busybox"
    assert removed[1].startswith("Deleted: sha256:")
    kiln(source_root, "prune")
    assert os.listdir(source_root / "blobs" / "sha256") == []
    assert json.loads((source_root / "index.json").read_text())["manifests"] == []


def test_missing_image_is_an_error(source_root: Path) -> None:
    result = kiln(source_root, "inspect", "nope", check=False)
    assert (result.returncode, result.stderr) == (1, "error: no such image: nope\n")
