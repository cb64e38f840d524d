"""OCI and docker archives: written once per blob, read back to the same image, or refused whole."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from builder.errors import ImageFormatError
from builder.export.docker_archive import write_docker_archive
from builder.export.load import load_archive
from builder.export.oci_archive import write_oci_archive
from builder.export.rootfs_import import import_rootfs
from builder.oci import Manifest, validate_image
from builder.store import Store


def rootfs_tar(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, payload in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


def store_state(store: Store) -> tuple[list[str], list[str], list[str], bytes]:
    """Everything load could change: blob names, refs, images and the root index."""
    return (
        sorted(store.blobs.digests()),
        [f"{ref.name}={ref.digest}" for ref in store.meta.refs()],
        sorted(image.digest for image in store.meta.images()),
        (store.root / "index.json").read_bytes(),
    )


@pytest.fixture
def source(tmp_path: Path) -> Store:
    store = Store.open(tmp_path / "source")
    import_rootfs(store, io.BytesIO(rootfs_tar({"a.txt": b"alpha"})), "first:1", changes=['CMD ["/bin/sh"]'])
    import_rootfs(store, io.BytesIO(gzip.compress(rootfs_tar({"b.txt": b"beta"}))), "second:2")
    store.tag("first:1", "localhost:5000/team/first:copy")
    return store


def save(store: Store, names: list[str], kind: str) -> bytes:
    out = io.BytesIO()
    if kind == "oci":
        write_oci_archive(store, names, out)
    else:
        write_docker_archive(store, names, out)
    return out.getvalue()


def members(archive_bytes: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(archive_bytes)) as archive:
        return [member.name for member in archive.getmembers() if member.isfile()]


def test_import_applies_changes(source: Store) -> None:
    manifest, config = source.get_image("first:1")
    assert config["config"] == {"Cmd": ["/bin/sh"]}
    assert config["history"][0]["created_by"] == "kiln import"
    assert manifest["layers"][0]["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    config_json = source.blobs.read_bytes(manifest["config"]["digest"])
    validate_image(Manifest.from_json(source.blobs.read_bytes(source.resolve("first:1"))), config_json)


def test_import_refuses_non_tar(source: Store) -> None:
    before = store_state(source)
    with pytest.raises(ImageFormatError, match="not a valid tar"):
        import_rootfs(source, io.BytesIO(b"not a tar at all" * 100), "bad")
    assert store_state(source) == before


@pytest.mark.parametrize("kind", ["oci", "docker"])
def test_round_trip(source: Store, tmp_path: Path, kind: str) -> None:
    archive_bytes = save(source, ["first:1", "second:2", "localhost:5000/team/first:copy"], kind)
    target = Store.open(tmp_path / "target")
    loaded = load_archive(target, io.BytesIO(archive_bytes))
    assert [list(image.names) for image in loaded] == [
        ["docker.io/library/first:1"],
        ["docker.io/library/second:2"],
        ["localhost:5000/team/first:copy"],
    ]
    for name in ("first:1", "second:2", "localhost:5000/team/first:copy"):
        source_manifest, source_config = source.get_image(name)
        target_manifest, target_config = target.get_image(name)
        assert target_config == source_config
        assert target_manifest["config"] == source_manifest["config"]
        if kind == "oci":
            assert target.resolve(name) == source.resolve(name)
        for layer in target.layers(target_manifest, target_config):
            assert target.blobs.verify(layer.digest)


def test_shared_blobs_are_written_once(source: Store) -> None:
    oci_names = members(save(source, ["first:1", "localhost:5000/team/first:copy"], "oci"))
    assert len(oci_names) == len(set(oci_names)) == 2 + 3  # oci-layout, index.json, manifest, config, layer
    docker_names = members(save(source, ["first:1", "localhost:5000/team/first:copy"], "docker"))
    assert len([name for name in docker_names if name.endswith("layer.tar")]) == 1


def test_oci_index_annotations(source: Store) -> None:
    with tarfile.open(fileobj=io.BytesIO(save(source, ["first:1"], "oci"))) as archive:
        index_file = archive.extractfile("index.json")
        assert index_file is not None
        index = json.loads(index_file.read())
    assert index["manifests"][0]["annotations"] == {
        "io.containerd.image.name": "docker.io/library/first:1",
        "org.opencontainers.image.ref.name": "1",
    }


def test_docker_manifest_and_repositories(source: Store) -> None:
    with tarfile.open(fileobj=io.BytesIO(save(source, ["first:1"], "docker"))) as archive:
        manifest_file = archive.extractfile("manifest.json")
        repositories_file = archive.extractfile("repositories")
        assert manifest_file is not None and repositories_file is not None
        entries = json.loads(manifest_file.read())
        repositories = json.loads(repositories_file.read())
    _manifest, config = source.get_image("first:1")
    diff_hex = config["rootfs"]["diff_ids"][0][7:]
    assert entries == [
        {
            "Config": f"{source.get_image('first:1')[0]['config']['digest'][7:]}.json",
            "RepoTags": ["first:1"],
            "Layers": [f"{diff_hex}/layer.tar"],
        }
    ]
    assert repositories == {"first": {"1": diff_hex}}


def rewrite_member(archive_bytes: bytes, pick: str, change: bytes | None) -> bytes:
    """The archive with one member's content replaced (``None``: dropped)."""
    out = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(archive_bytes)) as source,
        tarfile.open(fileobj=out, mode="w") as target,
    ):
        for member in source.getmembers():
            payload = source.extractfile(member).read() if member.isfile() else b""  # type: ignore[union-attr]
            if member.name.endswith(pick) and member.isfile():
                if change is None:
                    continue
                payload = change
                member.size = len(payload)
            target.addfile(member, io.BytesIO(payload) if member.isfile() else None)
    return out.getvalue()


