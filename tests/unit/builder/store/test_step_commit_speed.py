"""What keeps a build step's store bookkeeping cheap: NORMAL sync under WAL, several writes
in one transaction, and a snapshot adopted with the size the layer writer counted."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from builder.layers import write_layer
from builder.store import Store
from builder.store.meta import MetaStore


def test_connections_use_wal_with_normal_sync(tmp_path: Path) -> None:
    meta = MetaStore(tmp_path / "meta.db")
    assert meta.connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert meta.connection.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL


def test_nested_transactions_commit_once_at_the_outermost(tmp_path: Path) -> None:
    meta = MetaStore(tmp_path / "meta.db")
    other = MetaStore(tmp_path / "meta.db")  # another process's view
    before = meta.connection.total_changes
    with meta.transaction():
        meta.put_value("ns", "a", 1)
        meta.put_value("ns", "b", 2)
        assert meta.connection.in_transaction
        assert other.keys("ns") == []  # nothing committed yet
    assert not meta.connection.in_transaction
    assert other.keys("ns") == ["a", "b"]
    assert meta.connection.total_changes - before == 2


def test_an_error_in_the_outer_transaction_rolls_back_the_inner_writes(tmp_path: Path) -> None:
    meta = MetaStore(tmp_path / "meta.db")
    with pytest.raises(RuntimeError, match="boom"), meta.transaction():
        meta.put_value("ns", "a", 1)
        raise RuntimeError("boom")
    assert meta.keys("ns") == []
    with meta.transaction():  # the connection is usable again
        meta.put_value("ns", "b", 2)
    assert meta.keys("ns") == ["b"]


def make_upper(root: Path) -> Path:
    (root / "dir" / "sub").mkdir(parents=True)
    (root / "dir" / "file").write_bytes(b"x" * 1000)
    (root / "top").write_bytes(b"hello")
    os.symlink("dir/file", root / "link")
    os.mknod(root / "gone", 0o600 | 0o020000, 0)  # an overlay whiteout (0/0 char device)
    return root


def test_writer_counts_the_size_a_snapshot_walk_measures(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("whiteout devices need root")
    upper = make_upper(tmp_path / "upper")
    described = write_layer(upper, io.BytesIO(), compression="none")
    assert described.content_size == 1000 + 5 + len("dir/file")


def test_adopt_records_the_given_size_without_walking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store.open(tmp_path / "store")
    upper = tmp_path / "store" / "upper"
    upper.mkdir()
    (upper / "file").write_bytes(b"abc")

    def no_walk(root: Path) -> int:
        raise AssertionError("adopt walked the tree although the size was given")

    monkeypatch.setattr("builder.store.snapshots._tree_size", no_walk)
    chain_id = "sha256:" + "ab" * 32
    path = store.snapshots.adopt(upper, chain_id, "", chain_id, size=3)
    record = store.meta.snapshot(chain_id)
    assert record is not None
    assert (path / "file").read_bytes() == b"abc"
    assert (record.size, path.name) == (3, "ab" * 32)
    store.close()


def test_adopt_without_a_size_measures_the_tree(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "store")
    upper = tmp_path / "store" / "upper"
    upper.mkdir()
    (upper / "file").write_bytes(b"abcd")
    chain_id = "sha256:" + "cd" * 32
    store.snapshots.adopt(upper, chain_id, "", chain_id)
    record = store.meta.snapshot(chain_id)
    assert record is not None
    assert record.size == 4
    store.close()
