"""The content store: ``blobs/sha256/<hex>``, laid out as in an OCI image layout.

A blob is hashed while it is written to a temporary file in the same directory, fsynced and
renamed onto its digest, so it is whole or absent. Data from outside (an archive, a
registry) is written with the digest it claims; a mismatch removes the temporary file and
raises, leaving nothing behind. Temporary names carry the writer's pid, so the next start can
remove those of dead writers without touching a live one's.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import BinaryIO, cast

from builder.durable import TEMP_PREFIX
from builder.errors import StoreError
from builder.lazyclasses import dataclass
from builder.processes import process_alive
from builder.store import splices
from builder.store.writeback import EarlyWriteback

_CHUNK = 1 << 20
#: A blob written out in the background asks whether to pause, and syncs, each time this
#: much is copied.
_PAUSE_EVERY = 4 << 20
_HEX = re.compile(r"[0-9a-f]{64}")
INDEX_SUFFIX = ".index"


@dataclass(frozen=True)
class BlobInfo:
    """What was stored: the digest (``sha256:<hex>``) and the size in bytes."""

    digest: str
    size: int


def digest_hex(digest: str) -> str:
    """The hex part of a ``sha256:`` digest; raise :class:`StoreError` for anything else."""
    algorithm, _, hex_part = digest.partition(":")
    if algorithm != "sha256" or not _HEX.fullmatch(hex_part):
        raise StoreError(f"unsupported or malformed digest {digest!r}")
    return hex_part


class BlobStore:
    """Blobs under ``<root>/blobs/sha256``; safe for concurrent writers of the same blob."""

    def __init__(self, root: Path) -> None:
        self.directory = root / "blobs" / "sha256"
        self.directory.mkdir(parents=True, exist_ok=True)
        #: A blob was renamed into place without the directory being synced since.
        self._unsynced = False
        #: Blobs this process stored as splices (:mod:`builder.store.write_out` writes
        #: those of the images built out whole afterwards).
        self.spliced: set[str] = set()

    def path(self, digest: str) -> Path:
        return self.directory / digest_hex(digest)

    def splice_path(self, digest: str) -> Path:
        """Where a blob kept as a splice of others records its parts (:mod:`.splices`)."""
        return self.directory / (digest_hex(digest) + splices.SUFFIX)

    def index_path(self, digest: str) -> Path:
        """Where a layer blob's index lives (:mod:`builder.layers.layerindex`), removed with it."""
        return self.directory / (digest_hex(digest) + INDEX_SUFFIX)

    def has(self, digest: str) -> bool:
        # A string path: a cached build asks this of every layer and record it reuses.
        plain = os.path.join(self.directory, digest_hex(digest))
        return os.path.isfile(plain) or os.path.isfile(plain + splices.SUFFIX)

    def open(self, digest: str) -> BinaryIO:
        """Open a stored blob for reading; raise :class:`StoreError` when it is absent."""
        try:
            return self.path(digest).open("rb")
        except FileNotFoundError:
            pass
        try:
            _size, parts = splices.read_splice(self.splice_path(digest))
        except FileNotFoundError as err:
            raise StoreError(f"blob {digest} is not in the store") from err
        return cast(BinaryIO, io.BufferedReader(splices.SplicedReader(self._located(parts), digest), _CHUNK))

    def parts(self, digest: str) -> list[splices.Part]:
        """The plain blob ranges ``digest`` is made of: itself whole, or a splice's parts."""
        try:
            return [splices.Part(digest, 0, self.path(digest).stat().st_size)]
        except FileNotFoundError:
            pass
        try:
            return splices.read_splice(self.splice_path(digest))[1]
        except FileNotFoundError as err:
            raise StoreError(f"blob {digest} is not in the store") from err

    def ranges(self, digest: str) -> splices.BlobRanges:
        """A reader of byte ranges of a blob, plain or spliced (close it when done)."""
        return splices.BlobRanges(self._located(self.parts(digest)), digest)

    def _located(self, parts: Sequence[splices.Part]) -> list[tuple[Path, splices.Part]]:
        """Each part with the file of the blob it is read from."""
        return [(self.path(part.source), part) for part in parts]

    def put_splice(self, digest: str, parts: Sequence[splices.Part]) -> BlobInfo:
        """Record the blob ``digest`` as ``parts`` of stored blobs, whose hash the caller
        computed over exactly those bytes. Parts naming a splice are replaced by its own, so
        every part names a plain blob that must be present."""
        sources: dict[str, splices.PartTable] = {}
        flat: list[splices.Part] = []
        for part in parts:
            table = sources.get(part.source)
            if table is None:
                table = sources[part.source] = splices.PartTable(self.parts(part.source))
            flat += table.slice(part.offset, part.length)
        flat = splices.merge_parts(flat)
        if self.has(digest):
            return BlobInfo(digest, sum(part.length for part in flat))
        if len(flat) > splices.MAX_PARTS:
            return self._materialize(digest, splices.BlobRanges(self._located(flat), digest))
        size = splices.write_splice(self.splice_path(digest), flat)
        self._sync_directory()
        self.spliced.add(digest)
        return BlobInfo(digest, size)

    def write_out(
        self,
        digest: str,
        *,
        opening: Callable[[], AbstractContextManager[object]] = nullcontext,
        pause: Callable[[], None] | None = None,
    ) -> bool:
        """Write a blob kept as a splice out whole, beside its parts (checked against its
        digest on the way), so that outside tools reading the store's OCI layout find it;
        false when it is whole already or gone. The parts file stays: a reader that looked
        for the whole file a moment before finds the parts still there.

        Its parts are opened inside ``opening()`` (the gc lock, so that a prune does not
        remove them half-way through); once open, they are read outside it, with a call
        of ``pause`` before each chunk (to let other work go first)."""
        if os.path.isfile(self.path(digest)):
            return False
        with opening():
            try:
                _size, parts = splices.read_splice(self.splice_path(digest))
            except FileNotFoundError:
                return False
            ranges = splices.BlobRanges(self._located(parts), digest)
        self._materialize(digest, ranges, pause=pause)
        return True

    def _materialize(
        self, digest: str, ranges: splices.BlobRanges, *, pause: Callable[[], None] | None = None
    ) -> BlobInfo:
        """Store the bytes ``ranges`` reads (and closes) as a plain blob, checked against
        ``digest``: a splice of too many pieces (one layer edited file by file, many times
        over) reads slowly and keeps many small blobs alive, so it is written out whole."""

        def copy(out: _HashingWriter) -> None:
            for chunk in ranges.chunks(0, ranges.size):
                if pause is None:
                    out.write(chunk)
                    continue
                view = memoryview(chunk)
                for start in range(0, len(view), _PAUSE_EVERY):
                    pause()
                    out.write(view[start : start + _PAUSE_EVERY])
                    # On disk before the next piece: a build starting meanwhile finds a few
                    # MB in flight, not hundreds (its own small fsyncs would wait for them).
                    out.sync()

        try:
            return self._write(copy, expected_digest=digest)
        finally:
            ranges.close()

    def splice_sources(self, digests: Iterable[str]) -> set[str]:
        """The plain blobs the splices among ``digests`` are made of (a prune keeps them)."""
        found: set[str] = set()
        for digest in digests:
            path = self.splice_path(digest)
            if not os.path.isfile(path) or os.path.isfile(self.path(digest)):
                continue
            try:
                found |= {part.source for part in splices.read_splice(path)[1]}
            except (FileNotFoundError, StoreError):
                continue
        return found

    def read_bytes(self, digest: str) -> bytes:
        with self.open(digest) as stream:
            return stream.read()

    def put_bytes(
        self, payload: bytes, *, expected_digest: str | None = None, sync_directory: bool = True
    ) -> BlobInfo:
        """Store ``payload``. With ``sync_directory=False`` the directory entry is made durable
        by the next write that syncs it (an image's config by its manifest, written next to
        it): one directory ``fsync`` for the two."""
        digest = "sha256:" + hashlib.sha256(payload).hexdigest()
        if expected_digest is not None and expected_digest != digest:
            raise StoreError(f"content does not match its digest: expected {expected_digest}, got {digest}")
        if self.has(digest):
            if sync_directory and self._unsynced:
                self._sync_directory()
            return BlobInfo(digest, len(payload))
        return self._write(
            lambda out: out.write(payload), expected_digest=digest, sync_directory=sync_directory
        )

    def put_stream(
        self, stream: BinaryIO, *, expected_digest: str | None = None, expected_size: int | None = None
    ) -> BlobInfo:
        """Copy ``stream`` into the store; with ``expected_digest`` the content must match it."""
        if expected_digest is not None:
            digest_hex(expected_digest)

        def copy(out: _HashingWriter) -> None:
            while chunk := stream.read(_CHUNK):
                out.write(chunk)

        return self._write(copy, expected_digest=expected_digest, expected_size=expected_size)

    def put_from_writer(self, fill: Callable[[BinaryIO], object]) -> BlobInfo:
        """Store what ``fill`` writes to the file object it is given (a layer writer, say),
        hashed on the way; whole or absent, like every other write."""
        return self._write(lambda out: fill(cast(BinaryIO, out)), expected_digest=None)

    def put_self_hashed(self, fill: Callable[[BinaryIO], BlobInfo]) -> BlobInfo:
        """:meth:`put_from_writer` for a writer that hashes every byte it writes itself and
        returns the result (the layer writer does, for the diff id): the bytes are hashed
        once rather than twice, which is most of the cost of an uncompressed layer."""
        return self._write(lambda out: fill(out.raw), expected_digest=None, hashed=True)

    def verify(self, digest: str) -> bool:
        """Whether the stored blob still hashes to its name (false when absent)."""
        hasher = hashlib.sha256()
        try:
            with self.open(digest) as stream:
                while chunk := stream.read(_CHUNK):
                    hasher.update(chunk)
        except StoreError:
            return False
        return hasher.hexdigest() == digest_hex(digest)

    def size(self, digest: str) -> int:
        """The blob's size as its readers see it (a splice's whole length)."""
        try:
            return self.path(digest).stat().st_size
        except FileNotFoundError:
            pass
        try:
            return splices.read_splice(self.splice_path(digest))[0]
        except FileNotFoundError as err:
            raise StoreError(f"blob {digest} is not in the store") from err

    def disk_size(self, digest: str) -> int:
        """What the blob itself takes on disk: a splice's list of parts, not their bytes."""
        for path in (self.path(digest), self.splice_path(digest)):
            try:
                return path.stat().st_size
            except FileNotFoundError:
                continue
        return 0

    def delete(self, digest: str) -> None:
        for path in (self.path(digest), self.splice_path(digest), self.index_path(digest)):
            path.unlink(missing_ok=True)

    def digests(self) -> Iterator[str]:
        seen: set[str] = set()
        for name in os.listdir(self.directory):
            hex_part = name.removesuffix(splices.SUFFIX)
            if _HEX.fullmatch(hex_part) and hex_part not in seen:
                seen.add(hex_part)
                yield "sha256:" + hex_part

    def remove_stale_temp_files(self) -> list[Path]:
        """Remove temporary files whose writer process is gone; return what was removed."""
        return remove_stale_temp_entries(self.directory)

    def _write(
        self,
        fill: Callable[[_HashingWriter], object],
        *,
        expected_digest: str | None,
        expected_size: int | None = None,
        hashed: bool = False,
        sync_directory: bool = True,
    ) -> BlobInfo:
        temp_path = self.directory / f"{TEMP_PREFIX}{os.getpid()}-{os.urandom(8).hex()}"
        try:
            with temp_path.open("xb") as raw:
                sink = EarlyWriteback(raw)
                try:
                    hashing = _HashingWriter(cast(BinaryIO, sink))
                    filled = fill(hashing)
                finally:
                    sink.finish()
                raw.flush()
                os.fsync(raw.fileno())
            if hashed:
                if not isinstance(filled, BlobInfo) or temp_path.stat().st_size != filled.size:
                    raise StoreError("a self-hashing blob writer did not describe what it wrote")
                hashing.size = filled.size
                digest = "sha256:" + digest_hex(filled.digest)
            else:
                digest = "sha256:" + hashing.hasher.hexdigest()
            if expected_digest is not None and digest != expected_digest:
                raise StoreError(
                    f"content does not match its digest: expected {expected_digest}, got {digest}"
                )
            if expected_size is not None and hashing.size != expected_size:
                raise StoreError(f"blob {digest} has {hashing.size} bytes, {expected_size} were expected")
            os.replace(temp_path, self.directory / digest_hex(digest))
        except BaseException:
            temp_path.unlink(missing_ok=True)
            raise
        if sync_directory:
            self._sync_directory()
        else:
            self._unsynced = True
        return BlobInfo(digest, hashing.size)

    def _sync_directory(self) -> None:
        self._unsynced = False  # before: a rename after the fsync starts sets it again
        _fsync_directory(self.directory)


class _HashingWriter:
    """A write-only file object that hashes and counts what passes through it."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.hasher = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes | bytearray | memoryview) -> int:
        self.hasher.update(chunk)
        self.size += len(chunk)
        return self.raw.write(chunk)

    def sync(self) -> None:
        """Put what was written so far on disk."""
        self.raw.flush()
        os.fdatasync(self.raw.fileno())


def remove_stale_temp_entries(directory: Path) -> list[Path]:
    """Delete ``.tmp-<pid>-…`` entries of ``directory`` whose pid is no longer alive.

    Every store opening runs this over the blob directory, so names are read as strings
    (``os.listdir``): a ``Path`` for each of thousands of blobs cost more than the rest."""
    removed: list[Path] = []
    for name in os.listdir(directory):
        if not name.startswith(TEMP_PREFIX):
            continue
        entry = directory / name
        pid_text = name[len(TEMP_PREFIX) :].split("-", 1)[0]
        if pid_text.isdigit() and process_alive(int(pid_text)):
            continue
        if entry.is_dir() and not entry.is_symlink():
            import shutil  # only here: opening a store usually removes nothing

            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
