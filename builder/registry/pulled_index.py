"""A pulled multi-platform name: the index kept as the registry sent it, and what of it is whole.

``kiln pull`` of a reference that names an OCI index (or a Docker manifest list) downloads
one platform's image, but stores the index document itself, byte for byte, and points the
name at it, as a multi-platform build names its index. ``kiln inspect`` then lists the
platforms, and ``FROM`` picks one through :meth:`Store.resolve_for`.

The index usually lists platforms that were not pulled. Those entries are not complete in
the store (no manifest, no config, no layers), so they are never handed out:

- the store's view of an index (:meth:`Store.index_entries`) lists the pulled platforms
  only, and a ``FROM`` for another platform pulls it (the index digest stays the same);
- ``kiln push`` (and an OCI archive) sends the index unchanged (same digest as the source
  registry's) when every platform it lists is whole in the store. Otherwise it sends an
  index of the whole platforms only (:class:`builder.export.outgoing.OutgoingImages`),
  never one naming a manifest the destination will not receive.

Pulling every platform's manifest and config without its layers was the other choice; it
was rejected because the layers would still be missing, so the pushed index would still
name images the destination cannot have.
"""

from __future__ import annotations

from typing import Any

from builder.oci import mediatypes
from builder.registry.manifests import FetchedManifest
from builder.store import Store
from builder.store.store import parse_json_document


def record_pulled_index(store: Store, name: str, index: FetchedManifest) -> str:
    """Store ``index`` as sent, record it as an image (its size counts the platforms pulled
    so far) and point ``name`` at it; return its digest. Call inside ``store.writing()``."""
    digest = store.blobs.put_bytes(index.content).digest
    pulled = [store.meta.image(str(entry["digest"])) for entry in _entries(index.content)]
    size = len(index.content) + sum(record.size for record in pulled if record is not None)
    media_type = index.media_type if index.media_type in mediatypes.INDEX_TYPES else mediatypes.OCI_INDEX
    store.meta.add_image(digest, media_type, "", size)
    store.meta.set_ref(name, digest)
    return digest


def _entries(content: bytes) -> list[dict[str, Any]]:
    return [dict(entry) for entry in parse_json_document(content, "stored manifest").get("manifests", [])]
