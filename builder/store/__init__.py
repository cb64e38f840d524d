"""The image store: content-addressed blobs, SQLite metadata, unpacked snapshots, locks, gc."""

from typing import TYPE_CHECKING

from builder.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from builder.store.blobs import BlobInfo, BlobStore
    from builder.store.gc import PruneReport, prune
    from builder.store.leases import Lease
    from builder.store.snapshots import chain_ids
    from builder.store.store import ImageSummary, Store, StoredLayer, default_root

__all__ = [
    "BlobInfo",
    "BlobStore",
    "ImageSummary",
    "Lease",
    "PruneReport",
    "Store",
    "StoredLayer",
    "chain_ids",
    "default_root",
    "prune",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "BlobInfo": "blobs",
        "BlobStore": "blobs",
        "PruneReport": "gc",
        "prune": "gc",
        "Lease": "leases",
        "chain_ids": "snapshots",
        "ImageSummary": "store",
        "Store": "store",
        "StoredLayer": "store",
        "default_root": "store",
    },
)
