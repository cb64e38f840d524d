from __future__ import annotations

from pathlib import Path

import pytest

from builder.errors import StoreError
from builder.store.gc import prune
from builder.store.store import Store
from cache import records
from cache.records import CacheRecord, step_identity
from tests.fixtures.cache_records import put_layer, record_for

KEY = "sha256:" + "1" * 64
OTHER_KEY = "sha256:" + "2" * 64


def test_round_trip_through_the_store(store: Store, tmp_path: Path) -> None:
    layer = put_layer(store, tmp_path, {"app/main.py": "print(1)\n"})
    saved = record_for(layer, KEY, step="Dockerfile#build#2", preimage={"kind": "Exec", "inputs": {}})
    records.save(store.meta, saved)
    assert records.load(store.meta, KEY) == saved
    assert records.lookup(store, KEY) == saved
    with Store.open(store.root) as reopened:
        assert records.lookup(reopened, KEY) == saved


def test_lookup_misses_unknown_key_and_missing_blob(store: Store, tmp_path: Path) -> None:
    layer = put_layer(store, tmp_path, {"a": "1"})
    records.save(store.meta, record_for(layer, KEY))
    assert records.lookup(store, OTHER_KEY) is None
    store.blobs.delete(layer.digest)
    assert records.lookup(store, KEY) is None


def test_lookup_refuses_a_record_built_on_other_layers(store: Store, tmp_path: Path) -> None:
    below = put_layer(store, tmp_path, {"base": "1"})
    layer = put_layer(store, tmp_path, {"a": "1"})
    records.save(store.meta, record_for(layer, KEY, parent_chain_id=below.diff_id))
    assert records.lookup(store, KEY, parent_chain_id=below.diff_id) is not None
    assert records.lookup(store, KEY, parent_chain_id="sha256:" + "9" * 64) is None


def test_snapshot_is_unpacked_from_the_record(store: Store, tmp_path: Path) -> None:
    layer = put_layer(store, tmp_path, {"etc/app.conf": "a=1\n"})
    record = record_for(layer, KEY)
    records.save(store.meta, record)
    found = records.lookup(store, KEY)
    assert found is not None
    path = store.snapshots.ensure(found.chain_id, found.parent_chain_id, found.diff_id, found.blob_digest)
    assert (path / "etc/app.conf").read_text() == "a=1\n"


def test_previous_for_step_and_input_files(store: Store, tmp_path: Path) -> None:
    layer = put_layer(store, tmp_path, {"a": "1"})
    step = step_identity("/src/Dockerfile", "build", 2)
    assert step == "/src/Dockerfile#build#2"
    first = record_for(layer, KEY, step=step, preimage={"inputs": {"source": "sha256:aa"}})
    records.save(store.meta, first, input_files={"source": {"app/main.py": "0123"}})
    assert records.previous_for_step(store.meta, step) == first
    assert records.input_files(store.meta, first.preimage) == {"source": {"app/main.py": "0123"}}
    second = record_for(layer, OTHER_KEY, step=step)
    records.save(store.meta, second)
    assert records.previous_for_step(store.meta, step) == second
    assert records.previous_for_step(store.meta, "unknown") is None


def test_mark_used_writes_only_when_stale(store: Store, tmp_path: Path) -> None:
    layer = put_layer(store, tmp_path, {"a": "1"})
    record = record_for(layer, KEY, last_used=1000.0)
    records.save(store.meta, record)
    assert records.mark_used(store.meta, record, now=1000.0 + 60) == record
    assert records.load(store.meta, KEY) == record
    used = records.mark_used(store.meta, record, now=1000.0 + 7200)
    assert used.last_used == 8200.0
    assert records.load(store.meta, KEY) == used


def test_all_records_least_recently_used_first_and_prune_roots(store: Store, tmp_path: Path) -> None:
    old = record_for(put_layer(store, tmp_path, {"a": "1"}), KEY, last_used=5.0)
    new = record_for(put_layer(store, tmp_path, {"b": "2"}), OTHER_KEY, last_used=1.0)
    records.save(store.meta, old)
    records.save(store.meta, new)
    assert [record.key for record in records.all_records(store.meta)] == [OTHER_KEY, KEY]
    roots = records.blob_roots(store.meta)
    assert roots == {old.blob_digest, new.blob_digest}
    report = prune(store, extra_blob_roots=roots)
    assert report.blobs == []
    records.delete(store.meta, KEY)
    report = prune(store, extra_blob_roots=records.blob_roots(store.meta))
    assert report.blobs == [old.blob_digest]


def test_malformed_record_is_a_store_error(store: Store) -> None:
    store.meta.put_value(records.CACHE_NAMESPACE, KEY, {"key": KEY})
    with pytest.raises(StoreError) as caught:
        records.load(store.meta, KEY)
    assert str(caught.value) == "malformed cache record: no field 'preimage'"
    with pytest.raises(StoreError) as caught:
        CacheRecord.from_json(["not", "an", "object"])
    assert str(caught.value) == "malformed cache record: not a JSON object"
