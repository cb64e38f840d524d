"""A persistent stat cache: what a directory held at its last walk, remembered against ``lstat``.

Hashing a large context on every build would make a fully cached rebuild as slow as reading
every byte; like BuildKit's ``contenthash`` and git's index, a file whose mode, device,
inode, size, mtime and ctime are unchanged is taken to hold the content hashed last time.

One SQLite row per directory of a tree (a build context, say) holds a
:class:`DirRecord`: the directory's names, each one's :data:`StatKey`, each regular file's
digest, and the lines the walk hashed for them last time. A rebuild that finds a whole
directory unchanged feeds those lines to its hash as they are, without one Python object
per file beyond its ``lstat``. A build loads a tree's rows in one query (decoding each
only when its directory is walked) and writes back only the rows that changed, in one
transaction. Rows are ``marshal``-encoded; one that cannot be decoded (another Python's
``marshal``) is treated as absent. SQLite runs in WAL mode, so concurrent builds read while
one writes; two builds of one context writing at once lose nothing but cached digests (the
last write wins), which costs a re-read later, never a wrong digest.

Deleted files are forgotten: a directory's row is rebuilt from its current listing whenever
it changes, and a walk of a whole tree drops the rows of the directories it did not meet.

It is a cache, written without syncs (``synchronous=OFF``): a sync when SQLite starts its
log waits for whatever else the filesystem's journal commits with it, up to tens of
milliseconds in the middle of a rebuild. A crash of the machine may then lose the last
writes (a row from before describes an inode and change time that no longer match, so it
is never taken) or, rarely, damage the file: one SQLite finds damaged is deleted and
started afresh.

Racy entries are never stored: a file whose mtime is within :data:`RACY_WINDOW_NS` of the
moment it was hashed could change again without its mtime moving (coarse timestamps on
some filesystems), so it is read again next time, as git does for "racily clean" entries;
nor are the lines of a directory holding a racily new entry of any kind. The ctime is part
of the key but not of this check: nothing can set it back, so a rewrite that restores the
old mtime (``touch -r``, ``utime``) still shows as a change.
"""

from __future__ import annotations

import contextlib
import functools
import marshal
import os
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

from builder.errors import StoreError
from cache.listing import (
    _PACKING,
    StatKey,
    fingerprint,
    join_names,
    pack_keys,
)

#: Files modified this recently before hashing are not remembered (2 s, FAT's granularity).
RACY_WINDOW_NS = 2_000_000_000

#: Index of the mtime in a :data:`StatKey`.
MTIME = 4

#: The filters a walk applies and whether owners count: ``.dockerignore``'s patterns as
#: ``(text, re-includes)``, the ``--exclude`` patterns, ``keep_owners``.
FilterId = tuple[tuple[tuple[str, bool], ...], tuple[str, ...], bool]

#: What a directory's hashed lines depend on besides its entries' stat keys: the name the
#: directory is shown under, its path below the copied entry when ``--exclude`` applies,
#: and the :data:`FilterId`. Compared as a whole.
RenderSignature = tuple[str, str | None, FilterId]

#: How many renderings of one directory are kept (a Dockerfile may copy it several ways).
MAX_RENDERS = 4

_FORMAT = f"dir-marshal-{marshal.version}-py{sys.version_info[0]}.{sys.version_info[1]}"
#: Roots and directories are kept as their bytes (``os.fsencode``): a name need not be UTF-8.
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS tree_dirs (root BLOB NOT NULL, dir BLOB NOT NULL, format TEXT NOT NULL,"
    " record BLOB NOT NULL, PRIMARY KEY (root, dir)) WITHOUT ROWID"
)

#: The one-row-per-tree table this format replaced, dropped when found.
_OLD_TABLE_QUERY = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'trees'"


class Rendered:
    """The lines one walk hashed for a directory's entries, reusable while nothing changed.

    ``segments[i]`` ends with the line of subdirectory ``subdirs[i]``, whose own entries
    come next; the last segment holds the lines after the last subdirectory.
    """

    __slots__ = ("segments", "signature", "subdirs")

    def __init__(self, signature: RenderSignature, segments: list[bytes], subdirs: list[str]) -> None:
        self.signature = signature
        self.segments = segments
        self.subdirs = subdirs


