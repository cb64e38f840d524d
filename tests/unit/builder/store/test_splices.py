"""Blobs kept as splices of other blobs read as the whole, and keep their parts alive."""

from __future__ import annotations

import hashlib
import io
import threading
from pathlib import Path

import pytest

from builder.errors import StoreError
from builder.store import Store, prune, splices
from builder.store.blobs import BlobStore
from builder.store.splices import Part, PartTable, merge_parts


def sha(payload: bytes) -> str:
    return "sha256:" + hashlib.sha256(payload).hexdigest()


@pytest.fixture
def blobs(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path)


def _splice(blobs: BlobStore, pieces: list[tuple[str, int, int]]) -> tuple[str, bytes]:
    whole = b"".join(blobs.read_bytes(source)[offset : offset + length] for source, offset, length in pieces)
    digest = sha(whole)
    blobs.put_splice(digest, [Part(*piece) for piece in pieces])
    return digest, whole


def test_a_splice_reads_as_the_bytes_of_its_parts(blobs: BlobStore) -> None:
    old = blobs.put_bytes(b"0123456789" * 1000).digest
    new = blobs.put_bytes(b"NEW").digest
    digest, whole = _splice(blobs, [(old, 0, 5000), (new, 0, 3), (old, 5000, 5000)])
    assert blobs.has(digest)
    assert blobs.read_bytes(digest) == whole
    assert blobs.size(digest) == len(whole) == 10_003
    assert blobs.disk_size(digest) < 1000  # the list of parts, not their bytes
    assert blobs.verify(digest)
    assert sorted(blobs.digests()) == sorted([old, new, digest])
    assert not blobs.path(digest).exists()


def test_a_splice_is_seekable_and_reads_ranges_across_parts(blobs: BlobStore) -> None:
    first = blobs.put_bytes(b"a" * 100).digest
    second = blobs.put_bytes(b"b" * 100).digest
    digest, whole = _splice(blobs, [(first, 10, 50), (second, 0, 100), (first, 0, 10)])
    with blobs.open(digest) as stream:
        stream.seek(45)
        assert stream.read(10) == whole[45:55]
        assert stream.tell() == 55
        stream.seek(-5, io.SEEK_END)
        assert stream.read() == whole[-5:]
    ranges = blobs.ranges(digest)
    try:
        assert b"".join(bytes(chunk) for chunk in ranges.chunks(40, 120)) == whole[40:160]
        with pytest.raises(StoreError, match="past the end"):
            list(ranges.chunks(150, 20))
    finally:
        ranges.close()


def test_a_splice_of_a_splice_names_only_plain_blobs(blobs: BlobStore) -> None:
    base = blobs.put_bytes(bytes(range(256)) * 4).digest
    edit = blobs.put_bytes(b"XY").digest
    middle, middle_bytes = _splice(blobs, [(base, 0, 500), (edit, 0, 2), (base, 502, 522)])
    top_bytes = middle_bytes[:100] + b"XY" + middle_bytes[102:]
    top = sha(top_bytes)
    blobs.put_splice(top, [Part(middle, 0, 100), Part(edit, 0, 2), Part(middle, 102, 922)])
    assert blobs.read_bytes(top) == top_bytes
    assert {part.source for part in blobs.parts(top)} == {base, edit}


def test_a_missing_part_is_a_store_error_and_delete_removes_the_splice(blobs: BlobStore) -> None:
    old = blobs.put_bytes(b"old bytes").digest
    digest, _whole = _splice(blobs, [(old, 0, 3), (old, 4, 5)])
    blobs.delete(old)
    with pytest.raises(StoreError, match="missing"), blobs.open(digest) as stream:
        stream.read()
    assert not blobs.verify(digest)
    blobs.delete(digest)
    assert not blobs.has(digest)
    assert list(blobs.digests()) == []


def test_a_damaged_splice_is_a_store_error(blobs: BlobStore) -> None:
    old = blobs.put_bytes(b"old bytes").digest
    digest, _whole = _splice(blobs, [(old, 0, 3)])
    blobs.splice_path(digest).write_text('{"format": "kiln.splice.v1", "size": 9, "parts": [')
    with pytest.raises(StoreError, match="damaged"):
        blobs.size(digest)


