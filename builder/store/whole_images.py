"""Whether a stored image is whole: its manifest, config and every layer in the store.

A pulled multi-platform name keeps the registry's index, which usually lists platforms that
were never pulled (:mod:`builder.registry.pulled_index`). Whatever sends images out of the
store (a push, an OCI archive) must leave those out rather than name a manifest the other
side will never receive; this is the test they share.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from builder.store.store import parse_json_document

if TYPE_CHECKING:
    from builder.store.store import Store


def is_whole(store: Store, manifest_digest: str) -> bool:
    """Whether an image manifest (or every platform of an index), its config and every
    layer are in the store."""
    if store.meta.image(manifest_digest) is None or not store.blobs.has(manifest_digest):
        return False
    manifest = stored_json(store, manifest_digest)
    if "manifests" in manifest:  # a nested index: whole when all its children are
        return all(is_whole(store, str(entry.get("digest", ""))) for entry in manifest["manifests"])
    blobs = [manifest.get("config", {}), *manifest.get("layers", [])]
    return all(store.blobs.has(str(blob.get("digest", ""))) for blob in blobs)


def stored_json(store: Store, digest: str) -> dict[str, Any]:
    """A stored manifest or index as a JSON object; :class:`StoreError` when it is not one."""
    return parse_json_document(store.blobs.read_bytes(digest), "stored manifest")
