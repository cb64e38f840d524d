"""A large blob is flushed in the background while written; small ones never start it."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.store import writeback
from builder.store.blobs import BlobStore
from builder.store.writeback import EarlyWriteback


def test_a_large_write_starts_the_background_flush_and_finish_stops_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writeback, "THRESHOLD", 1000)
    monkeypatch.setattr(writeback, "INTERVAL", 0.001)
    with (tmp_path / "blob").open("wb") as raw:
        sink = EarlyWriteback(raw)
        sink.write(b"a" * 600)
        assert sink._thread is None
        sink.write(memoryview(b"b" * 600))
        assert sink._thread is not None and sink._thread.is_alive()
        sink.flush()
        sink.finish()
        assert sink._thread is None
    assert (tmp_path / "blob").read_bytes() == b"a" * 600 + b"b" * 600


def test_the_blob_store_writes_large_blobs_through_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writeback, "THRESHOLD", 1 << 10)
    blobs = BlobStore(tmp_path / "blobs")
    payload = bytes(range(256)) * 64
    info = blobs.put_from_writer(
        lambda out: [out.write(payload[i : i + 512]) for i in range(0, len(payload), 512)]
    )
    assert blobs.path(info.digest).read_bytes() == payload
    assert info.size == len(payload)
