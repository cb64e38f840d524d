"""Stored images as they leave the store: uncompressed layers sent as compressed variants.

The store keeps built layers as plain tars; an OCI archive or a push sends them compressed
(:mod:`builder.store.variants` makes each compressed blob once). Swapping a layer changes
the manifest that lists it, and so any index above that manifest; the config (the diff ids)
and so the image id stay the same. A document in which nothing changes (every layer already
compressed, as in a pulled image, or ``compression="none"``) is sent byte for byte, so it
keeps its digest. An index leaves without the platforms that are not whole in the store (a
pulled index lists platforms never pulled), so nothing sent names what is not sent.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from builder.errors import StoreError
from builder.oci import mediatypes
from builder.store.store import StoredLayer, parse_json_document
from builder.store.variants import outgoing_layer
from builder.store.whole_images import is_whole

if TYPE_CHECKING:
    from builder.layers.compression import Compression
    from builder.store.store import Store

JsonObject = dict[str, Any]


class OutgoingImages:
    """The outgoing form of stored manifests and indexes, for one export or push.

    :meth:`digest` maps a stored manifest or index to the digest it leaves under; the
    documents rewritten on the way are kept in memory (they are small) in :attr:`documents`
    and never enter the store, so nothing is left to collect after an export.
    """

    def __init__(self, store: Store, compression: Compression) -> None:
        self.store = store
        self.compression = compression
        #: Outgoing digest → bytes, for the manifests and indexes rewritten here.
        self.documents: dict[str, bytes] = {}
        #: The platforms (``os/arch[/variant]``) indexes left out, not being whole here.
        self.left_out: list[str] = []
        self._outgoing_digest: dict[str, str] = {}

    def digest(self, stored_digest: str) -> str:
        """The digest the stored manifest or index ``stored_digest`` leaves under; its
        uncompressed layers are compressed now when no variant of them exists yet."""
        known = self._outgoing_digest.get(stored_digest)
        if known is not None:
            return known
        document = self.json(stored_digest)
        if _is_index(document):
            rewritten = self._index(document)
        else:
            rewritten = self._manifest(document)
        outgoing = stored_digest
        if rewritten is not None:
            payload = json.dumps(rewritten, separators=(",", ":")).encode()
            outgoing = "sha256:" + hashlib.sha256(payload).hexdigest()
            self.documents[outgoing] = payload
        self._outgoing_digest[stored_digest] = outgoing
        return outgoing

    def read_bytes(self, digest: str) -> bytes:
        """An outgoing document or any stored blob."""
        payload = self.documents.get(digest)
        return payload if payload is not None else self.store.blobs.read_bytes(digest)

    def size(self, digest: str) -> int:
        payload = self.documents.get(digest)
        return len(payload) if payload is not None else self.store.blobs.size(digest)

    def json(self, digest: str) -> JsonObject:
        return parse_json_document(self.read_bytes(digest), f"document {digest}")

    def _manifest(self, manifest: JsonObject) -> JsonObject | None:
        """``manifest`` with its uncompressed layers swapped, or None when none is."""
        descriptors = manifest.get("layers")
        config_digest = str(manifest.get("config", {}).get("digest", ""))
        if not isinstance(descriptors, list) or not descriptors or not self.store.blobs.has(config_digest):
            return None
        config = self.json(config_digest)
        diff_ids = config.get("rootfs", {}).get("diff_ids", [])
        if not isinstance(diff_ids, list) or len(diff_ids) != len(descriptors):
            return None  # not an image config: nothing to pair the layers with
        layers: list[JsonObject] = []
        changed = False
        for descriptor, diff_id in zip(descriptors, diff_ids, strict=True):
            stored = StoredLayer(
                str(descriptor["digest"]), str(diff_id), int(descriptor["size"]), str(descriptor["mediaType"])
            )
            leaving = outgoing_layer(self.store, stored, self.compression)
            if leaving.digest == stored.digest:
                layers.append(descriptor)
                continue
            changed = True
            swapped = {"mediaType": leaving.media_type, "digest": leaving.digest, "size": leaving.size}
            layers.append({**descriptor, **swapped})
        return {**manifest, "layers": layers} if changed else None

    def _index(self, index: JsonObject) -> JsonObject | None:
        """``index`` naming its manifests' outgoing digests, or None when none changed."""
        entries: list[JsonObject] = []
        changed = False
        for entry in index.get("manifests", []):
            child = str(entry.get("digest", ""))
            if not is_whole(self.store, child):
                changed = True  # a platform this store never pulled: it cannot leave
                self.left_out.append(_platform_text(entry))
                continue
            outgoing = self.digest(child)
            if outgoing == child:
                entries.append(entry)
                continue
            changed = True
            entries.append({**entry, "digest": outgoing, "size": self.size(outgoing)})
        if changed and not entries:
            raise StoreError("no platform of this index is in the store; pull one first")
        return {**index, "manifests": entries} if changed else None


def _platform_text(entry: JsonObject) -> str:
    platform = entry.get("platform") or {}
    parts = [str(platform.get(key, "")) for key in ("os", "architecture", "variant")]
    return "/".join(part for part in parts if part) or str(entry.get("digest", ""))


def _is_index(document: JsonObject) -> bool:
    return document.get("mediaType") in mediatypes.INDEX_TYPES or "manifests" in document
