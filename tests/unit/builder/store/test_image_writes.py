"""What storing an image syncs: a new image's config and manifest share one directory fsync."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.store import Store, StoredLayer
from builder.store import blobs as blobs_module


@pytest.fixture
def directory_syncs(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    synced: list[Path] = []
    real = blobs_module._fsync_directory

    def counting(directory: Path) -> None:
        synced.append(directory)
        real(directory)

    monkeypatch.setattr(blobs_module, "_fsync_directory", counting)
    return synced


def test_a_new_image_syncs_the_blob_directory_once(tmp_path: Path, directory_syncs: list[Path]) -> None:
    with Store.open(tmp_path) as store:
        info = store.blobs.put_bytes(b"layer")
        layer = StoredLayer(info.digest, info.digest, info.size, "application/vnd.oci.image.layer.v1.tar")
        directory_syncs.clear()
        config = {"architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z", "config": {}}
        digest = store.put_image(config, [layer], "app:1")
        assert directory_syncs == [store.blobs.directory]
        manifest = store.manifest(digest)
        assert store.blobs.has(manifest["config"]["digest"])


def test_an_unsynced_blob_is_synced_by_the_next_put_even_of_a_stored_blob(
    tmp_path: Path, directory_syncs: list[Path]
) -> None:
    with Store.open(tmp_path) as store:
        stored = store.blobs.put_bytes(b"already here")
        directory_syncs.clear()
        store.blobs.put_bytes(b"new", sync_directory=False)
        assert directory_syncs == []
        assert store.blobs.put_bytes(b"already here") == stored
        assert directory_syncs == [store.blobs.directory]
        store.blobs.put_bytes(b"already here")
        assert directory_syncs == [store.blobs.directory]
