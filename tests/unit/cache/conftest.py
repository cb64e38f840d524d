"""Fixtures for cache tests: real stores in tmp_path and real layer blobs in them."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from builder.layers import LayerDescriptor, write_layer
from builder.store.snapshots import chain_ids
from builder.store.store import Store
from cache.records import CacheRecord

MakeRecord = Callable[..., CacheRecord]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "store") as opened:
        yield opened


def put_layer(store: Store, tmp_path: Path, files: Mapping[str, str]) -> LayerDescriptor:
    """A real gzip layer holding ``files`` (path → text), stored as a blob of ``store``."""
    diff_dir = tmp_path / f"diff-{len(list(tmp_path.iterdir()))}"
    for relative, text in files.items():
        path = diff_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    diff_dir.mkdir(exist_ok=True)
    written: list[LayerDescriptor] = []
    store.blobs.put_from_writer(lambda out: written.append(write_layer(diff_dir, out, source_date_epoch=0)))
    return written[0]


def record_for(
    layer: LayerDescriptor,
    key: str,
    *,
    parent_chain_id: str = "",
    step: str = "",
    preimage: Mapping[str, object] | None = None,
    last_used: float = 1000.0,
) -> CacheRecord:
    chain_id = chain_ids([parent_chain_id, layer.diff_id])[-1] if parent_chain_id else layer.diff_id
    return CacheRecord(
        key=key,
        diff_id=layer.diff_id,
        blob_digest=layer.digest,
        size=layer.size,
        media_type=layer.media_type,
        chain_id=chain_id,
        parent_chain_id=parent_chain_id,
        created_by="RUN make",
        created="2026-01-01T00:00:00Z",
        preimage=dict(preimage or {"inputs": {}}),
        step=step,
        last_used=last_used,
    )
