"""The store's metadata in SQLite (WAL): refs, images, snapshots, leases and a key/value table
(and ``layer_variants``, which :mod:`builder.store.variants` reads and writes).

SQLite in WAL mode lets readers run beside one writer, and every change here is one short
transaction started with ``BEGIN IMMEDIATE`` so two processes never interleave a
read-modify-write. ``schema_version`` is kept in the ``settings`` table; a store written by
a newer kiln is refused rather than misread.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from builder.errors import StoreError
from builder.lazyclasses import dataclass
from builder.store.build_leases import BuildLeases
from builder.store.sqlite_threads import ThreadConnections, connect

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS images (
    digest TEXT PRIMARY KEY,
    media_type TEXT NOT NULL,
    config_digest TEXT NOT NULL,
    size INTEGER NOT NULL,
    created REAL NOT NULL,
    last_used REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS refs (
    name TEXT PRIMARY KEY,
    digest TEXT NOT NULL,
    platform TEXT NOT NULL DEFAULT '',
    index_digest TEXT NOT NULL DEFAULT '',
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS snapshots (
    chain_id TEXT PRIMARY KEY,
    parent TEXT NOT NULL DEFAULT '',
    diff_id TEXT NOT NULL,
    size INTEGER NOT NULL,
    refcount INTEGER NOT NULL DEFAULT 0,
    last_used REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS leases (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    expires REAL
);
CREATE TABLE IF NOT EXISTS lease_resources (
    lease_id TEXT NOT NULL REFERENCES leases(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    PRIMARY KEY (lease_id, kind, key)
);
CREATE TABLE IF NOT EXISTS kv (
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (namespace, key)
);
CREATE TABLE IF NOT EXISTS layer_variants (
    diff_id TEXT NOT NULL,
    compression TEXT NOT NULL,
    digest TEXT NOT NULL,
    size INTEGER NOT NULL,
    media_type TEXT NOT NULL,
    PRIMARY KEY (diff_id, compression)
);
"""

#: Resource kinds a lease can hold.
LEASE_BLOB = "blob"
LEASE_SNAPSHOT = "snapshot"
LEASE_IMAGE = "image"


@dataclass(frozen=True)
class RefRecord:
    """A name (full normalised reference) pointing at an image manifest."""

    name: str
    digest: str
    platform: str
    index_digest: str
    updated: float


@dataclass(frozen=True)
class ImageRecord:
    """An image manifest kept in the store, referenced by a name or not (dangling)."""

    digest: str
    media_type: str
    config_digest: str
    size: int
    created: float
    last_used: float


@dataclass(frozen=True)
class SnapshotRecord:
    """An unpacked layer: its chain id, the parent's chain id (or ``""``), its diff id."""

    chain_id: str
    parent: str
    diff_id: str
    size: int
    refcount: int
    last_used: float


