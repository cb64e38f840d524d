"""Blobs are whole or absent, named by their digest, and checked against a claimed digest."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest

from builder.errors import StoreError
from builder.store.blobs import BlobStore


def sha(payload: bytes) -> str:
    return "sha256:" + hashlib.sha256(payload).hexdigest()


def test_put_bytes_lays_out_as_oci(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path)
    info = blobs.put_bytes(b"hello")
    assert info.digest == sha(b"hello")
    assert info.size == 5
    assert (tmp_path / "blobs" / "sha256" / info.digest[7:]).read_bytes() == b"hello"
    assert blobs.has(info.digest)
    assert blobs.read_bytes(info.digest) == b"hello"
    assert blobs.verify(info.digest)
    assert list(blobs.digests()) == [info.digest]


def test_put_stream_with_expected_digest(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path)
    payload = os.urandom(3 << 20)
    info = blobs.put_stream(io.BytesIO(payload), expected_digest=sha(payload), expected_size=len(payload))
    assert info.size == len(payload)
    assert blobs.path(info.digest).read_bytes() == payload


def test_mismatched_digest_leaves_nothing(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path)
    with pytest.raises(StoreError, match="does not match its digest"):
        blobs.put_stream(io.BytesIO(b"evil"), expected_digest=sha(b"good"))
    with pytest.raises(StoreError, match="does not match"):
        blobs.put_bytes(b"evil", expected_digest=sha(b"good"))
    assert sorted(os.listdir(blobs.directory)) == []


def test_wrong_size_leaves_nothing(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path)
    with pytest.raises(StoreError, match="4 bytes, 9 were expected"):
        blobs.put_stream(io.BytesIO(b"good"), expected_size=9)
    assert os.listdir(blobs.directory) == []


def test_verify_detects_corruption(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path)
    info = blobs.put_bytes(b"payload")
    blobs.path(info.digest).write_bytes(b"tampered")
    assert not blobs.verify(info.digest)
    assert not blobs.verify(sha(b"absent"))


def test_missing_blob_and_bad_digest(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path)
    with pytest.raises(StoreError, match="is not in the store"):
        blobs.open(sha(b"absent"))
    with pytest.raises(StoreError, match="malformed digest"):
        blobs.path("md5:abc")


def test_stale_temp_files_of_dead_writers_are_removed(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path)
    dead = blobs.directory / ".tmp-999999999-aa"
    live = blobs.directory / f".tmp-{os.getpid()}-bb"
    dead.write_bytes(b"x")
    live.write_bytes(b"y")
    assert blobs.remove_stale_temp_files() == [dead]
    assert live.exists()
