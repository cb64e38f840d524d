"""A persistent stat cache: a file's content digest, remembered against its ``lstat``.

Hashing a large context on every build would make a fully cached rebuild as slow as reading
every byte; like BuildKit's ``contenthash`` and git's index, a file whose device, inode,
size, mtime and ctime are unchanged is taken to hold the content hashed last time.

The entries of one directory tree (a build context, say) are kept together as one
``marshal``-encoded row of a SQLite table (WAL, so concurrent builds read while one writes):
a build loads a 20,000-file context's entries in one read and writes them back in one, only
when something was hashed. Two builds of one context writing at once lose nothing but
cached digests (the last write wins), which costs a re-read later, never a wrong digest.
A row that cannot be decoded (another Python's ``marshal``) is treated as empty.

Racy entries are never stored: a file whose mtime is within :data:`RACY_WINDOW_NS` of the
moment it was hashed could change again without its mtime moving (coarse timestamps on
some filesystems), so it is read again next time, as git does for "racily clean" entries.
The ctime is part of the key but not of this check: nothing can set it back, so a rewrite
that restores the old mtime (``touch -r``, ``utime``) still shows as a change.
"""

from __future__ import annotations

import marshal
import os
import sqlite3
import sys
import time
from pathlib import Path

from builder.errors import StoreError

#: Files modified this recently before hashing are not remembered (2 s, FAT's granularity).
RACY_WINDOW_NS = 2_000_000_000

#: What must be unchanged for a remembered digest to still hold:
#: ``(device, inode, size, mtime_ns, ctime_ns)``. A plain tuple, since a context has tens of
#: thousands of them and each is built and compared once per build.
StatKey = tuple[int, int, int, int, int]

_FORMAT = f"marshal-{marshal.version}-py{sys.version_info[0]}.{sys.version_info[1]}"
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS trees (root TEXT PRIMARY KEY, format TEXT NOT NULL, entries BLOB NOT NULL)"
)


def stat_key(info: os.stat_result) -> StatKey:
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


class TreeDigests:
    """The remembered digests of one tree, by path relative to its root."""

    def __init__(self, entries: dict[str, tuple[StatKey, str]], racy_window_ns: int) -> None:
        #: ``relative path → (stat key, sha256 hex)``; read directly by hot loops.
        self.entries = entries
        self._racy_window_ns = racy_window_ns
        self.changed = False

    def get(self, relative: str, key: StatKey) -> str | None:
        """The remembered digest of ``relative`` if its stat still matches ``key``."""
        known = self.entries.get(relative)
        if known is None or known[0] != key:
            return None
        return known[1]

    def remember(self, relative: str, key: StatKey, sha256: str, *, hashed_at_ns: int | None = None) -> None:
        """Keep a digest for the next flush, unless the file is racily new."""
        now = time.time_ns() if hashed_at_ns is None else hashed_at_ns
        if now - key[3] < self._racy_window_ns:
            return
        self.entries[relative] = (key, sha256)
        self.changed = True

    def encoded(self) -> bytes:
        return marshal.dumps(self.entries)


class StatCache:
    """Remembered digests per tree root, loaded on first use and written on :meth:`flush`."""

    def __init__(self, path: Path, *, racy_window_ns: int = RACY_WINDOW_NS) -> None:
        self.path = path
        self.racy_window_ns = racy_window_ns
        self._trees: dict[str, TreeDigests] = {}
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

    def tree(self, root: Path) -> TreeDigests:
        """The digests remembered for the tree at ``root`` (read once per cache)."""
        key = str(root)
        found = self._trees.get(key)
        if found is None:
            found = TreeDigests(self._read(key), self.racy_window_ns)
            self._trees[key] = found
        return found

    def _read(self, root: str) -> dict[str, tuple[StatKey, str]]:
        try:
            row = self._db.execute("SELECT format, entries FROM trees WHERE root = ?", (root,)).fetchone()
        except sqlite3.Error as err:
            raise StoreError(f"cannot read the stat cache {self.path}: {err}") from err
        if row is None or row[0] != _FORMAT:
            return {}
        try:
            entries = marshal.loads(row[1])
        except (ValueError, EOFError, TypeError):
            return {}
        return entries if isinstance(entries, dict) else {}

    def flush(self) -> None:
        """Write the trees that gained digests (nothing at all when none did)."""
        for root, tree in self._trees.items():
            if not tree.changed:
                continue
            try:
                self._db.execute(
                    "INSERT OR REPLACE INTO trees VALUES (?, ?, ?)", (root, _FORMAT, tree.encoded())
                )
            except sqlite3.Error as err:
                raise StoreError(f"cannot write the stat cache {self.path}: {err}") from err
            tree.changed = False