class MetaStore:
    """SQLite at ``<root>/meta.db``, one connection per thread.

    A build runs its stages on threads; each gets its own connection (SQLite's WAL and busy
    timeout order them, as they order separate processes), so no transaction of one thread
    ever nests inside another's.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._connections = ThreadConnections(self._open_connection)
        #: Builds' leases, beside this database and never fsynced (:mod:`.build_leases`);
        #: :meth:`leased` and :meth:`delete_expired_leases` cover both.
        self.build_leases = BuildLeases(path.with_name("leases.db"))
        try:
            with self.transaction():
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self.connection.execute(statement)
                self._check_schema_version()
        except sqlite3.Error as err:
            raise StoreError(f"cannot open store metadata {path}: {err}") from err

    @property
    def connection(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use."""
        return self._connections.get()

    def _open_connection(self) -> sqlite3.Connection:
        connection = connect(self.path)
        connection.execute("PRAGMA foreign_keys=ON")
        # NORMAL under WAL: a commit is not fsynced, so power loss may drop the latest
        # transactions, but never corrupts the database; what the records point at
        # (blobs, snapshots) is made durable before it is recorded. FULL cost ~2 ms a
        # commit, several commits a build step.
        connection.execute("PRAGMA synchronous=NORMAL")
        return connection

    def close(self) -> None:
        self._connections.close()
        self._local = threading.local()
        self.build_leases.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken before any read so read-modify-write is atomic.

        Re-entrant per thread: a transaction opened inside another joins it, so a caller can
        group several writes (a build step's lease entries and snapshot record) in one commit.
        """
        connection = self.connection
        depth: int = getattr(self._local, "depth", 0)
        if depth:
            self._local.depth = depth + 1
            try:
                yield connection
            finally:
                self._local.depth = depth
            return
        connection.execute("BEGIN IMMEDIATE")
        self._local.depth = 1
        try:
            yield connection
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        finally:
            self._local.depth = 0
        connection.execute("COMMIT")

    # images and refs ---------------------------------------------------------------------

    def add_image(self, digest: str, media_type: str, config_digest: str, size: int) -> None:
        now = time.time()
        with self.transaction() as db:
            db.execute(
                "INSERT INTO images VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(digest) DO UPDATE SET last_used = excluded.last_used",
                (digest, media_type, config_digest, size, now, now),
            )

    def image(self, digest: str) -> ImageRecord | None:
        row = self.connection.execute("SELECT * FROM images WHERE digest = ?", (digest,)).fetchone()
        return ImageRecord(*row) if row else None

    def images(self) -> list[ImageRecord]:
        rows = self.connection.execute("SELECT * FROM images ORDER BY created DESC").fetchall()
        return [ImageRecord(*row) for row in rows]

    def delete_image(self, digest: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM images WHERE digest = ?", (digest,))

    def set_ref(self, name: str, digest: str, *, platform: str = "", index_digest: str = "") -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO refs VALUES (?, ?, ?, ?, ?)",
                (name, digest, platform, index_digest, time.time()),
            )

    def ref(self, name: str) -> RefRecord | None:
        row = self.connection.execute("SELECT * FROM refs WHERE name = ?", (name,)).fetchone()
        return RefRecord(*row) if row else None

    def refs(self) -> list[RefRecord]:
        rows = self.connection.execute("SELECT * FROM refs ORDER BY name").fetchall()
        return [RefRecord(*row) for row in rows]

    def refs_to(self, digest: str) -> list[RefRecord]:
        rows = self.connection.execute(
            "SELECT * FROM refs WHERE digest = ? ORDER BY name", (digest,)
        ).fetchall()
        return [RefRecord(*row) for row in rows]

    def delete_ref(self, name: str) -> bool:
        with self.transaction() as db:
            cursor = db.execute("DELETE FROM refs WHERE name = ?", (name,))
            return cursor.rowcount > 0

    # snapshots ---------------------------------------------------------------------------

    def add_snapshot(self, chain_id: str, parent: str, diff_id: str, size: int) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO snapshots VALUES (?, ?, ?, ?, 0, ?) "
                "ON CONFLICT(chain_id) DO UPDATE SET last_used = excluded.last_used",
                (chain_id, parent, diff_id, size, time.time()),
            )

    def snapshot(self, chain_id: str) -> SnapshotRecord | None:
        row = self.connection.execute("SELECT * FROM snapshots WHERE chain_id = ?", (chain_id,)).fetchone()
        return SnapshotRecord(*row) if row else None

    def snapshots(self) -> list[SnapshotRecord]:
        rows = self.connection.execute("SELECT * FROM snapshots ORDER BY chain_id").fetchall()
        return [SnapshotRecord(*row) for row in rows]

    def touch_snapshot(self, chain_id: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE snapshots SET last_used = ? WHERE chain_id = ?", (time.time(), chain_id))

    def delete_snapshot(self, chain_id: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM snapshots WHERE chain_id = ?", (chain_id,))

    # leases ------------------------------------------------------------------------------

    def create_lease(self, expires: float | None = None) -> str:
        """A new lease, named by 128 random bits in hex. ``os.urandom`` rather than
        ``uuid.uuid4()``: the same kind of name, without ``uuid``'s import (it loads
        ``platform``), which every build paid for at start-up."""
        lease_id = os.urandom(16).hex()
        with self.transaction() as db:
            db.execute("INSERT INTO leases VALUES (?, ?, ?)", (lease_id, time.time(), expires))
        return lease_id

    def add_lease_resource(self, lease_id: str, kind: str, key: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR IGNORE INTO lease_resources VALUES (?, ?, ?)", (lease_id, kind, key))

    def delete_lease(self, lease_id: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM leases WHERE id = ?", (lease_id,))

    def leased(self, kind: str) -> set[str]:
        """Keys of ``kind`` held by a lease that has not expired, here or a build's."""
        rows = self.connection.execute(
            "SELECT r.key FROM lease_resources r JOIN leases l ON l.id = r.lease_id "
            "WHERE r.kind = ? AND (l.expires IS NULL OR l.expires > ?)",
            (kind, time.time()),
        ).fetchall()
        return {row[0] for row in rows} | self.build_leases.leased(kind)

    def delete_expired_leases(self) -> int:
        with self.transaction() as db:
            cursor = db.execute(
                "DELETE FROM leases WHERE expires IS NOT NULL AND expires <= ?", (time.time(),)
            )
            removed: int = cursor.rowcount
        return removed + self.build_leases.delete_expired()

    # key/value ---------------------------------------------------------------------------

    def put_value(self, namespace: str, key: str, value: object) -> None:
        """Store a JSON-encodable value (the cache keeps its records here)."""
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO kv VALUES (?, ?, ?)",
                (namespace, key, json.dumps(value, sort_keys=True)),
            )

    def get_value(self, namespace: str, key: str) -> object | None:
        row = self.connection.execute(
            "SELECT value FROM kv WHERE namespace = ? AND key = ?", (namespace, key)
        ).fetchone()
        return json.loads(row[0]) if row else None

    def delete_value(self, namespace: str, key: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM kv WHERE namespace = ? AND key = ?", (namespace, key))

    def keys(self, namespace: str) -> list[str]:
        rows = self.connection.execute(
            "SELECT key FROM kv WHERE namespace = ? ORDER BY key", (namespace,)
        ).fetchall()
        return [row[0] for row in rows]

    def _check_schema_version(self) -> None:
        row = self.connection.execute("SELECT value FROM settings WHERE key = 'schema_version'").fetchone()
        if row is None:
            self.connection.execute(
                "INSERT INTO settings VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
        elif int(row[0]) > SCHEMA_VERSION:
            raise StoreError(
                f"store metadata {self.path} has schema version {row[0]}; "
                f"this kiln understands up to {SCHEMA_VERSION}"
            )

    @property
    def schema_version(self) -> int:
        row = self.connection.execute("SELECT value FROM settings WHERE key = 'schema_version'").fetchone()
        return int(row[0])
