"""Compressed copies of uncompressed layers, made once, when a layer first leaves the store.

Built and committed layers are stored as plain tars (blob digest == diff id), as BuildKit
and docker keep theirs: compressing at build time would be paid again, for the whole
layer, on every one-file change. A layer is compressed only where it leaves the store (an
OCI archive, a push, a cache export). The compressed blob goes into the content store
through its atomic writer, and the ``layer_variants`` table remembers
(diff id, compression) → (digest, size, media type), so the next export or push of the
same layer reuses the blob instead of compressing again.

A layer stored compressed (pulled, loaded, imported) has no variants: it leaves as it is.
A variant lives exactly as long as its uncompressed layer: prune keeps the variant blobs of
every diff id it keeps (:func:`live_variant_blobs`) and then forgets the rows of layers it
removed (:func:`forget_variants`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from typing import TYPE_CHECKING, BinaryIO

from builder.errors import StoreError
from builder.lazyclasses import dataclass
from builder.oci import mediatypes

if TYPE_CHECKING:
    from builder.layers.compression import Compression
    from builder.store.store import LayerLike, Store

_CHUNK = 1 << 20

#: (stored media type, compression asked for) → media type of the compressed layer. Docker
#: schema 2 has no zstd layer type, so a docker-typed layer only ever leaves gzipped.
_COMPRESSED_TYPE = {
    (mediatypes.OCI_LAYER, "gzip"): mediatypes.OCI_LAYER_GZIP,
    (mediatypes.OCI_LAYER, "zstd"): mediatypes.OCI_LAYER_ZSTD,
    (mediatypes.DOCKER_LAYER, "gzip"): mediatypes.DOCKER_LAYER_GZIP,
}


@dataclass(frozen=True)
class OutgoingLayer:
    """A layer as it leaves the store: the blob to send and its descriptor fields."""

    digest: str
    diff_id: str
    size: int
    media_type: str


@dataclass(frozen=True)
class LayerVariant:
    """One row of ``layer_variants``: the compressed blob made from one uncompressed layer."""

    diff_id: str
    compression: str
    digest: str
    size: int
    media_type: str


def outgoing_layer(store: Store, layer: LayerLike, compression: Compression) -> OutgoingLayer:
    """``layer`` as it leaves the store in ``compression``.

    An uncompressed layer (its blob is its tar: digest == diff id) leaves as its variant in
    ``compression``, made now the first time it is asked for; any other layer, and any
    layer when ``compression`` is ``"none"``, leaves as it is stored.
    """
    wanted_type = _COMPRESSED_TYPE.get((layer.media_type, compression))
    if wanted_type is None or layer.digest != layer.diff_id:
        return OutgoingLayer(layer.digest, layer.diff_id, layer.size, layer.media_type)
    variant = find_variant(store, layer.diff_id, compression)
    if variant is None:
        variant = _make_variant(store, layer.diff_id, compression)
    return OutgoingLayer(variant.digest, layer.diff_id, variant.size, wanted_type)


def find_variant(store: Store, diff_id: str, compression: str) -> LayerVariant | None:
    """The recorded variant whose blob is still in the store, or None."""
    row = store.meta.connection.execute(
        "SELECT diff_id, compression, digest, size, media_type FROM layer_variants "
        "WHERE diff_id = ? AND compression = ?",
        (diff_id, compression),
    ).fetchone()
    if row is None:
        return None
    variant = LayerVariant(*row)
    return variant if store.blobs.has(variant.digest) else None


def variants(store: Store) -> list[LayerVariant]:
    """Every recorded variant, in diff id order."""
    rows = store.meta.connection.execute(
        "SELECT diff_id, compression, digest, size, media_type FROM layer_variants "
        "ORDER BY diff_id, compression"
    ).fetchall()
    return [LayerVariant(*row) for row in rows]


def live_variant_blobs(store: Store, live_blobs: Collection[str]) -> set[str]:
    """The variant blobs prune must keep: those of the uncompressed layers it keeps."""
    return {variant.digest for variant in variants(store) if variant.diff_id in live_blobs}


def forget_variants(store: Store, live_blobs: Collection[str]) -> int:
    """Drop the rows of variants whose uncompressed layer is not kept; return how many."""
    gone = [variant for variant in variants(store) if variant.diff_id not in live_blobs]
    with store.meta.transaction() as db:
        db.executemany(
            "DELETE FROM layer_variants WHERE diff_id = ? AND compression = ?",
            [(variant.diff_id, variant.compression) for variant in gone],
        )
    return len(gone)


def _make_variant(store: Store, diff_id: str, compression: Compression) -> LayerVariant:
    """Compress the uncompressed blob ``diff_id`` into the store and record the result.

    The blob and its row are written under the gc lock held shared, so a concurrent prune
    sees the row (and keeps the blob) once it runs. The source is hashed on the way: a
    layer whose stored bytes no longer match its diff id is refused, not published.
    """
    from builder.layers.compression import open_compressor

    def fill(out: BinaryIO) -> None:
        compressor = open_compressor(compression, out)
        hasher = hashlib.sha256()
        try:
            with store.blobs.open(diff_id) as source:
                while chunk := source.read(_CHUNK):
                    hasher.update(chunk)
                    compressor.write(chunk)
        finally:
            compressor.close()
        if "sha256:" + hasher.hexdigest() != diff_id:
            raise StoreError(f"stored layer {diff_id} does not match its digest")

    with store.writing():
        info = store.blobs.put_from_writer(fill)
        variant = LayerVariant(
            diff_id, compression, info.digest, info.size, mediatypes.layer_media_type(compression)
        )
        with store.meta.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO layer_variants VALUES (?, ?, ?, ?, ?)",
                (variant.diff_id, variant.compression, variant.digest, variant.size, variant.media_type),
            )
    return variant
