"""Layers the store keeps uncompressed leave it compressed: OCI archives of such images name
the compressed variants, keep the image id, and a second export compresses nothing."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from builder.export.docker_archive import write_docker_archive
from builder.export.load import load_archive
from builder.export.oci_archive import write_oci_archive
from builder.export.outgoing import OutgoingImages
from builder.export.rootfs_import import import_rootfs
from builder.graph import Platform
from builder.layers import compression as compression_module
from builder.layers.compression import Compression
from builder.oci import Manifest, mediatypes, validate_image
from builder.store import Store, StoredLayer
from builder.store.variants import variants


def rootfs_tar(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, payload in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(payload), 0o644
            archive.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


def built_image(store: Store, base: str, name: str, payload: bytes) -> str:
    """``base`` plus one uncompressed layer, as ``kiln build`` stores it; its manifest digest."""
    info = store.blobs.put_bytes(rootfs_tar({"built.txt": payload}))
    manifest, config = store.get_image(base)
    layers = [
        *store.layers(manifest, config),
        StoredLayer(info.digest, info.digest, info.size, mediatypes.OCI_LAYER),
    ]
    config.pop("rootfs")
    config["history"] = [*config.get("history", []), {"created_by": "RUN build"}]
    return store.put_image(config, layers, name)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "store") as opened:
        import_rootfs(opened, io.BytesIO(rootfs_tar({"base.txt": b"base"})), "base:1")
        built_image(opened, "base:1", "app:1", b"built " * 500)
        yield opened


def oci_archive(store: Store, names: list[str], compression: Compression = "gzip") -> bytes:
    out = io.BytesIO()
    write_oci_archive(store, names, out, compression=compression)
    return out.getvalue()


def archive_files(archive_bytes: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(archive_bytes)) as archive:
        found: dict[str, bytes] = {}
        for member in archive.getmembers():
            extracted = archive.extractfile(member) if member.isfile() else None
            if extracted is not None:
                found[member.name] = extracted.read()
        return found


def blob(files: dict[str, bytes], digest: str) -> bytes:
    return files[f"blobs/sha256/{digest.removeprefix('sha256:')}"]


def archived_manifest(files: dict[str, bytes], position: int = 0) -> dict[str, Any]:
    index = json.loads(files["index.json"])
    manifest: dict[str, Any] = json.loads(blob(files, index["manifests"][position]["digest"]))
    return manifest


def test_the_store_keeps_the_built_layer_uncompressed(store: Store) -> None:
    manifest, config = store.get_image("app:1")
    top = manifest["layers"][-1]
    assert top["mediaType"] == mediatypes.OCI_LAYER
    assert top["digest"] == config["rootfs"]["diff_ids"][-1]


def test_an_oci_archive_gzips_the_built_layer_and_keeps_the_image_id(store: Store, tmp_path: Path) -> None:
    stored_manifest, stored_config = store.get_image("app:1")
    files = archive_files(oci_archive(store, ["app:1"]))
    manifest = archived_manifest(files)
    assert manifest["config"] == stored_manifest["config"]
    assert manifest["layers"][0] == stored_manifest["layers"][0]  # imported: already gzip
    top = manifest["layers"][1]
    assert top["mediaType"] == mediatypes.OCI_LAYER_GZIP
    assert gzip.decompress(blob(files, top["digest"])) == store.blobs.read_bytes(
        stored_config["rootfs"]["diff_ids"][1]
    )
    config_bytes = blob(files, manifest["config"]["digest"])
    index = json.loads(files["index.json"])
    validate_image(Manifest.from_json(blob(files, index["manifests"][0]["digest"])), config_bytes)
    with Store.open(tmp_path / "loaded") as loaded:
        [image] = load_archive(loaded, io.BytesIO(oci_archive(store, ["app:1"])))
        assert loaded.manifest(image.manifest_digest)["config"] == stored_manifest["config"]


def test_zstd_when_asked(store: Store) -> None:
    manifest = archived_manifest(archive_files(oci_archive(store, ["app:1"], "zstd")))
    assert [layer["mediaType"] for layer in manifest["layers"]] == [
        mediatypes.OCI_LAYER_GZIP,
        mediatypes.OCI_LAYER_ZSTD,
    ]


def test_none_writes_the_stored_manifest_byte_for_byte(store: Store) -> None:
    files = archive_files(oci_archive(store, ["app:1"], "none"))
    digest = json.loads(files["index.json"])["manifests"][0]["digest"]
    assert digest == store.resolve("app:1")
    assert blob(files, digest) == store.blobs.read_bytes(digest)
    assert variants(store) == []


def test_a_second_export_reuses_the_variant(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    first = oci_archive(store, ["app:1"])
    blobs_after_first = sorted(store.blobs.digests())
    [variant] = variants(store)
    inode = store.blobs.path(variant.digest).stat().st_ino

    def no_second_compression(*_args: object) -> None:
        raise AssertionError("the layer was compressed again")

    monkeypatch.setattr(compression_module, "open_compressor", no_second_compression)
    assert oci_archive(store, ["app:1"]) == first
    assert sorted(store.blobs.digests()) == blobs_after_first
    assert variants(store) == [variant]
    assert store.blobs.path(variant.digest).stat().st_ino == inode


def test_an_index_names_the_outgoing_manifests(store: Store) -> None:
    other = built_image(store, "base:1", "other:1", b"other")
    app = store.resolve("app:1")
    index_digest = store.put_index(
        [(app, Platform("linux", "amd64")), (other, Platform("linux", "arm64"))], "multi:1"
    )
    outgoing = OutgoingImages(store, "gzip")
    leaving = outgoing.digest(index_digest)
    assert leaving != index_digest
    entries = outgoing.json(leaving)["manifests"]
    assert [entry["digest"] for entry in entries] == [outgoing.digest(app), outgoing.digest(other)]
    assert [entry["platform"]["architecture"] for entry in entries] == ["amd64", "arm64"]
    files = archive_files(oci_archive(store, ["multi:1"]))
    for entry in entries:
        manifest = json.loads(blob(files, entry["digest"]))
        assert manifest["layers"][-1]["mediaType"] == mediatypes.OCI_LAYER_GZIP
        for descriptor in [manifest["config"], *manifest["layers"]]:
            assert blob(files, descriptor["digest"])


def test_an_image_with_only_compressed_layers_leaves_unchanged(store: Store) -> None:
    outgoing = OutgoingImages(store, "zstd")
    assert outgoing.digest(store.resolve("base:1")) == store.resolve("base:1")
    assert outgoing.documents == {}


def test_a_docker_archive_holds_the_stored_tar_as_it_is(store: Store) -> None:
    out = io.BytesIO()
    write_docker_archive(store, ["app:1"], out)
    files = archive_files(out.getvalue())
    diff_id = store.get_image("app:1")[1]["rootfs"]["diff_ids"][-1]
    assert files[f"{diff_id.removeprefix('sha256:')}/layer.tar"] == store.blobs.read_bytes(diff_id)
    assert variants(store) == []