class DirRecord:
    """One directory as last walked: its names in walk order, their stat keys, the sha256
    hex of each regular file whose digest may be trusted (``None`` otherwise), and the lines
    hashed for them when those may be replayed (see :class:`Rendered`).

    The names are kept joined by ``/`` (which no name holds) and the keys and digests
    packed, so that loading a record makes a handful of objects rather than a few per file:
    the fast path only compares them whole (:func:`join_names`, :func:`pack_keys`), and the
    lists are unpacked only for a directory that changed.
    """

    def __init__(
        self, listing: str, packed_keys: bytes, packed_digests: bytes, renders: list[Rendered]
    ) -> None:
        self.listing = listing
        self.packed_keys = packed_keys
        self.packed_digests = packed_digests
        #: Lines that may be replayed, one per signature the directory was walked under
        #: with these keys (most recent first, at most :data:`MAX_RENDERS`).
        self.renders = renders

    @classmethod
    def of(
        cls, names: list[str], keys: list[StatKey], digests: list[str | None], renders: list[Rendered]
    ) -> DirRecord:
        return cls(join_names(names), pack_keys(keys), marshal.dumps(digests, _PACKING), renders)

    @functools.cached_property
    def fingerprint(self) -> str:
        """:func:`fingerprint` of the names and keys recorded: what a scan of the directory
        gives while it is as the walk that wrote this record left it."""
        return fingerprint((self.listing, self.packed_keys))  # type: ignore[return-value]  # (a listing)

    def rendered_for(self, signature: RenderSignature) -> Rendered | None:
        return next((rendered for rendered in self.renders if rendered.signature == signature), None)

    @functools.cached_property
    def names(self) -> list[str]:
        return self.listing.split("/") if self.listing else []

    @functools.cached_property
    def keys(self) -> list[StatKey]:
        keys: list[StatKey] = marshal.loads(self.packed_keys)
        return keys

    @functools.cached_property
    def digests(self) -> list[str | None]:
        digests: list[str | None] = marshal.loads(self.packed_digests)
        return digests

    def known_digests(self) -> dict[str, tuple[StatKey, str]]:
        """``name → (stat key, sha256)`` for the files whose digest was remembered."""
        return {
            name: (key, digest)
            for name, key, digest in zip(self.names, self.keys, self.digests, strict=True)
            if digest is not None
        }

    def same_as(self, other: DirRecord) -> bool:
        """Whether writing ``other`` in place of this record would change nothing."""
        if (self.listing, self.packed_keys, self.packed_digests) != (
            other.listing,
            other.packed_keys,
            other.packed_digests,
        ):
            return False
        return [_unpacked(rendered) for rendered in self.renders] == [
            _unpacked(rendered) for rendered in other.renders
        ]

    def encoded(self) -> bytes:
        renders = [_unpacked(rendered) for rendered in self.renders]
        return marshal.dumps((self.listing, self.packed_keys, self.packed_digests, renders))

    @classmethod
    def decode(cls, blob: bytes) -> DirRecord | None:
        """The record in ``blob``; ``None`` for anything this Python did not write."""
        try:
            listing, packed_keys, packed_digests, unpacked = marshal.loads(blob)
            renders = [Rendered(*rendered) for rendered in unpacked]
        except (ValueError, EOFError, TypeError):
            return None
        if not (
            isinstance(listing, str) and isinstance(packed_keys, bytes) and isinstance(packed_digests, bytes)
        ):
            return None
        return cls(listing, packed_keys, packed_digests, renders)


def _unpacked(rendered: Rendered) -> tuple[RenderSignature, list[bytes], list[str]]:
    return rendered.signature, rendered.segments, rendered.subdirs


class TreeDigests:
    """The remembered directories of one tree, by path relative to its root (``""``)."""

    def __init__(self, rows: dict[str, bytes], racy_window_ns: int) -> None:
        self.racy_window_ns = racy_window_ns
        self._rows = rows
        self._records: dict[str, DirRecord | None] = {}
        self._visited: set[str] = set()
        #: Directories whose record changed, and directories to forget, until the next flush.
        self.dirty: set[str] = set()
        self.forgotten: set[str] = set()

    def directory(self, relative: str) -> DirRecord | None:
        """The record of directory ``relative`` (decoded on first use), marking it visited."""
        self._visited.add(relative)
        try:
            return self._records[relative]
        except KeyError:
            blob = self._rows.get(relative)
            record = None if blob is None else DirRecord.decode(blob)
            self._records[relative] = record
            return record

    def store(self, relative: str, record: DirRecord) -> None:
        self._records[relative] = record
        self.dirty.add(relative)
        self.forgotten.discard(relative)

    def forget_unvisited(self) -> None:
        """After a walk of the whole tree: drop the directories it did not meet (deleted,
        or left out by the ignore rules)."""
        for relative in (self._rows.keys() | self._records.keys()) - self._visited:
            self._rows.pop(relative, None)
            self._records.pop(relative, None)
            self.dirty.discard(relative)
            self.forgotten.add(relative)

    def record(self, relative: str) -> DirRecord | None:
        """The current record of ``relative`` without marking it visited (for writing)."""
        return self._records.get(relative)

    def directories(self) -> list[str]:
        """The directories with a row or a record, for tests and diagnostics."""
        return sorted(self._rows.keys() | {key for key, value in self._records.items() if value is not None})


