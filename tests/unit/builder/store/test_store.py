"""The store facade: images recorded, resolved, tagged, listed and kept visible to OCI tools."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from builder.errors import StoreError
from builder.store import Store, StoredLayer, chain_ids, default_root, prune
from builder.store.meta import SCHEMA_VERSION


def make_image(store: Store, payload: bytes = b"layer", name: str | None = "app:1") -> str:
    info = store.blobs.put_bytes(payload)
    layer = StoredLayer(info.digest, info.digest, info.size, "application/vnd.oci.image.layer.v1.tar")
    config = {"architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z", "config": {}}
    return store.put_image(config, [layer], name)


def test_put_and_get_image(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        payload_digest = store.blobs.put_bytes(b"layer").digest
        digest = make_image(store)
        manifest, config = store.get_image("app:1")
        assert store.resolve("docker.io/library/app:1") == digest
        assert manifest["layers"][0]["digest"] == payload_digest
        assert config["rootfs"] == {"type": "layers", "diff_ids": [payload_digest]}
        assert store.resolve(manifest["config"]["digest"]) == digest
        assert store.resolve(manifest["config"]["digest"][7:19]) == digest
        assert store.resolve(digest) == digest
        with pytest.raises(StoreError, match="no such image: nope"):
            store.resolve("nope")


def test_root_is_an_oci_layout(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        digest = make_image(store, name="localhost:5000/a/b:t")
    assert json.loads((tmp_path / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((tmp_path / "index.json").read_text())
    assert [entry["digest"] for entry in index["manifests"]] == [digest]
    assert index["manifests"][0]["annotations"] == {
        "io.containerd.image.name": "localhost:5000/a/b:t",
        "org.opencontainers.image.ref.name": "localhost:5000/a/b:t",
    }


def test_tag_untag_and_images(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        digest = make_image(store)
        store.tag("app:1", "other")
        names = [summary.reference.familiar() for summary in store.images() if summary.reference]
        assert names == ["app:1", "other:latest"]
        assert store.untag("app:1") is not None
        assert store.resolve("other") == digest
        assert store.untag("other") is not None
        assert store.images() == []
        assert store.untag("other") is None


def test_dangling_image_is_listed_without_name(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        digest = make_image(store, name=None)
        [summary] = store.images()
        assert summary.reference is None
        assert summary.manifest_digest == digest


def test_prune_keeps_referenced_and_leased(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        kept = make_image(store, b"kept", "kept")
        make_image(store, b"gone", "gone")
        store.untag("gone")
        stray = store.blobs.put_bytes(b"stray").digest
        with store.lease() as lease:
            leased = store.blobs.put_bytes(b"leased").digest
            lease.add_blob(leased)
            report = prune(store)
            assert store.blobs.has(leased)
        assert stray in report.blobs
        assert not store.blobs.has(stray)
        assert store.resolve("kept") == kept
        manifest, _config = store.get_image("kept")
        assert store.blobs.has(manifest["layers"][0]["digest"])
        assert len(report.blobs) == 4  # gone's layer, config and manifest, and the stray blob
        assert prune(store).blobs == [leased]


def test_prune_dry_run_removes_nothing(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        stray = store.blobs.put_bytes(b"stray").digest
        assert prune(store, dry_run=True).blobs == [stray]
        assert store.blobs.has(stray)


def test_config_bytes_must_match_layers(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        info = store.blobs.put_bytes(b"layer")
        layer = StoredLayer(info.digest, info.digest, info.size, "application/vnd.oci.image.layer.v1.tar")
        with pytest.raises(StoreError, match="diff_ids do not match"):
            store.put_image(b'{"rootfs":{"type":"layers","diff_ids":[]}}', [layer])
        missing = StoredLayer("sha256:" + "0" * 64, info.digest, 1, layer.media_type)
        with pytest.raises(StoreError, match="is not in the store"):
            store.put_image({}, [missing])


def test_schema_version_and_newer_store_refused(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        assert store.meta.schema_version == SCHEMA_VERSION
    connection = sqlite3.connect(tmp_path / "meta.db")
    connection.execute("UPDATE settings SET value = '99' WHERE key = 'schema_version'")
    connection.commit()
    connection.close()
    with pytest.raises(StoreError, match="schema version 99"):
        Store.open(tmp_path)


def test_kv_table(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        store.meta.put_value("cache", "k1", {"diff_id": "sha256:x"})
        assert store.meta.get_value("cache", "k1") == {"diff_id": "sha256:x"}
        assert store.meta.keys("cache") == ["k1"]
        store.meta.delete_value("cache", "k1")
        assert store.meta.get_value("cache", "k1") is None


def test_chain_ids_follow_the_oci_spec() -> None:
    first, second = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    import hashlib

    expected = "sha256:" + hashlib.sha256(f"{first} {second}".encode()).hexdigest()
    assert chain_ids([first, second]) == [first, expected]


def test_default_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KILN_ROOT", str(tmp_path / "x"))
    assert default_root() == tmp_path / "x"
    monkeypatch.delenv("KILN_ROOT")
    monkeypatch.setattr("os.geteuid", lambda: 0)
    assert default_root() == Path("/var/lib/kiln")
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_root() == tmp_path / "data" / "kiln"


def test_open_removes_what_dead_writers_left(tmp_path: Path) -> None:
    Store.open(tmp_path).close()
    dead_blob = tmp_path / "blobs" / "sha256" / ".tmp-999999999-aa"
    dead_snapshot = tmp_path / "snapshots" / ".tmp-999999999-bb"
    dead_staging = tmp_path / ".tmp-999999999-cc"
    live_staging = tmp_path / f".tmp-{os.getpid()}-dd"
    dead_blob.write_bytes(b"half")
    dead_snapshot.mkdir()
    (dead_snapshot / "file").write_bytes(b"x")
    dead_staging.mkdir()
    live_staging.mkdir()
    Store.open(tmp_path).close()
    assert not dead_blob.exists() and not dead_snapshot.exists() and not dead_staging.exists()
    assert live_staging.exists()


def test_expired_lease_protects_nothing(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        digest = store.blobs.put_bytes(b"leased").digest
        with store.lease(expires_in=-1.0) as lease:
            lease.add_blob(digest)
            assert prune(store).blobs == [digest]
