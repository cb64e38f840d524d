"""SQLite connections for a store's databases: one per thread, all in WAL mode.

A build runs its stages on threads, and a ``sqlite3`` connection must not be shared by
transactions of several threads at once; SQLite's WAL and busy timeout order the threads'
connections as they order separate processes. Both the metadata and the build leases
open their connections this way.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

#: How long opening a database waits for another process's switch to WAL (:func:`use_wal`).
WAL_SWITCH_TIMEOUT = 60.0


def connect(path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are begun explicitly), usable from the
    thread that asks for it, in WAL mode."""
    connection = sqlite3.connect(path, timeout=60.0, isolation_level=None, check_same_thread=False)
    try:
        use_wal(connection)
    except BaseException:
        connection.close()
        raise
    return connection


def use_wal(connection: sqlite3.Connection) -> None:
    """Put the database in WAL mode, waiting for other processes meanwhile.

    Changing the journal mode needs an exclusive lock and SQLite does not run the busy
    handler for it, so two kiln processes opening a new store at once could see "database is
    locked". Once a database is in WAL mode (the mode is stored in the file) nothing is
    changed; until then the switch is retried.
    """
    deadline = time.monotonic() + WAL_SWITCH_TIMEOUT
    while True:
        try:
            mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() != "wal":
                connection.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


class ThreadConnections:
    """Each thread's connection, made by ``open_connection`` on the thread's first use (so
    a command that never touches the database never opens it); :meth:`close` closes all."""

    def __init__(self, open_connection: Callable[[], sqlite3.Connection]) -> None:
        self._open = open_connection
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def get(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._open()
            self._local.connection = connection
            with self._lock:
                self._opened.append(connection)
        return connection

    def close(self) -> None:
        with self._lock:
            for connection in self._opened:
                connection.close()
            self._opened.clear()
        self._local = threading.local()
