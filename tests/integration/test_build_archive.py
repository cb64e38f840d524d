"""The OCI archive of a built image is one outside tools accept: ``skopeo inspect`` reads
it and ``umoci unpack`` turns its layout into a runtime bundle with the built files."""

from __future__ import annotations

import json
import platform
import subprocess
import tarfile
from pathlib import Path

import pytest

from builder.oci.mediatypes import OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD
from builder.store import Store
from builder.store.variants import variants
from tests.conftest import REPO_ROOT, require_root, require_tool
from tests.fixtures.busybox import busybox_tar  # noqa: F401  (a fixture)
from tests.fixtures.kiln_cli import import_busybox, kiln

pytestmark = [pytest.mark.root, pytest.mark.slow]

HELLO = REPO_ROOT / "examples" / "hello"
GOARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


@pytest.fixture(scope="module")
def hello_archive(tmp_path_factory: pytest.TempPathFactory, busybox_tar: Path) -> Path:  # noqa: F811
    require_root("builds run containers and mount overlays")
    base = tmp_path_factory.mktemp("build-archive")
    store_root, archive = base / "store", base / "hello.oci.tar"
    import_busybox(store_root, busybox_tar)
    output = f"type=oci,dest={archive},name=hello:latest"
    assert kiln(store_root, "build", "-q", "-t", "hello", "-o", output, str(HELLO)) == 0
    return archive


def test_skopeo_inspects_the_archive(hello_archive: Path) -> None:
    skopeo = require_tool("skopeo")
    inspected = subprocess.run(
        [skopeo, "inspect", f"oci-archive:{hello_archive}"], capture_output=True, text=True, check=True
    )
    summary = json.loads(inspected.stdout)
    assert (summary["Os"], summary["Architecture"]) == ("linux", GOARCH)
    assert len(summary["Layers"]) == 3  # busybox, COPY, RUN
    config = subprocess.run(
        [skopeo, "inspect", "--config", f"oci-archive:{hello_archive}"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(config.stdout)["config"]["Cmd"] == ["hello"]


def test_umoci_unpacks_the_layout(hello_archive: Path, tmp_path: Path) -> None:
    umoci = require_tool("umoci")
    layout, bundle = tmp_path / "layout", tmp_path / "bundle"
    layout.mkdir()
    with tarfile.open(hello_archive) as archive:
        archive.extractall(layout, filter="tar")
    subprocess.run([umoci, "unpack", "--image", f"{layout}:latest", str(bundle)], check=True)
    runtime_config = json.loads((bundle / "config.json").read_text())
    assert runtime_config["process"]["args"] == ["hello"]
    rootfs = bundle / "rootfs"
    script = rootfs / "usr" / "local" / "bin" / "hello"
    assert script.read_bytes() == (HELLO / "hello.sh").read_bytes()
    assert script.stat().st_mode & 0o7777 == 0o755
    assert (rootfs / "etc" / "built-on").read_text() == f"built on {platform.machine()}\n"
    assert (rootfs / "bin" / "busybox").is_file()
    assert not (rootfs / "etc" / "hosts").exists()


def test_the_store_keeps_built_layers_uncompressed_and_the_archive_gzips_them(hello_archive: Path) -> None:
    store_root = hello_archive.parent / "store"
    with Store.open(store_root) as store:
        manifest, config = store.get_image("hello")
    built = manifest["layers"][1:]  # above busybox: COPY, RUN
    assert [layer["mediaType"] for layer in built] == [OCI_LAYER, OCI_LAYER]
    assert [layer["digest"] for layer in built] == config["rootfs"]["diff_ids"][1:]
    with tarfile.open(hello_archive) as archive:
        index = json.loads(_member(archive, "index.json"))
        archived = json.loads(_member(archive, f"blobs/sha256/{index['manifests'][0]['digest'][7:]}"))
    assert archived["config"] == manifest["config"]  # the same image id
    assert {layer["mediaType"] for layer in archived["layers"]} == {OCI_LAYER_GZIP}


def test_a_zstd_archive_is_read_by_skopeo_and_umoci(hello_archive: Path, tmp_path: Path) -> None:
    skopeo, umoci = require_tool("skopeo"), require_tool("umoci")
    store_root = hello_archive.parent / "store"
    archive_path = tmp_path / "hello.zstd.tar"
    command = ["save", "--format", "oci", "--compression", "zstd", "-o", str(archive_path), "hello"]
    assert kiln(store_root, *command) == 0
    with Store.open(store_root) as store:
        made = sorted(variant.compression for variant in variants(store))
    assert made == ["gzip", "gzip", "zstd", "zstd"]  # the -o archive made the gzip ones
    inspect = [skopeo, "inspect", "--raw", f"oci-archive:{archive_path}"]
    raw = subprocess.run(inspect, capture_output=True, text=True, check=True)
    layer_types = [layer["mediaType"] for layer in json.loads(raw.stdout)["layers"]]
    assert layer_types == [OCI_LAYER_GZIP, OCI_LAYER_ZSTD, OCI_LAYER_ZSTD]
    # umoci 0.4 reads no zstd: skopeo decompresses every layer (checking it) into a gzip
    # layout, and umoci unpacks that.
    layout, bundle = tmp_path / "layout", tmp_path / "bundle"
    convert = [skopeo, "copy", "--dest-compress", "--dest-compress-format", "gzip"]
    subprocess.run([*convert, f"oci-archive:{archive_path}", f"oci:{layout}:latest"], check=True)
    subprocess.run([umoci, "unpack", "--image", f"{layout}:latest", str(bundle)], check=True)
    script = bundle / "rootfs" / "usr" / "local" / "bin" / "hello"
    assert script.read_bytes() == (HELLO / "hello.sh").read_bytes()


def _member(archive: tarfile.TarFile, name: str) -> bytes:
    extracted = archive.extractfile(name)
    assert extracted is not None
    return extracted.read()
