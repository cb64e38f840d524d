"""The leases of running builds, in ``<root>/leases.db``: SQLite that never waits for the disk.

A build lease only matters while the process holding it runs: it keeps what the build uses
safe from a concurrent ``prune``. So it needs no durability. Here it is written with
``synchronous=OFF`` in a database of its own, which costs no ``fsync`` at all; in
``meta.db`` the first write of a process (the lease, for a fully cached build the only one)
cost the WAL header's sync, the directory's and the close's checkpoint: ~15 ms a build on a
busy disk. Leases that must outlive a power failure (a stopped container's) stay in
``meta.db``.

A power failure may leave this database damaged (``synchronous=OFF``); every lease in it
died with its process then, so a damaged file is removed and made again.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from builder.errors import StoreError
from builder.store.sqlite_threads import ThreadConnections, connect

#: SQLite's result codes for a file that is damaged or not a database at all.
_DAMAGED = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS leases (id TEXT PRIMARY KEY, created REAL NOT NULL, expires REAL)",
    "CREATE TABLE IF NOT EXISTS lease_resources ("
    " lease_id TEXT NOT NULL REFERENCES leases(id) ON DELETE CASCADE,"
    " kind TEXT NOT NULL, key TEXT NOT NULL, PRIMARY KEY (lease_id, kind, key))",
)


class BuildLeases:
    """Leases with an expiry in ``leases.db``, one connection per thread (opened on first use,
    so a command that takes no lease never opens the file)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._connections = ThreadConnections(self._open_or_recreate)

    @property
    def connection(self) -> sqlite3.Connection:
        return self._connections.get()

    def _open_or_recreate(self) -> sqlite3.Connection:
        try:
            return self._open()
        except sqlite3.DatabaseError as err:
            if not _damaged(err):
                raise StoreError(f"cannot open build leases {self.path}: {err}") from err
        self._remove_files()
        try:
            return self._open()
        except sqlite3.Error as again:
            raise StoreError(f"cannot open build leases {self.path}: {again}") from again

    def _remove_files(self) -> None:
        """Damaged by a power failure: its leases died with their processes (and no lease
        could be written or read in it since, so none can be lost now)."""
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)

    def _execute(self, statement: str, parameters: tuple[object, ...]) -> sqlite3.Cursor:
        """One statement; a file found damaged only now (its header was whole) is made again
        and the statement retried, rather than failing every build and prune from now on."""
        try:
            return self.connection.execute(statement, parameters)
        except sqlite3.DatabaseError as err:
            if not _damaged(err):
                raise
        self._connections.close()
        self._remove_files()
        return self.connection.execute(statement, parameters)

    def _open(self) -> sqlite3.Connection:
        connection = connect(self.path)
        try:
            connection.execute("PRAGMA synchronous=OFF")
            connection.execute("PRAGMA foreign_keys=ON")
            for statement in _SCHEMA:
                connection.execute(statement)
        except BaseException:
            connection.close()
            raise
        return connection

    def close(self) -> None:
        self._connections.close()

    def create(self, expires: float) -> str:
        """A new lease expiring at ``expires`` (a time.time() value), named by 128 random bits."""
        lease_id = os.urandom(16).hex()
        self._execute("INSERT INTO leases VALUES (?, ?, ?)", (lease_id, time.time(), expires))
        return lease_id

    def add(self, lease_id: str, kind: str, key: str) -> None:
        """One statement, so one transaction of its own: no ``BEGIN`` is needed."""
        statement = "INSERT OR IGNORE INTO lease_resources VALUES (?, ?, ?)"
        self._execute(statement, (lease_id, kind, key))

    def delete(self, lease_id: str) -> None:
        self._execute("DELETE FROM leases WHERE id = ?", (lease_id,))

    def leased(self, kind: str) -> set[str]:
        """Keys of ``kind`` held by a lease that has not expired (none when no build ever
        leased anything in this store: the file is not made just to be read)."""
        if not self.path.exists():
            return set()
        rows = self._execute(
            "SELECT r.key FROM lease_resources r JOIN leases l ON l.id = r.lease_id "
            "WHERE r.kind = ? AND l.expires > ?",
            (kind, time.time()),
        ).fetchall()
        return {row[0] for row in rows}

    def any_live(self) -> bool:
        """Whether some build holds a lease now (one is running, or died within its lease's
        lifetime)."""
        if not self.path.exists():
            return False
        row = self._execute("SELECT 1 FROM leases WHERE expires > ? LIMIT 1", (time.time(),)).fetchone()
        return row is not None

    def delete_expired(self) -> int:
        if not self.path.exists():
            return 0
        cursor = self._execute("DELETE FROM leases WHERE expires <= ?", (time.time(),))
        return cursor.rowcount


def _damaged(err: sqlite3.DatabaseError) -> bool:
    return getattr(err, "sqlite_errorcode", None) in _DAMAGED