#: How much of the database SQLite may map rather than read (``PRAGMA mmap_size``).
_MAPPED_BYTES = 1 << 28


class StatCache:
    """Remembered directories per tree root, loaded on first use and written on :meth:`flush`."""

    def __init__(self, path: Path, *, racy_window_ns: int = RACY_WINDOW_NS) -> None:
        self.path = path
        self.racy_window_ns = racy_window_ns
        self._trees: dict[str, TreeDigests] = {}
        #: A read found the file damaged: the next flush starts it afresh.
        self._damaged = False
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                self._db = self._connect()
            except sqlite3.DatabaseError as err:
                if not _damaged(err):
                    raise
                self._start_afresh()
                self._db = self._connect()
        except sqlite3.Error as err:
            raise StoreError(f"cannot open the stat cache {path}: {err}") from err

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=60.0, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=OFF")
            # A tree's records (5 MB for 20,000 files) are read in one query at the walk's
            # start: mapped, they are copied from the page cache without a read per page.
            db.execute(f"PRAGMA mmap_size={_MAPPED_BYTES}")
            db.execute(_SCHEMA)
            if db.execute(_OLD_TABLE_QUERY).fetchone() is not None:
                db.execute("DROP TABLE trees")
        except BaseException:
            db.close()
            raise
        return db

    def _start_afresh(self) -> None:
        """Delete a damaged cache (and its log): it is only a cache."""
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{self.path}{suffix}")

    def close(self) -> None:
        self._db.close()

    def tree(self, root: Path) -> TreeDigests:
        """The directories remembered for the tree at ``root`` (read once per cache)."""
        key = str(root)
        found = self._trees.get(key)
        if found is None:
            found = TreeDigests(self._read(key), self.racy_window_ns)
            self._trees[key] = found
        return found

    def _read(self, root: str) -> dict[str, bytes]:
        try:
            rows = self._db.execute(
                "SELECT dir, record FROM tree_dirs WHERE root = ? AND format = ?",
                (os.fsencode(root), _FORMAT),
            ).fetchall()
        except sqlite3.DatabaseError as err:
            if not _damaged(err):
                raise StoreError(f"cannot read the stat cache {self.path}: {err}") from err
            rows = []  # nothing remembered: every file is read (written afresh on flush)
            self._damaged = True
        return {os.fsdecode(relative): record for relative, record in rows}

    def flush(self) -> None:
        """Write the directories that changed and delete the forgotten ones, one transaction
        per tree (nothing at all when nothing changed)."""
        if self._damaged:
            self._db.close()
            self._start_afresh()
            self._db = self._connect()
            self._damaged = False
        for root, tree in self._trees.items():
            if not tree.dirty and not tree.forgotten:
                continue
            rows = []
            for relative in sorted(tree.dirty):
                record = tree.record(relative)
                if record is not None:
                    rows.append((os.fsencode(root), os.fsencode(relative), _FORMAT, record.encoded()))
            try:
                with _transaction(self._db):
                    self._db.executemany("INSERT OR REPLACE INTO tree_dirs VALUES (?, ?, ?, ?)", rows)
                    self._db.executemany(
                        "DELETE FROM tree_dirs WHERE root = ? AND dir = ?",
                        [(os.fsencode(root), os.fsencode(relative)) for relative in sorted(tree.forgotten)],
                    )
            except sqlite3.Error as err:
                raise StoreError(f"cannot write the stat cache {self.path}: {err}") from err
            tree.dirty.clear()
            tree.forgotten.clear()


def _damaged(err: sqlite3.DatabaseError) -> bool:
    """Whether SQLite says the file is damaged or not a database at all."""
    code = getattr(err, "sqlite_errorcode", 0) & 0xFF
    return code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` (``ROLLBACK`` on error) on an autocommit connection."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
