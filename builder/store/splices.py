"""Blobs stored as splices: a list of byte ranges of other blobs, read as one stream.

When a ``COPY`` re-runs after a few of its files changed, the new layer's tar is the old
one with a few entries replaced. Writing it out again would cost as much as the first
time (300 MB written and synced for a one-byte edit); instead the store keeps it as a
*splice*: the ranges of the old layer's blob that did not change, and a small blob of the
bytes that did. ``<hex>.splice`` beside the blobs names the parts; readers get one stream
of the whole (:class:`SplicedReader`), so exports, pushes and unpacking see a plain blob.

Parts always name plain blobs: a splice made from a splice is flattened, so reading never
recurses and a prune keeps exactly the blobs a live splice names (:func:`sources`). A splice
is written to a temporary file and renamed into place, so it is whole or absent.
"""

from __future__ import annotations

import bisect
import io
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from builder.errors import StoreError
from builder.lazyclasses import dataclass

SUFFIX = ".splice"
#: A splice of more parts than this is written out whole instead (:meth:`BlobStore.put_splice`).
MAX_PARTS = 2048
_FORMAT = "kiln.splice.v1"
_CHUNK_SIZE = 16 << 20


@dataclass(frozen=True)
class Part:
    """``length`` bytes of the plain blob ``source`` from ``offset``."""

    source: str
    offset: int
    length: int


def merge_parts(parts: Iterable[Part]) -> list[Part]:
    """``parts`` with neighbours that continue one another joined, and empty ones dropped."""
    merged: list[Part] = []
    for part in parts:
        if part.length == 0:
            continue
        if merged:
            last = merged[-1]
            if last.source == part.source and last.offset + last.length == part.offset:
                merged[-1] = Part(last.source, last.offset, last.length + part.length)
                continue
        merged.append(part)
    return merged


class PartTable:
    """The parts of one stream with where each starts, to cut ranges out by bisection."""

    def __init__(self, parts: Sequence[Part]) -> None:
        self.parts = list(parts)
        self.starts: list[int] = []
        position = 0
        for part in self.parts:
            self.starts.append(position)
            position += part.length
        self.size = position

    def slice(self, offset: int, length: int) -> list[Part]:
        """The parts covering bytes ``[offset, offset + length)`` of the stream."""
        end = offset + length
        if offset < 0 or length < 0 or end > self.size:
            raise StoreError(f"range {offset}+{length} is past the end of the blob")
        found: list[Part] = []
        index = max(bisect.bisect_right(self.starts, offset) - 1, 0)
        while index < len(self.parts) and self.starts[index] < end:
            part, position = self.parts[index], self.starts[index]
            start, stop = max(offset, position), min(end, position + part.length)
            if stop > start:
                found.append(Part(part.source, part.offset + start - position, stop - start))
            index += 1
        return found


def write_splice(path: Path, parts: Sequence[Part]) -> int:
    """Record ``parts`` at ``path`` (atomically); return the spliced blob's size."""
    size = sum(part.length for part in parts)
    document = {
        "format": _FORMAT,
        "size": size,
        "parts": [[part.source, part.offset, part.length] for part in parts],
    }
    from builder.durable import write_durably

    write_durably(path, json.dumps(document, separators=(",", ":")).encode())
    return size


def read_splice(path: Path) -> tuple[int, list[Part]]:
    """The size and parts recorded at ``path``; :class:`StoreError` when it is damaged."""
    try:
        document = json.loads(path.read_bytes())
        if document.get("format") != _FORMAT:
            raise ValueError(f"unknown format {document.get('format')!r}")
        parts = [Part(str(source), int(offset), int(length)) for source, offset, length in document["parts"]]
        size = int(document["size"])
    except FileNotFoundError:
        raise
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as err:
        raise StoreError(f"spliced blob {path.name} is damaged: {err}") from err
    if sum(part.length for part in parts) != size or any(p.offset < 0 or p.length < 0 for p in parts):
        raise StoreError(f"spliced blob {path.name} is damaged: its parts do not add up")
    return size, parts


