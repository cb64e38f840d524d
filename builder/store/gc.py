"""Prune: remove blobs, snapshots and dangling images nothing refers to.

Mark and sweep under the exclusive gc lock, so no import, load or build (which hold it
shared while they write and record) runs at the same time. Roots are the refs, the leases,
and any extra blob digests a caller names (the build cache's records). From each live image
the manifest, config and layer blobs are marked, and the snapshots of its layer chain; then
the compressed variants of every marked uncompressed layer (:mod:`builder.store.variants`),
and the blobs every marked splice is made of (:mod:`builder.store.splices`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import field

from builder.lazyclasses import dataclass
from builder.store.meta import LEASE_BLOB, LEASE_IMAGE, LEASE_SNAPSHOT
from builder.store.snapshots import chain_ids
from builder.store.store import Store
from builder.store.variants import forget_variants, live_variant_blobs


@dataclass
class PruneReport:
    """What a prune removed and how many bytes of blobs that freed."""

    images: list[str] = field(default_factory=list)
    blobs: list[str] = field(default_factory=list)
    snapshots: list[str] = field(default_factory=list)
    bytes_freed: int = 0


def prune(store: Store, *, extra_blob_roots: Iterable[str] = (), dry_run: bool = False) -> PruneReport:
    """Remove what no ref, lease or extra root keeps alive; return what went."""
    report = PruneReport()
    with store.exclusive():
        store.meta.delete_expired_leases()
        named = {ref.digest for ref in store.meta.refs()}
        live_images = named | store.meta.leased(LEASE_IMAGE)
        for digest in list(live_images):  # an index keeps its platforms' manifests alive
            if store.blobs.has(digest):
                live_images |= {str(entry["digest"]) for entry in store.index_entries(digest) or []}
        for image in store.meta.images():
            if image.digest not in live_images:
                report.images.append(image.digest)
                if not dry_run:
                    store.meta.delete_image(image.digest)
        live_blobs = set(extra_blob_roots) | store.meta.leased(LEASE_BLOB)
        live_snapshots = store.meta.leased(LEASE_SNAPSHOT)
        for digest in live_images:
            blobs, snapshots = image_closure(store, digest)
            live_blobs |= blobs
            live_snapshots |= snapshots
        live_blobs |= live_variant_blobs(store, live_blobs)  # a variant lives as its layer does
        live_blobs |= store.blobs.splice_sources(live_blobs)  # a splice needs its parts' blobs
        for digest in sorted(set(store.blobs.digests()) - live_blobs):
            report.blobs.append(digest)
            report.bytes_freed += store.blobs.disk_size(digest)
            if not dry_run:
                store.blobs.delete(digest)
        if not dry_run:
            forget_variants(store, live_blobs)
            forget_built_images(store, live_images)
        known_snapshots = {record.chain_id for record in store.meta.snapshots()}
        for chain_id in sorted((known_snapshots | set(store.snapshots.directories())) - live_snapshots):
            report.snapshots.append(chain_id)
            if not dry_run:
                store.snapshots.remove(chain_id)
    return report


def forget_built_images(store: Store, live_images: set[str]) -> None:
    """Drop what :mod:`builder.image_reuse` remembers of images that are gone."""
    from builder.image_reuse import NAMESPACE

    for key in store.meta.keys(NAMESPACE):
        if store.meta.get_value(NAMESPACE, key) not in live_images:
            store.meta.delete_value(NAMESPACE, key)


def image_closure(store: Store, manifest_digest: str) -> tuple[set[str], set[str]]:
    """Blob digests and snapshot chain ids that one stored image needs."""
    if not store.blobs.has(manifest_digest):
        return set(), set()
    if store.index_entries(manifest_digest) is not None:
        return {manifest_digest}, set()  # its manifests are live images of their own
    manifest = store.manifest(manifest_digest)
    config_digest = str(manifest.get("config", {}).get("digest", ""))
    blobs = {manifest_digest, config_digest}
    blobs |= {str(layer.get("digest", "")) for layer in manifest.get("layers", [])}
    snapshots: set[str] = set()
    if store.blobs.has(config_digest):
        config = store.manifest(config_digest)
        diff_ids = [str(diff_id) for diff_id in config.get("rootfs", {}).get("diff_ids", [])]
        snapshots = set(chain_ids(diff_ids))
    return blobs, snapshots
