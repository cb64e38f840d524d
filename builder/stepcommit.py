"""A step's overlay upper dir → a stored layer: its blob written, its snapshot kept.

A ``COPY`` of one literal context path (the kind whose re-run takes unchanged files from
its previous layer, :mod:`builder.fileops.donor`) also gets a layer index, and its re-run
splices the new tar from the previous one (:mod:`builder.layers.layerindex`,
:mod:`builder.store.splices`): a one-file change to a 300 MB ``COPY .`` then writes and
hashes little more than that file, instead of 300 MB.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterable
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from builder.errors import KilnError
from builder.graph import ContextSource, CopyOp, Op
from builder.imagestate import LayerRef
from builder.lazyclasses import dataclass
from builder.store.blobs import BlobInfo
from builder.store.snapshots import chain_ids, directory_identity

if TYPE_CHECKING:
    from builder.layers import Compression, LayerDescriptor
    from builder.layers.layerindex import LayerIndex, PreviousLayer
    from builder.store.splices import BlobRanges
    from builder.store.store import Lease, Store
    from cache.records import CacheRecord


def takes_from_previous(op: Op) -> bool:
    """Whether a re-run of ``op`` may take unchanged files from its previous layer: a COPY
    of one literal context path, so each destination has one source file, and the previous
    layer's file there came from the same one (with several sources or a wildcard two may
    write one destination, and the previous layer holds whichever wrote it last)."""
    if not isinstance(op, CopyOp) or not isinstance(op.source, ContextSource) or op.parents:
        return False
    from builder.fileops.sources import has_wildcards

    return len(op.paths) == 1 and not has_wildcards(op.paths[0])


@dataclass(frozen=True)
class IndexedLayer:
    """A stored layer with a usable index: the one its snapshot was written from."""

    digest: str
    index: LayerIndex


def indexed_layer(store: Store, record: CacheRecord | None) -> IndexedLayer | None:
    """The index of the layer ``record`` names, when it is stored uncompressed, indexed, and
    its snapshot is the tree the index was written from (so the index's inode keys name
    that snapshot's files, :mod:`builder.layers.layerindex`)."""
    if record is None or record.blob_digest != record.diff_id:
        return None
    from builder.layers.layerindex import load_index

    index = load_index(store.blobs.index_path(record.blob_digest))
    if index is None or directory_identity(store.snapshots.path(record.chain_id)) != index.root:
        return None
    return IndexedLayer(record.blob_digest, index)


class IndexLoad:
    """:func:`indexed_layer` on a thread of its own, begun while the step is still probed:
    once the context walk met a change (the step is likely to miss), the index is read and
    its snapshot checked beside the rest of the walk, instead of after the probe."""

    def __init__(self, store: Store, record: CacheRecord) -> None:
        self.digest = record.blob_digest
        self._found: IndexedLayer | None = None
        self._thread = threading.Thread(
            target=self._load, args=(store, record), name="index-load", daemon=True
        )
        self._thread.start()

    def _load(self, store: Store, record: CacheRecord) -> None:
        with contextlib.suppress(OSError, KilnError):  # only a head start
            self._found = indexed_layer(store, record)

    def result(self) -> IndexedLayer | None:
        self._thread.join()
        return self._found


def commit_layer(
    store: Store,
    lease: Lease,
    upper: Path,
    parent: str,
    *,
    compression: Compression,
    source_date_epoch: int | None,
    index: bool = False,
    previous: IndexedLayer | None = None,
    opened: OpenedLayer | None = None,
    keep_upper: bool = False,
) -> LayerRef:
    """Write ``upper`` as a layer over the chain ``parent`` and adopt it as the snapshot.

    ``index`` keeps a layer index beside the blob; ``previous`` is the layer this one may
    splice from (its unchanged files were linked from its snapshot), ``opened`` the same
    already opened by the caller (:func:`open_layer`), who closes it. ``keep_upper`` leaves
    ``upper`` where it is when the snapshot exists already (a container still reads it:
    :mod:`builder.prestart`), for its workspace's removal.
    """
    from builder.layers import write_layer

    with store.writing(), ExitStack() as cleanup:
        spliced_from = None
        if compression == "none" and previous is not None:
            spliced_from = opened or _reader(store, lease, previous)
            if spliced_from is not None and spliced_from is not opened:
                cleanup.callback(spliced_from.close)
        described: list[LayerDescriptor] = []

        def fill(out: BinaryIO) -> BlobInfo:
            layer = write_layer(
                upper,
                out,
                compression=compression,
                source_date_epoch=source_date_epoch,
                index=index and compression == "none",
                previous=spliced_from.layer if spliced_from else None,
            )
            described.append(layer)
            if layer.splice is not None:
                return BlobInfo(str(layer.splice.literal_digest), layer.splice.literal_size)
            return BlobInfo(str(layer.digest), layer.size)

        # The layer writer hashes the blob as it writes it: the store need not again.
        info = store.blobs.put_self_hashed(fill)
        layer = described[0]
        diff_id = str(layer.diff_id)
        if layer.splice is not None and previous is not None:
            from builder.store.splices import Part

            parts = [
                Part(info.digest if literal else previous.digest, offset, length)
                for literal, offset, length in layer.splice.parts
            ]
            info = store.blobs.put_splice(diff_id, parts)
        chain_id = chain_ids([parent, diff_id])[-1] if parent else diff_id
        # One metadata commit for the step's leases and snapshot record.
        with store.meta.transaction():
            lease.add_blob(info.digest)
            lease.add_snapshot(chain_id)
            snapshot = store.snapshots.adopt(
                upper, chain_id, parent, diff_id, size=layer.content_size, remove_if_stored=not keep_upper
            )
        identity = directory_identity(snapshot)
        if layer.index is not None and identity is not None and identity[:2] == layer.index.root[:2]:
            # Only when this tree became the snapshot: the index names its inodes. Its
            # identity now takes the time of that rename, which a snapshot unpacked again
            # later (in a directory that may get the same inode number) will not have.
            layer.index.root = identity
            _save_soon(layer.index, store.blobs.index_path(diff_id))
    return LayerRef(diff_id, info.digest, info.size, layer.media_type, chain_id)


def _save_soon(index: LayerIndex, path: Path) -> None:
    """Save ``index`` on a thread of its own: 20,000 entries (2 MB) take 10 ms to write and
    sync, which the next step (a ``RUN`` waiting on its container, most often) need not wait for;
    the build waits for it at its end (:func:`finish_saving`). The index is only a cache: one
    not saved (the disk full, say) makes the next re-run copy rather than splice."""

    def save() -> None:
        with contextlib.suppress(OSError):
            index.save(path)

    thread = threading.Thread(target=save, name="layer-index-save")
    with _SAVING_LOCK:
        _SAVING.append(thread)
    thread.start()


def finish_saving() -> None:
    """Wait for the layer indexes still being saved."""
    with _SAVING_LOCK:
        pending = list(_SAVING)
        _SAVING.clear()
    for thread in pending:
        thread.join()


_SAVING: list[threading.Thread] = []
_SAVING_LOCK = threading.Lock()


@dataclass
class OpenedLayer:
    """A layer a new one splices from, opened: its index, foretold head (if any) and reader."""

    layer: PreviousLayer
    ranges: BlobRanges
    closed: bool = False

    def keep(self, names: Iterable[bytes], clean_dirs: Iterable[bytes] = ()) -> None:
        """Name the files of the new tree that are the indexed ones, untouched, and the
        directories whose whole subtree is (index keys, as they name them)."""
        from dataclasses import replace

        self.layer = replace(self.layer, kept=frozenset(names), clean=frozenset(clean_dirs))

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.layer.prehash is not None:
            self.layer.prehash.close()
        self.ranges.close()


def foretell(opened: OpenedLayer, directories: list[str], mtime: int) -> None:
    """Start hashing the new layer's likely bytes before its copy runs
    (:mod:`builder.layers.prehash`): the previous tar with ``directories`` given ``mtime``."""
    from builder.layers.prehash import foretold_head

    foretold = foretold_head(opened.layer, [os.fsencode(path) + b"/" for path in directories], mtime)
    if foretold is not None and foretold[1]:  # (unchanged: the previous tar's own states serve)
        _prehash(opened, *foretold)


def foretell_rewritten(opened: OpenedLayer, name: bytes, tree: str, source_date_epoch: int | None) -> None:
    """Start hashing the new layer's likely bytes while it is written, when nothing is
    foretold yet and the copy rewrote one file of ``tree`` (the layer's) in place, ``name``
    in the tar: the previous tar with that file's new entry, when it is as long as the old."""
    from builder.layers.prehash import foretold_entry
    from builder.layers.writer import regular_file_entry

    if opened.layer.prehash is not None:
        return
    entry = regular_file_entry(os.path.join(tree, os.fsdecode(name)), name, source_date_epoch)
    foretold = foretold_entry(opened.layer, name, entry) if entry is not None else None
    if foretold is not None:
        _prehash(opened, *foretold)


def _prehash(opened: OpenedLayer, patch_at: int, patch: bytes) -> None:
    from dataclasses import replace

    from builder.layers.prehash import Prehash
    from builder.oci.resumable_sha256 import ResumableHashUnavailableError

    try:
        prehash = Prehash(opened.layer, patch_at, patch)
    except (ResumableHashUnavailableError, ValueError):
        return
    opened.layer = replace(opened.layer, patch=patch, patch_at=patch_at, prehash=prehash)


def open_layer(store: Store, lease: Lease, previous: IndexedLayer) -> OpenedLayer | None:
    """``previous`` opened to be spliced from, its blob leased; ``None`` when it is gone."""
    with store.writing():
        return _reader(store, lease, previous)


def _reader(store: Store, lease: Lease, previous: IndexedLayer) -> OpenedLayer | None:
    """What the layer writer reads ``previous`` through, once its blob is leased (under the
    gc lock the caller holds) and found whole; ``None`` when it is gone."""
    from builder.layers.layerindex import PreviousLayer

    lease.add_blob(previous.digest)
    if not store.blobs.has(previous.digest) or store.blobs.size(previous.digest) != previous.index.size:
        return None
    ranges = store.blobs.ranges(previous.digest)
    return OpenedLayer(PreviousLayer(previous.index, ranges.chunks, extents=ranges.extents), ranges)
