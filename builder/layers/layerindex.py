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

The entries are kept as their names and one flat array of 64-bit numbers, nine per entry
(:class:`IndexEntries`), and stored so (``marshal`` of the names joined and the array's
bytes): 20,000 entries load as a few objects in a couple of milliseconds, where a tuple per
entry made a quarter of a million small ones and held the GIL 20 ms beside the context walk.
The index is only a cache: one that does not load (from another version, another machine or
a crash) is ignored.
"""

from __future__ import annotations

import bisect
import marshal
import os
from array import array
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from builder.lazyclasses import dataclass

if TYPE_CHECKING:
    from builder.layers.prehash import Prehash

#: device, inode, size, mtime in ns, mode, uid, gid of the file an entry was written from.
FileKey = tuple[int, int, int, int, int, int, int]
_VERSION = 4
#: Numbers per entry in :attr:`IndexEntries.numbers`: start, length, then the file key's seven.
_WIDTH = 9
#: Where the file key's size sits among an entry's numbers.
_SIZE_AT = 4


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


class IndexEntries(Mapping[bytes, tuple[int, int, FileKey]]):
    """A layer tar's indexed entries in tar order: ``name → (start, length, file key)``.

    Held as the names, one array of nine numbers per entry, and the positions of the
    directories' entries: a lookup decodes one entry, and a clean directory's whole run is
    carried into the next index by array slices (:meth:`IndexBuilder.add_run`).
    """

    __slots__ = ("_positions", "directories", "names", "numbers")

    def __init__(self, names: list[bytes], numbers: array[int], directories: array[int]) -> None:
        self.names = names
        self.numbers = numbers
        #: The positions (in :attr:`names`) of the directories' entries, ascending.
        self.directories = directories
        self._positions: dict[bytes, int] | None = None

    @property
    def positions(self) -> dict[bytes, int]:
        """Each name's position, made on first use."""
        if self._positions is None:
            self._positions = dict(zip(self.names, range(len(self.names)), strict=True))
        return self._positions

    def at(self, position: int) -> tuple[int, int, FileKey]:
        start = position * _WIDTH
        entry = self.numbers[start : start + _WIDTH]
        return entry[0], entry[1], tuple(entry[2:])  # type: ignore[return-value]  # seven

    def __getitem__(self, name: bytes) -> tuple[int, int, FileKey]:
        return self.at(self.positions[name])

    def __contains__(self, name: object) -> bool:
        return name in self.positions

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)

    def run(self, directory: bytes, tar_end: int) -> tuple[int, int, int, int, int] | None:
        """``(first byte, end byte, first position, end position, size of the files'
        contents)`` of the run of ``directory``'s subtree (``directory`` ends in ``/``),
        when it is one unbroken range (nothing unindexed, a symlink or a file with extended
        attributes, lies between its entries or after the last before what follows it,
        ``tar_end`` for the last); else ``None``. By bisection: the entries after the
        directory's own that start with its name are contiguous in tar order."""
        begin = self.positions.get(directory)
        if begin is None:
            return None
        names, numbers = self.names, self.numbers
        stop = bisect.bisect_left(names, True, begin + 1, key=lambda name: not name.startswith(directory))
        first = numbers[begin * _WIDTH]
        end = numbers[stop * _WIDTH] if stop < len(names) else tar_end
        # The index lists its entries as the tar holds them, each after the one before:
        # lengths that add up to the extent leave no room for an unindexed entry.
        if sum(numbers[begin * _WIDTH + 1 : stop * _WIDTH : _WIDTH]) != end - first:
            return None
        sizes = sum(numbers[begin * _WIDTH + _SIZE_AT : stop * _WIDTH : _WIDTH])
        directories = self.directories
        inner = directories[bisect.bisect_left(directories, begin) : bisect.bisect_left(directories, stop)]
        sizes -= sum(numbers[position * _WIDTH + _SIZE_AT] for position in inner)
        return first, end, begin, stop, sizes


class IndexBuilder:
    """The index of a layer being written: entries added in tar order, one at a time or a
    previous index's run at once."""

    def __init__(self) -> None:
        self.names: list[bytes] = []
        self.numbers = array("q")
        self.directories = array("q")

    def add(self, name: bytes, start: int, length: int, key: FileKey) -> None:
        if name[-1:] == b"/":
            self.directories.append(len(self.names))
        self.names.append(name)
        self.numbers.extend((start, length, *key))

    def add_run(self, entries: IndexEntries, begin: int, stop: int, shift: int) -> None:
        """Entries ``begin`` to ``stop`` of ``entries``, their bytes now ``shift`` later."""
        moved = len(self.names) - begin
        self.names += entries.names[begin:stop]
        numbers = entries.numbers[begin * _WIDTH : stop * _WIDTH]
        if shift:
            numbers[0::_WIDTH] = array("q", [start + shift for start in numbers[0::_WIDTH]])
        self.numbers += numbers
        directories = entries.directories
        inner = directories[bisect.bisect_left(directories, begin) : bisect.bisect_left(directories, stop)]
        self.directories.extend(position + moved for position in inner)

    def entries(self) -> IndexEntries:
        return IndexEntries(self.names, self.numbers, self.directories)


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
    entries: IndexEntries
    #: (offset, saved hash state after exactly ``offset`` bytes), ascending.
    checkpoints: list[tuple[int, bytes]]

    def save(self, path: Path) -> None:
        """Write the index beside its blob, atomically and durably (it steers what bytes a
        later layer is made of, so a torn one must never load)."""
        entries = self.entries
        payload = marshal.dumps(
            (
                _VERSION,
                self.root,
                self.epoch,
                self.size,
                b"\0".join(entries.names),  # (no path holds a NUL)
                entries.numbers.tobytes(),
                entries.directories.tobytes(),
                self.checkpoints,
            )
        )
        from builder.durable import write_durably

        write_durably(path, payload)


def load_index(path: Path) -> LayerIndex | None:
    """The index at ``path``, or ``None`` when absent or unreadable."""
    try:
        loaded = marshal.loads(path.read_bytes())
        if not isinstance(loaded, tuple) or len(loaded) != 8 or loaded[0] != _VERSION:
            return None
        _version, root, epoch, size, joined, packed_numbers, packed_directories, checkpoints = loaded
        names = joined.split(b"\0") if joined else []
        numbers, directories = array("q"), array("q")
        numbers.frombytes(packed_numbers)
        directories.frombytes(packed_directories)
        if len(numbers) != _WIDTH * len(names) or (directories and directories[-1] >= len(names)):
            return None
        entries = IndexEntries(names, numbers, directories)
        return LayerIndex(tuple(root), epoch, int(size), entries, list(checkpoints))
    except (OSError, EOFError, ValueError, TypeError):
        return None


@dataclass(frozen=True)
class PreviousLayer:
    """The layer a new one may splice from: its index and a reader of its tar's bytes
    (``read(offset, length)`` yields chunks, each valid until the next is asked for)."""

    index: LayerIndex
    read: Callable[[int, int], Iterator[bytes | memoryview]]
    #: The new tar as foretold (:mod:`builder.layers.prehash`): the previous tar with
    #: ``patch`` in place of as many of its bytes from ``patch_at`` on (the headers of
    #: restamped directories, or one rewritten file's entry); and the thread hashing that
    #: foretold stream, if one does.
    patch: bytes = b""
    patch_at: int = 0
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
