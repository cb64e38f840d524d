from __future__ import annotations

from pathlib import Path

import pytest

from builder.errors import UsageError
from builder.store.gc import prune
from builder.store.store import Store
from cache import records
from cache.prune import parse_duration, parse_size, prune_records
from tests.fixtures.cache_records import put_layer, record_for

NOW = 100_000.0


@pytest.fixture
def three(store: Store, tmp_path: Path) -> list[records.CacheRecord]:
    """Records last used 3 h, 2 h and 1 h ago, oldest first."""
    made = []
    for index, hours_ago in enumerate((3, 2, 1)):
        layer = put_layer(store, tmp_path, {f"f{index}": "x" * 1000 * (index + 1)})
        record = record_for(
            layer,
            f"sha256:{index}" + "0" * 63,
            last_used=NOW - hours_ago * 3600,
            preimage={"inputs": {"source": f"sha256:in{index}"}},
        )
        records.save(store.meta, record, input_files={"source": {f"f{index}": "ab"}})
        made.append(record)
    return made


def keys(report_records: list[records.CacheRecord]) -> list[str]:
    return [record.key for record in report_records]


def test_until_removes_records_unused_for_that_long(store: Store, three: list[records.CacheRecord]) -> None:
    report = prune_records(store.meta, until=parse_duration("90m"), now=NOW)
    assert keys(report.removed) == keys(three[:2])
    assert keys(records.all_records(store.meta)) == keys(three[2:])
    assert store.meta.keys(records.INPUTS_NAMESPACE) == ["sha256:in2"]


def test_keep_storage_removes_least_recently_used_first(
    store: Store, three: list[records.CacheRecord]
) -> None:
    newest_two = three[1].size + three[2].size
    report = prune_records(store.meta, keep_storage=newest_two, now=NOW)
    assert keys(report.removed) == keys(three[:1])
    assert report.bytes_released == three[0].size


def test_without_limits_everything_goes_except_leased(store: Store, three: list[records.CacheRecord]) -> None:
    report = prune_records(store.meta, leased_blobs={three[1].blob_digest}, now=NOW)
    assert keys(report.removed) == [three[0].key, three[2].key]
    assert keys(records.all_records(store.meta)) == [three[1].key]


def test_blobs_of_forgotten_records_go_at_the_next_gc(store: Store, three: list[records.CacheRecord]) -> None:
    prune_records(store.meta, until=parse_duration("90m"), now=NOW)
    report = prune(store, extra_blob_roots=records.blob_roots(store.meta))
    assert sorted(report.blobs) == sorted(record.blob_digest for record in three[:2])


@pytest.mark.parametrize(
    ("text", "size"),
    [("100", 100), ("1KB", 1024), ("512MB", 512 * 1024**2), ("10GiB", 10 * 1024**3), ("1.5g", 1610612736)],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(("text", "seconds"), [("24h", 86400.0), ("1h30m", 5400.0), ("7d", 604800.0)])
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_bad_size_and_duration() -> None:
    with pytest.raises(UsageError) as caught:
        parse_size("lots")
    assert (
        str(caught.value) == "invalid size 'lots': expected a number with an optional unit (KB, MB, GB, TB)"
    )
    with pytest.raises(UsageError) as caught:
        parse_duration("1 week")
    assert str(caught.value) == "invalid duration '1 week': expected e.g. 24h, 1h30m, 7d"