def test_prune_keeps_the_parts_of_a_kept_splice(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        old = store.blobs.put_bytes(b"the previous layer").digest
        new = store.blobs.put_bytes(b"!").digest
        digest, whole = _splice(store.blobs, [(old, 0, 18), (new, 0, 1)])
        with store.lease() as lease:
            lease.add_blob(digest)
            report = prune(store)
            assert report.blobs == []
            assert store.blobs.read_bytes(digest) == whole
        assert sorted(prune(store).blobs) == sorted([old, new, digest])
        assert list(store.blobs.digests()) == []


def test_parts_merge_and_slice() -> None:
    parts = merge_parts([Part("a", 0, 5), Part("a", 5, 5), Part("b", 0, 0), Part("b", 1, 2)])
    assert parts == [Part("a", 0, 10), Part("b", 1, 2)]
    assert PartTable(parts).slice(8, 3) == [Part("a", 8, 2), Part("b", 1, 1)]
    with pytest.raises(StoreError):
        PartTable(parts).slice(10, 5)


def test_a_splice_of_too_many_parts_is_written_out_whole(
    blobs: BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(splices, "MAX_PARTS", 3)
    first = blobs.put_bytes(b"a" * 10).digest
    second = blobs.put_bytes(b"b" * 10).digest
    digest, whole = _splice(blobs, [(first, 0, 2), (second, 0, 2), (first, 4, 2), (second, 4, 2)])
    assert blobs.path(digest).read_bytes() == whole
    assert not blobs.splice_path(digest).exists()
    # What it was asked to be is checked on the way: wrong bytes are refused.
    with pytest.raises(StoreError, match="does not match"):
        blobs.put_splice(
            sha(b"other"), [Part(first, 0, 2), Part(second, 0, 2), Part(first, 4, 2), Part(second, 4, 2)]
        )


def test_write_out_puts_the_whole_blob_beside_its_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from builder.store import write_out as writer
    from builder.store.write_out import write_out

    monkeypatch.setattr(writer, "QUIET", 0.0)
    with Store.open(tmp_path) as store:
        old = store.blobs.put_bytes(b"the previous layer").digest
        new = store.blobs.put_bytes(b"!").digest
        digest, whole = _splice(store.blobs, [(old, 0, 18), (new, 0, 1)])
        assert store.blobs.spliced == {digest}
        assert write_out(store, [digest, sha(b"gone meanwhile")]) == 1
        assert store.blobs.path(digest).read_bytes() == whole
        assert store.blobs.splice_path(digest).is_file()  # a reader may be about to use it
        assert write_out(store, [digest]) == 0
        # Whole, it needs its parts no more.
        with store.lease() as lease:
            lease.add_blob(digest)
            assert sorted(prune(store).blobs) == sorted([old, new])
        assert store.blobs.read_bytes(digest) == whole


def test_write_out_waits_while_a_build_runs_and_holds_no_lock_as_it_copies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A build's lease makes the writer wait (up to its patience); and while it copies, the
    gc lock is free for a re-run to take a snapshot."""
    import time

    from builder.store import write_out as writer
    from builder.store.locks import file_lock_now

    monkeypatch.setattr(writer, "_POLL", 0.01)
    monkeypatch.setattr(writer, "QUIET", 0.05)
    with Store.open(tmp_path) as store:
        digest, whole = _written_splice(store)
        lock_free_while_copying: list[bool] = []
        original_write = store.blobs._write

        def write(*args: object, **kwargs: object) -> object:
            with file_lock_now(store.root / "gc.lock") as held:
                lock_free_while_copying.append(held)
            return original_write(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(store.blobs, "_write", write)
        done = threading.Event()
        with store.lease():
            started = time.monotonic()
            thread = threading.Thread(target=_write_out_then_set, args=(store, digest, done))
            thread.start()
            assert not done.wait(0.2)  # waiting for the build
        thread.join(10)
        assert done.is_set() and time.monotonic() - started >= 0.2
        assert store.blobs.path(digest).read_bytes() == whole
        assert lock_free_while_copying == [True]
        assert not store.meta.build_leases.any_live()


def test_write_out_begins_only_once_no_build_has_run_for_a_moment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A build that starts just after the writer (the next of an edit-and-build loop) finds
    nothing written yet; the writer begins a quiet moment after that build ends."""
    import time

    from builder.store import write_out as writer

    monkeypatch.setattr(writer, "_POLL", 0.01)
    monkeypatch.setattr(writer, "QUIET", 0.3)
    with Store.open(tmp_path) as store:
        digest, whole = _written_splice(store)
        done = threading.Event()
        thread = threading.Thread(target=_write_out_then_set, args=(store, digest, done))
        thread.start()
        time.sleep(0.1)
        with store.lease():  # the next build
            assert not done.wait(0.4)
            ended = time.monotonic()
        assert not store.blobs.path(digest).exists()
        thread.join(10)
        # (The writer may have seen the lease last a poll before ``ended``.)
        assert done.is_set() and time.monotonic() - ended >= 0.3 - 0.01
        assert store.blobs.path(digest).read_bytes() == whole


def _written_splice(store: Store) -> tuple[str, bytes]:
    """A splice of two small blobs stored in ``store``: its digest, and its bytes."""
    old = store.blobs.put_bytes(b"the previous layer").digest
    new = store.blobs.put_bytes(b"!").digest
    return _splice(store.blobs, [(old, 0, 18), (new, 0, 1)])


def _write_out_then_set(store: Store, digest: str, done: threading.Event) -> None:
    from builder.store.write_out import write_out

    write_out(store, [digest])
    done.set()
