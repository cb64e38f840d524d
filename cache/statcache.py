"""A persistent stat cache: a file's content digest, remembered against its ``lstat``.

Hashing a large context on every build would make a fully cached rebuild as slow as reading
every byte; like BuildKit's ``contenthash`` and git's index, a file whose device, inode,
size, mtime and ctime are unchanged is taken to hold the content hashed last time. The
entries live in their own SQLite file (WAL, so concurrent builds read while one writes),
keyed by absolute host path; they are loaded once per directory tree and written back in
one transaction.

Racy entries are never stored: a file whose mtime is within :data:`RACY_WINDOW_NS` of the
moment it was hashed could change again without its mtime moving (coarse timestamps on
some filesystems), so it is read again next time, as git does for "racily clean" entries.
The ctime is part of the key but not of this check: nothing can set it back, so a rewrite
that restores the old mtime (``touch -r``, ``utime``) still shows as a change.
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from builder.errors import StoreError

#: Files modified this recently before hashing are not remembered (2 s, FAT's granularity).
RACY_WINDOW_NS = 2_000_000_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS file_digests (
    path TEXT PRIMARY KEY,
    device INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL
)
"""


@dataclass(frozen=True)
class StatKey:
    """What must be unchanged for a remembered digest to still hold."""

    device: int
    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, info: os.stat_result) -> StatKey:
        return cls(info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


class StatCache:
    """Remembered digests of files below the trees asked about, with pending additions."""

    def __init__(self, path: Path, *, racy_window_ns: int = RACY_WINDOW_NS) -> None:
        self.path = path
        self.racy_window_ns = racy_window_ns
        self._loaded_prefixes: set[str] = set()
        self._known: dict[str, tuple[StatKey, str]] = {}
        self._pending: dict[str, tuple[StatKey, str]] = {}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, timeout=60.0, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
        except sqlite3.Error as err:
            raise StoreError(f"cannot open the stat cache {path}: {err}") from err

    def close(self) -> None:
        self._db.close()

    def load(self, root: Path) -> None:
        """Read every entry under ``root`` into memory (once per root)."""
        prefix = str(root).rstrip("/") + "/"
        if any(prefix.startswith(loaded) for loaded in self._loaded_prefixes):
            return
        # "0" sorts right after "/": the half-open range is exactly the paths below root.
        rows = self._db.execute(
            "SELECT path, device, inode, size, mtime_ns, ctime_ns, sha256 FROM file_digests "
            "WHERE path >= ? AND path < ?",
            (prefix, prefix[:-1] + "0"),
        ).fetchall()
        for path, device, inode, size, mtime_ns, ctime_ns, sha256 in rows:
            self._known[path] = (StatKey(device, inode, size, mtime_ns, ctime_ns), sha256)
        self._loaded_prefixes.add(prefix)

    def get(self, path: str, key: StatKey) -> str | None:
        """The remembered digest of ``path`` if its stat still matches ``key``."""
        known = self._known.get(path)
        if known is None or known[0] != key:
            return None
        return known[1]

    def remember(self, path: str, key: StatKey, sha256: str, *, hashed_at_ns: int | None = None) -> None:
        """Keep a digest for the next :meth:`flush`, unless the file is racily new."""
        now = time.time_ns() if hashed_at_ns is None else hashed_at_ns
        if now - key.mtime_ns < self.racy_window_ns:
            return
        self._known[path] = (key, sha256)
        self._pending[path] = (key, sha256)

    def flush(self) -> None:
        """Write pending entries in one transaction (nothing at all when none are new)."""
        if not self._pending:
            return
        rows = [
            (path, key.device, key.inode, key.size, key.mtime_ns, key.ctime_ns, sha256)
            for path, (key, sha256) in self._pending.items()
        ]
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT OR REPLACE INTO file_digests VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.Error as err:
            raise StoreError(f"cannot write the stat cache {self.path}: {err}") from err
        self._pending.clear()
