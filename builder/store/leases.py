"""Leases: what a running build or load uses, kept safe from a concurrent ``prune``.

A lease is a row in the metadata with an expiry, so one left by a crashed process stops
protecting anything once it expires; ``Store.lease()`` creates and deletes them. A build's
lease lives in :class:`~builder.store.build_leases.BuildLeases` (never fsynced: it matters
only while its process runs); a lease given only a :class:`MetaStore` lives in ``meta.db``.
"""

from __future__ import annotations

from builder.store.build_leases import BuildLeases
from builder.store.meta import LEASE_BLOB, LEASE_IMAGE, LEASE_SNAPSHOT, MetaStore


class Lease:
    """Resources a running operation uses; prune keeps them while the lease lives."""

    def __init__(self, meta: MetaStore, lease_id: str, *, table: BuildLeases | None = None) -> None:
        self.meta = meta
        self.lease_id = lease_id
        self._table = table

    def _add(self, kind: str, key: str) -> None:
        if self._table is not None:
            self._table.add(self.lease_id, kind, key)
        else:
            self.meta.add_lease_resource(self.lease_id, kind, key)

    def add_blob(self, digest: str) -> None:
        self._add(LEASE_BLOB, digest)

    def add_snapshot(self, chain_id: str) -> None:
        self._add(LEASE_SNAPSHOT, chain_id)

    def add_image(self, manifest_digest: str) -> None:
        self._add(LEASE_IMAGE, manifest_digest)
