from __future__ import annotations

import json
from pathlib import Path

import pytest

from builder.errors import StoreError
from builder.store.store import Store
from cache import records
from cache.cacheimage import CACHE_CONFIG_MEDIA_TYPE
from cache.transfer import export_local, import_local
from tests.fixtures.cache_records import CHAIN_KEYS, assert_chain_imported, save_record_chain


@pytest.fixture
def built(store: Store, tmp_path: Path) -> list[records.CacheRecord]:
    """Three chained records of a build, with per-file input digests."""
    return save_record_chain(store, tmp_path)


def test_round_trip_between_two_stores(
    store: Store, built: list[records.CacheRecord], tmp_path: Path
) -> None:
    cache_dir = tmp_path / "cache"
    exported = export_local(store, built, cache_dir, "max")
    assert [record.key for record in exported] == CHAIN_KEYS
    with Store.open(tmp_path / "second") as second:
        added = import_local(second, cache_dir)
        assert [record.key for record in added] == CHAIN_KEYS
        assert_chain_imported(second, built)
        assert import_local(second, cache_dir) == []


def test_layout_is_an_oci_image_layout(
    store: Store, built: list[records.CacheRecord], tmp_path: Path
) -> None:
    cache_dir = tmp_path / "cache"
    export_local(store, built, cache_dir)
    assert json.loads((cache_dir / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((cache_dir / "index.json").read_text())
    manifest_digest = index["manifests"][0]["digest"]
    manifest = json.loads((cache_dir / "blobs/sha256" / manifest_digest[7:]).read_bytes())
    assert manifest["config"]["mediaType"] == CACHE_CONFIG_MEDIA_TYPE
    assert [layer["digest"] for layer in manifest["layers"]] == [record.blob_digest for record in built]


def test_min_mode_keeps_only_the_final_image_layers(
    store: Store, built: list[records.CacheRecord], tmp_path: Path
) -> None:
    kept = export_local(store, built, tmp_path / "cache", "min", final_chain_ids={built[2].chain_id})
    assert [record.key for record in kept] == [CHAIN_KEYS[2]]


def test_exporting_again_merges(store: Store, built: list[records.CacheRecord], tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    export_local(store, built[:1], cache_dir)
    merged = export_local(store, built[1:], cache_dir)
    assert [record.key for record in merged] == CHAIN_KEYS


def test_tampered_blob_is_refused(store: Store, built: list[records.CacheRecord], tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    export_local(store, built, cache_dir)
    layer_path = cache_dir / "blobs/sha256" / built[0].blob_digest[7:]
    layer_path.write_bytes(b"not the layer")
    with Store.open(tmp_path / "second") as second, pytest.raises(StoreError, match="does not match"):
        import_local(second, cache_dir)


def test_not_a_cache_directory(tmp_path: Path, store: Store) -> None:
    with pytest.raises(StoreError) as caught:
        import_local(store, tmp_path / "nothing")
    assert str(caught.value).startswith(f"cannot read {tmp_path / 'nothing' / 'index.json'}")


def test_unknown_mode(store: Store, tmp_path: Path) -> None:
    with pytest.raises(StoreError) as caught:
        export_local(store, [], tmp_path / "cache", "all")  # type: ignore[arg-type]
    assert str(caught.value) == "unknown cache export mode 'all': expected min or max"
