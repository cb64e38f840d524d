"""Container records in the store's key/value table: saved, found by id, name or prefix."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.containers.records import (
    ContainerRecord,
    all_records,
    delete_record,
    find_record,
    records_using,
    save_record,
)
from builder.errors import StoreError
from builder.store.meta import MetaStore


def _record(container_id: str, name: str, created: str, image_digest: str = "sha256:aa") -> ContainerRecord:
    return ContainerRecord(
        id=container_id,
        name=name,
        image="busybox",
        image_digest=image_digest,
        entrypoint=(),
        cmd=("sh",),
        env=("PATH=/bin",),
        working_dir="/",
        user="",
        created=created,
        lease_id="lease",
    )


@pytest.fixture
def meta(tmp_path: Path) -> MetaStore:
    return MetaStore(tmp_path / "meta.db")


def test_round_trip_and_order(meta: MetaStore) -> None:
    older = _record("abc111", "older", "2026-01-01T00:00:00Z")
    newer = _record("abd222", "newer", "2026-02-01T00:00:00Z", image_digest="sha256:bb")
    save_record(meta, older)
    save_record(meta, newer.with_status("exited", exit_code=3))
    assert all_records(meta) == [newer.with_status("exited", exit_code=3), older]
    assert records_using(meta, "sha256:aa") == [older]


def test_find_by_id_name_and_unique_prefix(meta: MetaStore) -> None:
    first, second = _record("abc111", "first", "1"), _record("abd222", "second", "2")
    save_record(meta, first)
    save_record(meta, second)
    assert find_record(meta, "abc111") == first
    assert find_record(meta, "second") == second
    assert find_record(meta, "abd") == second
    with pytest.raises(StoreError, match="multiple containers match 'ab'"):
        find_record(meta, "ab")
    delete_record(meta, "abc111")
    with pytest.raises(StoreError, match="no such container: first"):
        find_record(meta, "first")


def test_a_running_record_of_a_dead_process_is_not_running(meta: MetaStore) -> None:
    record = _record("abc111", "ghost", "1").with_status("running", pid=2**22 + 1)
    assert not record.is_running()
