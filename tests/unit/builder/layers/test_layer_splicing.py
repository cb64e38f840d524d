"""A layer written from a tree that shares inodes with the previous one reuses that tar's
bytes, and is byte for byte the layer a fresh write gives."""

from __future__ import annotations

import hashlib
import io
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from builder.layers import write_layer
from builder.layers.layerindex import LayerIndex, PreviousLayer, load_index
from builder.layers.splicing import CHECKPOINT_EVERY, TarSink
from builder.layers.writer import LayerDescriptor
from builder.oci.resumable_sha256 import resumable_available

MTIME = 1_700_000_000
SMALL = [f"z/f{index:03d}.txt" for index in range(40)]


def _set_time(path: Path) -> None:
    os.utime(path, (MTIME, MTIME), follow_symlinks=False)


def _old_tree(root: Path) -> Path:
    """Big files first in tar order (so a later change leaves a long shared prefix)."""
    (root / "a").mkdir(parents=True)
    (root / "z").mkdir()
    (root / "a/big1.bin").write_bytes(os.urandom(CHECKPOINT_EVERY + 12345))
    (root / "a/big2.bin").write_bytes(os.urandom(CHECKPOINT_EVERY // 2))
    for index, name in enumerate(SMALL):
        (root / name).write_text(f"small file {index}\n")
    (root / "z/link").symlink_to("f000.txt")
    for path in [*root.rglob("*"), root]:
        _set_time(path)
    return root


def _next_tree(old: Path, root: Path, *, changed: str = "z/f020.txt") -> Path:
    """What a COPY re-run leaves: unchanged files hard-linked from ``old``, one changed, one
    removed, one added; directories made anew with the same times."""
    for directory in ("a", "z"):
        (root / directory).mkdir(parents=True)
    for name in ["a/big1.bin", "a/big2.bin", *SMALL]:
        if name == "z/f030.txt":
            continue  # removed
        if name == changed:
            (root / name).write_text("changed!\n")
            _set_time(root / name)
        else:
            os.link(old / name, root / name)
    (root / "z/link").symlink_to("f000.txt")
    (root / "z/new.txt").write_text("added\n")
    for path in [root / "z/link", root / "z/new.txt", root / "a", root / "z", root]:
        _set_time(path)
    return root


def _write(tree: Path, **options: object) -> tuple[bytes, LayerDescriptor]:
    out = io.BytesIO()
    layer = write_layer(tree, out, compression="none", **options)  # type: ignore[arg-type]
    return out.getvalue(), layer


class _Reads:
    """The previous tar's bytes, recording which ranges the writer asked for."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.ranges: list[tuple[int, int]] = []

    def __call__(self, offset: int, length: int) -> Iterator[bytes]:
        self.ranges.append((offset, length))
        yield self.payload[offset : offset + length]


def _assemble(literal: bytes, previous: bytes, layer: LayerDescriptor) -> bytes:
    assert layer.splice is not None
    return b"".join(
        (literal if is_literal else previous)[offset : offset + length]
        for is_literal, offset, length in layer.splice.parts
    )


def _previous(tmp_path: Path) -> tuple[Path, bytes, LayerIndex]:
    old = _old_tree(tmp_path / "old")
    payload, layer = _write(old, index=True)
    assert layer.index is not None and layer.splice is None
    assert layer.diff_id == "sha256:" + hashlib.sha256(payload).hexdigest() == layer.digest
    return old, payload, layer.index


def test_a_spliced_layer_is_the_fresh_layer_and_writes_only_what_changed(tmp_path: Path) -> None:
    old, old_bytes, index = _previous(tmp_path)
    new = _next_tree(old, tmp_path / "new")
    literal, layer = _write(new, index=True, previous=PreviousLayer(index, _Reads(old_bytes)))
    fresh, fresh_layer = _write(new)
    assert _assemble(literal, old_bytes, layer) == fresh
    assert layer.diff_id == fresh_layer.diff_id == "sha256:" + hashlib.sha256(fresh).hexdigest()
    assert layer.size == len(fresh)
    assert layer.splice is not None
    assert layer.splice.literal_size == len(literal) < 20_000  # headers and the changed files
    assert layer.splice.literal_digest == "sha256:" + hashlib.sha256(literal).hexdigest()
    # Unchanged directory headers are named in the previous tar too: a few long runs.
    assert len(layer.splice.parts) <= 7, layer.splice.parts
    # The new index names the new tar's spans, ready for the next re-run.
    assert layer.index is not None
    start, length, _key = layer.index.entries[b"z/f020.txt"]
    assert fresh[start : start + length].startswith(b"z/f020.txt\0")
    assert b"z/f030.txt" not in layer.index.entries


@pytest.mark.skipif(not resumable_available(), reason="the resumable SHA-256 needs libcrypto")
def test_the_hash_resumes_from_the_previous_tars_last_state_before_the_change(tmp_path: Path) -> None:
    old, old_bytes, index = _previous(tmp_path)
    assert index.checkpoints and index.checkpoints[0][0] >= CHECKPOINT_EVERY
    reads = _Reads(old_bytes)
    _literal, layer = _write(
        _next_tree(old, tmp_path / "new"), index=True, previous=PreviousLayer(index, reads)
    )
    fresh, _fresh_layer = _write(tmp_path / "new")
    assert layer.diff_id == "sha256:" + hashlib.sha256(fresh).hexdigest()
    # Nothing before the first saved state was read again, but for a few headers compared.
    resumed_at = index.checkpoints[0][0]
    assert sum(length for _offset, length in reads.ranges) < len(old_bytes) - resumed_at + 4096
    assert layer.index is not None and layer.index.checkpoints[0] == index.checkpoints[0]


def test_a_file_changed_in_place_on_the_same_inode_is_written_anew(tmp_path: Path) -> None:
    old, old_bytes, index = _previous(tmp_path)
    new = _next_tree(old, tmp_path / "new")
    shared = new / "z/f010.txt"  # the same inode as the previous tree's file
    shared.write_text("edited!!!!!!!\n")  # same size as "small file 10\n"
    os.utime(shared, (MTIME + 1, MTIME + 1))
    literal, layer = _write(new, previous=PreviousLayer(index, _Reads(old_bytes)))
    fresh, _fresh_layer = _write(new)
    assert _assemble(literal, old_bytes, layer) == fresh
    assert b"edited!!!!!!!" in literal


def test_another_source_date_epoch_reuses_nothing(tmp_path: Path) -> None:
    old, old_bytes, index = _previous(tmp_path)
    new = _next_tree(old, tmp_path / "new")
    literal, layer = _write(
        new, source_date_epoch=MTIME - 10, previous=PreviousLayer(index, _Reads(old_bytes))
    )
    assert layer.splice is None
    assert layer.diff_id == "sha256:" + hashlib.sha256(literal).hexdigest()


def test_an_index_round_trips_and_a_damaged_one_is_ignored(tmp_path: Path) -> None:
    _old, _old_bytes, index = _previous(tmp_path)
    path = tmp_path / "layer.index"
    index.save(path)
    loaded = load_index(path)
    assert loaded is not None
    assert loaded.entries == index.entries and loaded.checkpoints == index.checkpoints
    assert (loaded.root, loaded.epoch, loaded.size) == (index.root, index.epoch, index.size)
    path.write_bytes(path.read_bytes()[:100])
    assert load_index(path) is None
    assert load_index(tmp_path / "absent") is None


def test_files_with_extended_attributes_are_left_out_of_the_index(tmp_path: Path) -> None:
    old = _old_tree(tmp_path / "old")
    os.setxattr(old / "z/f001.txt", "user.note", b"kept in the tar")
    _payload, layer = _write(old, index=True)
    assert layer.index is not None
    assert b"z/f001.txt" not in layer.index.entries
    assert b"z/f002.txt" in layer.index.entries


def test_a_given_up_layer_stops_hashing_what_is_queued(tmp_path: Path) -> None:
    """Closing the sink before the end (the layer failed) leaves queued ranges unread."""
    _old, old_bytes, index = _previous(tmp_path)
    release = threading.Event()
    reads: list[tuple[int, int]] = []

    def slow_read(offset: int, length: int) -> Iterator[bytes]:
        if threading.current_thread().name == "layer-hash":  # not the writer's comparisons
            reads.append((offset, length))
            release.wait(5)
        yield old_bytes[offset : offset + length]

    sink = TarSink(io.BytesIO(), previous=PreviousLayer(index, slow_read), checkpoints=False)
    sink.write(b"x" * 512)  # diverges at once
    for offset in (0, 2048, 4096):  # three ranges that do not continue one another
        sink.reference(offset, 512)
    sink.write(b"y" * 512)  # hands the last range over
    threading.Timer(0.2, release.set).start()
    sink.close()
    assert len(reads) <= 1


def _restamped(old: Path, root: Path, mtime: int) -> Path:
    """The next tree with its first directory given another time, as a re-run's copy gives
    the directory it copies into."""
    new = _next_tree(old, root)
    os.utime(new / "a", (mtime, mtime))
    return new


@pytest.mark.skipif(not resumable_available(), reason="the foretelling hash needs libcrypto")
@pytest.mark.parametrize(
    ("foretold", "restamped"),
    [(MTIME + 100, True), (MTIME + 50, True), (MTIME + 100, False)],
    ids=["right", "wrong", "kept-its-time"],
)
def test_a_foretold_head_is_hashed_ahead_and_the_layer_is_still_the_fresh_one(
    tmp_path: Path, foretold: int, restamped: bool
) -> None:
    """The previous tar with ``a/``'s new time is hashed before the layer is written; the
    writer takes those states only where its bytes are the foretold ones. Where ``a/``
    kept its time after all, the previous tar's own states serve."""
    from dataclasses import replace

    from builder.layers.prehash import Prehash, foretold_head

    old, old_bytes, index = _previous(tmp_path)
    new = _restamped(old, tmp_path / "new", MTIME + 100) if restamped else _next_tree(old, tmp_path / "new")
    ahead = PreviousLayer(index, _Reads(old_bytes))
    told = foretold_head(ahead, [b"a/"], foretold)
    assert told is not None
    patch_at, patch = told
    assert 0 < patch_at < patch_at + len(patch) <= 512  # within a/'s header, the first entry
    reads = _Reads(old_bytes)
    previous = replace(
        PreviousLayer(index, reads), patch=patch, patch_at=patch_at, prehash=Prehash(ahead, patch_at, patch)
    )
    literal, layer = _write(new, index=True, previous=previous)
    fresh, fresh_layer = _write(new)
    assert _assemble(literal, old_bytes, layer) == fresh
    assert layer.diff_id == fresh_layer.diff_id
    read_again = sum(length for _offset, length in reads.ranges)
    if foretold == MTIME + 100:
        assert read_again < len(old_bytes) - CHECKPOINT_EVERY  # hashed ahead or before, not again
    else:
        assert read_again >= CHECKPOINT_EVERY  # hashed from the start


@pytest.mark.skipif(not resumable_available(), reason="the foretelling hash needs libcrypto")
def test_a_prehash_stopped_at_an_offset_saves_the_state_of_exactly_that_prefix(tmp_path: Path) -> None:
    from builder.layers.prehash import Prehash
    from builder.oci.resumable_sha256 import ResumableSha256

    _old, old_bytes, index = _previous(tmp_path)
    head = b"x" * 600
    prehash = Prehash(PreviousLayer(index, _Reads(old_bytes)), 0, head)
    stop_at = CHECKPOINT_EVERY + 4321
    states = prehash.stop(stop_at)
    stream = head + old_bytes[len(head) :]
    assert states and all(offset <= stop_at for offset, _state in states)
    for offset, state in states:
        assert ResumableSha256.from_state(state).hexdigest() == hashlib.sha256(stream[:offset]).hexdigest()


def _edited_tree(old: Path, root: Path, edited: str = "z/f005.txt") -> Path:
    """What a COPY re-run leaves after one file was edited in place: everything else
    hard-linked from ``old``, directories made anew with the same times."""
    for directory in ("a", "z"):
        (root / directory).mkdir(parents=True)
    for name in ["a/big1.bin", "a/big2.bin", *SMALL]:
        if name == edited:
            (root / name).write_text("edited, still short\n")
        else:
            os.link(old / name, root / name)
    (root / "z/link").symlink_to("f000.txt")
    for path in [root / edited, root / "z/link", root / "a", root / "z", root]:
        _set_time(path)
    return root


@pytest.mark.skipif(not resumable_available(), reason="the foretelling hash needs libcrypto")
@pytest.mark.parametrize("told_right", [True, False], ids=["right", "wrong"])
def test_a_rewritten_files_entry_is_foretold_and_the_rest_hashed_ahead(
    tmp_path: Path, told_right: bool
) -> None:
    """The previous tar with the edited file's new entry is hashed while the layer is
    written: the writer then hashes nothing again. A wrong guess costs only the guess."""
    from dataclasses import replace

    from builder.layers.prehash import Prehash, foretold_entry
    from builder.layers.writer import regular_file_entry

    old, old_bytes, index = _previous(tmp_path)
    new = _edited_tree(old, tmp_path / "new")
    entry = regular_file_entry(str(new / "z/f005.txt"), b"z/f005.txt", None)
    assert entry is not None and entry.startswith(b"z/f005.txt\0")
    if not told_right:
        entry = entry.replace(b"edited", b"EDITED")
    ahead = PreviousLayer(index, _Reads(old_bytes))
    told = foretold_entry(ahead, b"z/f005.txt", entry)
    assert told is not None and told[0] == index.entries[b"z/f005.txt"][0]
    assert foretold_entry(ahead, b"z/f005.txt", entry + bytes(512)) is None  # another length
    reads = _Reads(old_bytes)
    previous = replace(
        PreviousLayer(index, reads), patch=told[1], patch_at=told[0], prehash=Prehash(ahead, *told)
    )
    literal, layer = _write(new, index=True, previous=previous)
    fresh, fresh_layer = _write(new)
    assert _assemble(literal, old_bytes, layer) == fresh
    assert layer.diff_id == fresh_layer.diff_id
    read_again = sum(length for _offset, length in reads.ranges)
    if told_right:
        assert read_again < 8192  # headers compared; nothing hashed again
    assert layer.index is not None and layer.index.checkpoints


def test_kept_files_are_reused_unlooked_at_and_the_layer_is_the_fresh_one(tmp_path: Path) -> None:
    from dataclasses import replace

    old, old_bytes, index = _previous(tmp_path)
    new = _next_tree(old, tmp_path / "new")
    kept = frozenset(name.encode() for name in ["a/big1.bin", "a/big2.bin", *SMALL[:20]])
    previous = replace(PreviousLayer(index, _Reads(old_bytes)), kept=kept)
    literal, layer = _write(new, index=True, previous=previous)
    fresh, fresh_layer = _write(new)
    assert _assemble(literal, old_bytes, layer) == fresh
    assert layer.diff_id == fresh_layer.diff_id
    assert layer.index is not None and layer.content_size == _write(new, index=True)[1].content_size
    assert {name: span[:2] for name, span in layer.index.entries.items()} == {
        name: span[:2]
        for name, span in _write(new, index=True)[1].index.entries.items()  # type: ignore[union-attr]
    }


def test_a_clean_directory_is_named_as_one_range_and_the_layer_is_the_fresh_one(tmp_path: Path) -> None:
    from dataclasses import replace

    old, old_bytes, index = _previous(tmp_path)
    new = _next_tree(old, tmp_path / "new")
    previous = replace(
        PreviousLayer(index, _Reads(old_bytes)),
        kept=frozenset({b"a/big1.bin", b"a/big2.bin"}),
        clean=frozenset({b"a/"}),
    )
    literal, layer = _write(new, index=True, previous=previous)
    fresh, fresh_layer = _write(new, index=True)
    assert _assemble(literal, old_bytes, layer) == fresh
    assert layer.diff_id == fresh_layer.diff_id
    assert layer.content_size == fresh_layer.content_size
    assert layer.index is not None and fresh_layer.index is not None
    assert {name: span[:2] for name, span in layer.index.entries.items()} == {
        name: span[:2] for name, span in fresh_layer.index.entries.items()
    }


def test_a_clean_directory_ending_in_an_unindexed_entry_is_walked(tmp_path: Path) -> None:
    """A symlink is not indexed: last in ``a/``, the run of indexed entries stops short of
    it, which the entry after the run shows; the directory is walked instead."""
    from dataclasses import replace

    old = _old_tree(tmp_path / "old")
    (old / "a/zz-link").symlink_to("big1.bin")
    _set_time(old / "a/zz-link")
    _set_time(old / "a")
    old_bytes, old_layer = _write(old, index=True)
    assert old_layer.index is not None and b"a/zz-link" not in old_layer.index.entries
    new = _next_tree(old, tmp_path / "new")
    (new / "a/zz-link").symlink_to("big1.bin")
    for path in (new / "a/zz-link", new / "a"):
        _set_time(path)
    previous = replace(
        PreviousLayer(old_layer.index, _Reads(old_bytes)),
        kept=frozenset({b"a/big1.bin", b"a/big2.bin"}),
        clean=frozenset({b"a/"}),
    )
    literal, layer = _write(new, index=True, previous=previous)
    fresh, fresh_layer = _write(new)
    assert _assemble(literal, old_bytes, layer) == fresh
    assert layer.diff_id == fresh_layer.diff_id


def test_a_foretold_range_is_the_previous_tars_ranges_around_the_patch() -> None:
    from builder.layers.splicing import foretold_pieces

    assert foretold_pieces(100, b"abc", 0, 200) == [(0, 100), b"abc", (103, 97)]
    assert foretold_pieces(100, b"abc", 101, 102) == [b"b"]
    assert foretold_pieces(100, b"abc", 50, 101) == [(50, 50), b"a"]
    assert foretold_pieces(100, b"abc", 103, 110) == [(103, 7)]
    assert foretold_pieces(0, b"", 10, 20) == [(10, 10)]  # nothing foretold: the previous tar