class BlobRanges:
    """Byte ranges of a stream made of parts, each read from its blob file with ``pread``;
    the parts are looked up by bisection and each file opened once."""

    def __init__(self, parts: Sequence[tuple[Path, Part]], name: str) -> None:
        self.name = name
        self._parts = list(parts)
        self._starts: list[int] = []
        position = 0
        for _path, part in self._parts:
            self._starts.append(position)
            position += part.length
        self.size = position
        # Each file opened once, now: the layer writer's thread and its hashing thread may
        # read at the same time, and a part whose blob is gone fails here, at opening.
        self._descriptors: dict[Path, int] = {}
        try:
            for path, _part in self._parts:
                if path not in self._descriptors:
                    self._descriptors[path] = _open(path, name)
        except BaseException:
            self.close()
            raise

    def chunks(self, offset: int, length: int) -> Iterator[memoryview]:
        """Bytes ``[offset, offset + length)`` in chunks of up to 16 MiB, each a view of one
        reused buffer, valid until the next is asked for.

        Large chunks matter to a hashing thread: it gives the GIL back for each read and
        each hash, and takes up to the switch interval (5 ms) to get it back from a busy
        writer thread; with 1 MiB chunks that wait, not hashing, was most of its time."""
        self._check_range(offset, length)
        buffer = memoryview(bytearray(min(_CHUNK_SIZE, length)))
        end = offset + length
        while offset < end:
            path, part, within = self._locate(offset)
            want = min(len(buffer), part.length - within, end - offset)
            count = os.preadv(self._descriptor(path), [buffer[:want]], part.offset + within)
            if count <= 0:
                raise StoreError(f"blob {path.name} is shorter than blob {self.name} needs")
            offset += count
            yield buffer[:count]

    def pread(self, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes from ``offset`` (fewer at a part's end; empty at the end)."""
        if offset >= self.size or size <= 0:
            return b""
        path, part, within = self._locate(offset)
        want = min(size, part.length - within)
        chunk = os.pread(self._descriptor(path), want, part.offset + within)
        if not chunk:
            raise StoreError(f"blob {path.name} is shorter than blob {self.name} needs")
        return chunk

    def close(self) -> None:
        for descriptor in self._descriptors.values():
            os.close(descriptor)
        self._descriptors.clear()

    def extents(self, offset: int, length: int) -> list[tuple[int, int, int]]:
        """Where bytes ``[offset, offset + length)`` lie: ``(descriptor, file offset,
        length)`` for each part they cross, in order (the descriptors stay open until
        :meth:`close`). For a reader that maps the files rather than copying them out."""
        self._check_range(offset, length)
        found = []
        end = offset + length
        while offset < end:
            path, part, within = self._locate(offset)
            count = min(part.length - within, end - offset)
            found.append((self._descriptor(path), part.offset + within, count))
            offset += count
        return found

    def _check_range(self, offset: int, length: int) -> None:
        if offset < 0 or offset + length > self.size:
            raise StoreError(f"range {offset}+{length} is past the end of blob {self.name}")

    def _locate(self, offset: int) -> tuple[Path, Part, int]:
        """The part holding byte ``offset``, its file, and how far into the part it lies."""
        index = bisect.bisect_right(self._starts, offset) - 1
        path, part = self._parts[index]
        return path, part, offset - self._starts[index]

    def _descriptor(self, path: Path) -> int:
        return self._descriptors[path]


class SplicedReader(io.RawIOBase):
    """A read-only, seekable stream over the parts of a splice."""

    def __init__(self, parts: Sequence[tuple[Path, Part]], name: str) -> None:
        super().__init__()
        self._ranges = BlobRanges(parts, name)
        self._position = 0
        self.name = name

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._ranges.size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._position = base + offset
        return self._position

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        filled = 0
        while filled < len(view):
            chunk = self._ranges.pread(self._position, len(view) - filled)
            if not chunk:
                break
            view[filled : filled + len(chunk)] = chunk
            filled += len(chunk)
            self._position += len(chunk)
        return filled

    def close(self) -> None:
        self._ranges.close()
        super().close()


def _open(path: Path, name: str) -> int:
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError as err:
        raise StoreError(f"blob {path.name}, part of blob {name}, is missing") from err
