"""Leases: what a running build or load uses, kept safe from a concurrent ``prune``.

A lease is a row in the metadata with an expiry, so one left by a crashed process stops
protecting anything once it expires; ``Store.lease()`` creates and deletes them.
"""

from __future__ import annotations

from builder.store.meta import LEASE_BLOB, LEASE_IMAGE, LEASE_SNAPSHOT, MetaStore


class Lease:
    """Resources a running operation uses; prune keeps them while the lease lives."""

    def __init__(self, meta: MetaStore, lease_id: str) -> None:
        self.meta = meta
        self.lease_id = lease_id

    def add_blob(self, digest: str) -> None:
        self.meta.add_lease_resource(self.lease_id, LEASE_BLOB, digest)

    def add_snapshot(self, chain_id: str) -> None:
        self.meta.add_lease_resource(self.lease_id, LEASE_SNAPSHOT, chain_id)

    def add_image(self, manifest_digest: str) -> None:
        self.meta.add_lease_resource(self.lease_id, LEASE_IMAGE, manifest_digest)
