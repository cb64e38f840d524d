"""Build leases: kept in ``leases.db``, never fsynced, seen by prune like any other lease;
and storing an image that is already stored writes nothing."""

from __future__ import annotations

import os
import time
from pathlib import Path

from builder.store import Store, StoredLayer, prune
from builder.store.build_leases import BuildLeases
from builder.store.meta import LEASE_BLOB, LEASE_SNAPSHOT


def _image(store: Store, name: str | None = "app:1") -> str:
    info = store.blobs.put_bytes(b"layer")
    layer = StoredLayer(info.digest, info.digest, info.size, "application/vnd.oci.image.layer.v1.tar")
    config = {"architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z", "config": {}}
    return store.put_image(config, [layer], name)


def test_a_build_lease_lives_in_leases_db_and_is_gone_after_the_block(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        with store.lease() as lease:
            lease.add_blob("sha256:" + "a" * 64)
            lease.add_snapshot("sha256:" + "b" * 64)
            assert store.meta.leased(LEASE_BLOB) == {"sha256:" + "a" * 64}
            assert store.meta.leased(LEASE_SNAPSHOT) == {"sha256:" + "b" * 64}
            rows = store.meta.connection.execute("SELECT COUNT(*) FROM lease_resources").fetchone()
            assert rows == (0,)  # nothing of it in meta.db
        assert store.meta.leased(LEASE_BLOB) == set()
    assert (tmp_path / "leases.db").is_file()


def test_prune_keeps_what_a_running_build_leased(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store, store.lease() as lease:
        leased = store.blobs.put_bytes(b"leased").digest
        stray = store.blobs.put_bytes(b"stray").digest
        lease.add_blob(leased)
        report = prune(store)
        assert report.blobs == [stray]
        assert store.blobs.has(leased)


def test_expired_build_leases_protect_nothing_and_are_deleted(tmp_path: Path) -> None:
    table = BuildLeases(tmp_path / "leases.db")
    live = table.create(time.time() + 60)
    dead = table.create(time.time() - 1)
    table.add(live, LEASE_BLOB, "kept")
    table.add(dead, LEASE_BLOB, "expired")
    assert table.leased(LEASE_BLOB) == {"kept"}
    assert table.delete_expired() == 1
    assert table.leased(LEASE_BLOB) == {"kept"}
    table.close()


def test_reading_leases_of_a_store_without_any_makes_no_file(tmp_path: Path) -> None:
    table = BuildLeases(tmp_path / "leases.db")
    assert table.leased(LEASE_BLOB) == set()
    assert table.delete_expired() == 0
    assert not (tmp_path / "leases.db").exists()


def test_a_damaged_leases_db_is_made_again(tmp_path: Path) -> None:
    (tmp_path / "leases.db").write_bytes(b"not a database, as a power failure may leave it" * 100)
    table = BuildLeases(tmp_path / "leases.db")
    lease_id = table.create(time.time() + 60)
    table.add(lease_id, LEASE_BLOB, "kept")
    assert table.leased(LEASE_BLOB) == {"kept"}
    table.close()


def test_a_leases_db_whose_damage_shows_only_in_its_pages_is_made_again(tmp_path: Path) -> None:
    """A whole header over damaged pages opens fine; the first statement finds it."""
    path = tmp_path / "leases.db"
    table = BuildLeases(path)
    for index in range(200):  # enough rows for several pages
        table.add(table.create(time.time() + 60), LEASE_BLOB, f"blob-{index:04d}" * 8)
    table.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    data = bytearray(path.read_bytes())
    page = 4096
    data[2 * page : 4 * page] = b"\xff" * (2 * page)  # what a power cut may leave
    path.write_bytes(bytes(data))
    again = BuildLeases(path)
    lease_id = again.create(time.time() + 60)
    again.add(lease_id, LEASE_BLOB, "kept")
    assert again.leased(LEASE_BLOB) == {"kept"}
    again.close()


def test_storing_a_stored_image_again_rewrites_neither_the_record_nor_index_json(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        digest = _image(store)
        index_before = os.stat(tmp_path / "index.json")
        record_before = store.meta.image(digest)
        ref_before = store.meta.ref("docker.io/library/app:1")

        assert _image(store) == digest

        index_after = os.stat(tmp_path / "index.json")
        assert (index_after.st_ino, index_after.st_mtime_ns) == (
            index_before.st_ino,
            index_before.st_mtime_ns,
        )
        assert store.meta.image(digest) == record_before
        assert store.meta.ref("docker.io/library/app:1") == ref_before


def test_a_name_moved_to_another_image_is_rewritten(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        first = _image(store)
        info = store.blobs.put_bytes(b"other layer")
        layer = StoredLayer(info.digest, info.digest, info.size, "application/vnd.oci.image.layer.v1.tar")
        config = {"architecture": "amd64", "os": "linux", "created": "2024-01-02T00:00:00Z", "config": {}}
        second = store.put_image(config, [layer], "app:1")
        assert second != first
        assert store.resolve("app:1") == second
        index = (tmp_path / "index.json").read_text(encoding="utf-8")
        assert second in index and first not in index
