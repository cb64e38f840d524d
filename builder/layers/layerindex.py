"""Where each file of a layer sits in its tar, so a later layer can reuse those bytes.

A ``COPY`` re-run after a few context files changed hard-links the unchanged files from
the previous layer's snapshot (:mod:`builder.fileops.donor`): they are the very inodes
that layer's tar was written from. With this index (per regular file: the byte range of
its entry and the identity of the inode it was read from) the layer writer copies nothing
for them: it names the old range (:mod:`builder.layers.splicing`), and the store keeps the
new layer as a splice of the old one (:mod:`builder.store.splices`).

Directories are indexed too, under their name with a trailing ``/``: their headers are
written anew, but where the bytes are the previous tar's they are named there instead, so
a splice stays a few long runs. Only files without extended attributes are indexed (the
donor of a COPY re-run relies on it, :mod:`builder.fileops.donor`). An entry is reused
only when the file met now has the same device, inode, size, nanosecond mtime, mode and
owner as the one indexed: then its tar header (name, mode, owner, size, mtime) and
content are the same bytes. Snapshots never change once made, and the index also records
the identity of its tree's root directory, which becomes the snapshot's (device, inode, and
the change time of that rename), so an index is used only with the snapshot it was written
from: inode numbers of a removed snapshot may be reused, even by a snapshot of the same
layer unpacked again.

The index also holds SHA-256 states of the tar stream every few MB (when the resumable
hash is available), so the diff id of a spliced layer is hashed from the last state
before its first changed byte rather than from the start.

The format is ``marshal`` of plain tuples: fast to load for 20,000 entries, and the index
is only a cache (one that does not load, from another Python or a crash, is ignored). The
entries are marshalled in chunks of :data:`CHUNK` (each a separate call): loading them all
holds the GIL for 15 ms, in pieces short enough for the thread walking the context meanwhile
to go on between them (:class:`builder.stepcommit.IndexLoad`).
"""

from __future__ import annotations

import marshal
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from builder.lazyclasses import dataclass

if TYPE_CHECKING:
    from builder.layers.prehash import Prehash

#: device, inode, size, mtime in ns, mode, uid, gid of the file an entry was written from.
FileKey = tuple[int, int, int, int, int, int, int]
_VERSION = 3
#: Entries per separately marshalled chunk.
CHUNK = 1000


def file_key(status: os.stat_result) -> FileKey:
    return (
        status.st_dev,
        status.st_ino,
        status.st_size,
        status.st_mtime_ns,
        status.st_mode,
        status.st_uid,
        status.st_gid,
    )


@dataclass
class LayerIndex:
    """One layer tar's file entries (name → start, length, key) and hash checkpoints."""

    #: (device, inode) of the tree's root directory when the layer was written, and its
    #: change time once it became the snapshot (what the store compares before use).
    root: tuple[int, ...]
    #: The ``SOURCE_DATE_EPOCH`` clamp the headers were written with.
    epoch: int | None
    #: The tar's total length: an index must describe the blob it sits beside.
    size: int
    entries: dict[bytes, tuple[int, int, FileKey]]
    #: (offset, saved hash state after exactly ``offset`` bytes), ascending.
    checkpoints: list[tuple[int, bytes]]

    def save(self, path: Path) -> None:
        """Write the index beside its blob, atomically and durably (it steers what bytes a
        later layer is made of, so a torn one must never load)."""
        names, spans = list(self.entries), list(self.entries.values())
        chunks = [
            marshal.dumps((names[start : start + CHUNK], spans[start : start + CHUNK]))
            for start in range(0, len(names), CHUNK)
        ]
        payload = marshal.dumps((_VERSION, self.root, self.epoch, self.size, chunks, self.checkpoints))
        from builder.durable import write_durably

        write_durably(path, payload)


def load_index(path: Path) -> LayerIndex | None:
    """The index at ``path``, or ``None`` when absent or unreadable."""
    try:
        version, root, epoch, size, chunks, checkpoints = marshal.loads(path.read_bytes())
        if version != _VERSION:
            return None
        entries: dict[bytes, tuple[int, int, FileKey]] = {}
        for chunk in chunks:
            names, spans = marshal.loads(chunk)
            entries.update(zip(names, spans, strict=True))
        return LayerIndex(tuple(root), epoch, int(size), entries, list(checkpoints))
    except (OSError, EOFError, ValueError, TypeError):
        return None


@dataclass(frozen=True)
class PreviousLayer:
    """The layer a new one may splice from: its index and a reader of its tar's bytes
    (``read(offset, length)`` yields chunks, each valid until the next is asked for)."""

    index: LayerIndex
    read: Callable[[int, int], Iterator[bytes | memoryview]]
    #: The new tar's start as foretold (:mod:`builder.layers.prehash`): the previous tar's
    #: first ``len(head)`` bytes with a few directory headers changed, where ``changed``
    #: says (first, end); and the thread hashing that foretold stream, if one does.
    head: bytes = b""
    changed: tuple[int, int] = (0, 0)
    prehash: Prehash | None = None
    #: Names whose file is the one indexed, left untouched where the index was written (a
    #: tree taken in place, :mod:`builder.fileops.donor`): their entries are reused
    #: without a look at the file.
    kept: frozenset[bytes] = frozenset()
    #: Directories (names ending in ``/``) whose whole subtree is as indexed, untouched:
    #: named as one range of the previous tar, when the index shows it contiguous.
    clean: frozenset[bytes] = frozenset()
    #: Where ranges of the previous tar lie in files (descriptor, offset, length), for a
    #: reader that maps them (:meth:`builder.store.splices.BlobRanges.extents`).
    extents: Callable[[int, int], list[tuple[int, int, int]]] | None = None