@pytest.mark.parametrize("kind", ["oci", "docker"])
def test_corrupt_layer_is_refused_and_store_unchanged(source: Store, tmp_path: Path, kind: str) -> None:
    archive_bytes = save(source, ["first:1"], kind)
    manifest, _config = source.get_image("first:1")
    suffix = manifest["layers"][0]["digest"][7:] if kind == "oci" else "layer.tar"
    broken = rewrite_member(archive_bytes, suffix, rootfs_tar({"a.txt": b"ALPHA"}))
    target = Store.open(tmp_path / "target")
    import_rootfs(target, io.BytesIO(rootfs_tar({"keep": b"x"})), "keep")
    before = store_state(target)
    with pytest.raises(ImageFormatError, match="is corrupt"):
        load_archive(target, io.BytesIO(broken))
    assert store_state(target) == before
    assert [entry for entry in os.listdir(target.root) if entry.startswith(".tmp-")] == []


@pytest.mark.parametrize("kind", ["oci", "docker"])
def test_truncated_archive_is_refused(source: Store, tmp_path: Path, kind: str) -> None:
    archive_bytes = save(source, ["first:1"], kind)
    target = Store.open(tmp_path / "target")
    before = store_state(target)
    with pytest.raises(ImageFormatError, match="truncated"):
        load_archive(target, io.BytesIO(archive_bytes[: len(archive_bytes) // 2]))
    assert store_state(target) == before


def test_missing_blob_is_refused(source: Store, tmp_path: Path) -> None:
    manifest, _config = source.get_image("first:1")
    broken = rewrite_member(save(source, ["first:1"], "oci"), manifest["config"]["digest"][7:], None)
    target = Store.open(tmp_path / "target")
    with pytest.raises(ImageFormatError, match="the archive lacks blob"):
        load_archive(target, io.BytesIO(broken))
    assert list(target.blobs.digests()) == []


def test_not_an_archive(tmp_path: Path) -> None:
    target = Store.open(tmp_path / "target")
    with pytest.raises(ImageFormatError, match="not an image archive"):
        load_archive(target, io.BytesIO(rootfs_tar({"hello": b"x"})))
    with pytest.raises(ImageFormatError, match="truncated or not a tar"):
        load_archive(target, io.BytesIO(b"garbage" * 1000))


def test_member_climbing_out_is_refused(tmp_path: Path) -> None:
    target = Store.open(tmp_path / "target")
    with pytest.raises(ImageFormatError, match="climbs out"):
        load_archive(target, io.BytesIO(rootfs_tar({"../escape": b"x"})))
    assert not (tmp_path / "escape").exists()


def test_gzipped_archive_loads(source: Store, tmp_path: Path) -> None:
    target = Store.open(tmp_path / "target")
    loaded = load_archive(target, io.BytesIO(gzip.compress(save(source, ["second:2"], "docker"))))
    assert loaded[0].names == ("docker.io/library/second:2",)


def oci_layout_tar(manifest: dict[str, object], blobs: list[bytes]) -> bytes:
    """A hand-made OCI archive holding ``blobs`` and ``manifest``, named ``odd:1``."""
    manifest_json = json.dumps(manifest).encode()
    manifest_digest = "sha256:" + hashlib.sha256(manifest_json).hexdigest()
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest,
                "size": len(manifest_json),
                "annotations": {"io.containerd.image.name": "docker.io/library/odd:1"},
            }
        ],
    }
    files = {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}', "index.json": json.dumps(index).encode()}
    for payload in [*blobs, manifest_json]:
        files["blobs/sha256/" + hashlib.sha256(payload).hexdigest()] = payload
    return rootfs_tar(files)


def descriptor(media_type: str, payload: bytes) -> dict[str, object]:
    digest = "sha256:" + hashlib.sha256(payload).hexdigest()
    return {"mediaType": media_type, "digest": digest, "size": len(payload)}


def test_inconsistent_image_is_refused(tmp_path: Path) -> None:
    layer = rootfs_tar({"a": b"a"})
    layer_digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [layer_digest] * 2}}
    ).encode()
    layer_descriptor = descriptor("application/vnd.oci.image.layer.v1.tar", layer)
    manifest: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": descriptor("application/vnd.oci.image.config.v1+json", config),
        "layers": [layer_descriptor],
    }
    target = Store.open(tmp_path / "target")
    with pytest.raises(ImageFormatError, match="config has 2 diff_ids for 1 layers"):
        load_archive(target, io.BytesIO(oci_layout_tar(manifest, [config, layer])))
    assert list(target.blobs.digests()) == []
    manifest["layers"] = [layer_descriptor, layer_descriptor]
    loaded = load_archive(target, io.BytesIO(oci_layout_tar(manifest, [config, layer])))
    assert loaded[0].names == ("docker.io/library/odd:1",)
