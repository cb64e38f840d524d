"""The build cache's part of ``kiln prune``: which records to forget, and which layer blobs
the remaining records keep alive through the store's garbage collection.

Plain ``kiln prune`` forgets no record: the layers the cache holds are roots of the sweep.
``--all`` and ``--filter type=cache`` forget every record; ``--keep-storage SIZE`` and
``--filter until=DURATION`` forget the least recently used ones. A record whose layer a
running build holds in its lease is never forgotten.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from builder.lazyclasses import dataclass

if TYPE_CHECKING:
    from builder.store.store import Store
    from cache.prune import CachePruneReport
    from cache.records import KeyValueTable

#: ``--filter`` values this module answers (``type=cache-mount`` is the cache mounts').
CACHE_TYPE_FILTER = "type=cache"
UNTIL_PREFIX = "until="


@dataclass(frozen=True)
class CachePruneRequest:
    """Which records ``kiln prune`` forgets; ``selected`` is false when it forgets none."""

    selected: bool
    keep_storage: int | None = None
    until: float | None = None


def cache_prune_request(
    filters: Sequence[str], *, prune_all: bool, keep_storage: str | None
) -> CachePruneRequest:
    """Read ``--all``, ``--keep-storage`` and the cache filters (others are left to the caller)."""
    from cache.prune import parse_duration, parse_size

    until: float | None = None
    for text in filters:
        if text.startswith(UNTIL_PREFIX):
            until = parse_duration(text.removeprefix(UNTIL_PREFIX))
    kept = parse_size(keep_storage) if keep_storage else None
    selected = prune_all or CACHE_TYPE_FILTER in filters or until is not None or kept is not None
    return CachePruneRequest(selected, kept, until)


def is_cache_filter(text: str) -> bool:
    return text == CACHE_TYPE_FILTER or text.startswith(UNTIL_PREFIX)


def prune_cache_records(store: Store, request: CachePruneRequest, *, dry_run: bool) -> CachePruneReport:
    """Forget the records ``request`` selects (none when it selects none); with ``dry_run``
    only say which would go."""
    from builder.store.meta import LEASE_BLOB
    from cache.prune import CachePruneReport, prune_records

    if not request.selected:
        return CachePruneReport()
    store.meta.delete_expired_leases()
    leased = store.meta.leased(LEASE_BLOB)
    meta: KeyValueTable = _DryRunTable(store.meta) if dry_run else store.meta
    return prune_records(meta, keep_storage=request.keep_storage, until=request.until, leased_blobs=leased)


def cache_blob_roots(store: Store, forgotten: CachePruneReport) -> set[str]:
    """The layer blobs the remaining records keep: extra roots of the garbage collection
    (``forgotten`` left out, for a dry run that did not really forget them)."""
    from cache.records import all_records

    gone = {record.key for record in forgotten.removed}
    return {record.blob_digest for record in all_records(store.meta) if record.key not in gone}


class _DryRunTable:
    """The store's key-value table with deletions kept in memory (``--dry-run``)."""

    def __init__(self, inner: KeyValueTable) -> None:
        self._inner = inner
        self._deleted: set[tuple[str, str]] = set()

    def put_value(self, namespace: str, key: str, value: object) -> None:
        """Writes are dropped: a dry run changes nothing."""

    def get_value(self, namespace: str, key: str) -> object | None:
        if (namespace, key) in self._deleted:
            return None
        value: object | None = self._inner.get_value(namespace, key)
        return value

    def delete_value(self, namespace: str, key: str) -> None:
        self._deleted.add((namespace, key))

    def keys(self, namespace: str) -> list[str]:
        return [key for key in self._inner.keys(namespace) if (namespace, key) not in self._deleted]
