"""The layer index's packed entries: lookups, a clean directory's run, and a run carried into
the next index at its new place."""

from __future__ import annotations

import marshal
from pathlib import Path

from builder.layers.layerindex import IndexBuilder, IndexEntries, LayerIndex, load_index


def key(size: int) -> tuple[int, int, int, int, int, int, int]:
    return (1, 1000 + size, size, 5_000_000_000, 0o100644, 0, 0)


def entries() -> IndexEntries:
    """``a/`` with two files, ``a/b/`` with one, then ``c``: each entry right after the last."""
    builder = IndexBuilder()
    position = 0
    for name, size in ((b"a/", 0), (b"a/one", 10), (b"a/b/", 0), (b"a/b/two", 700), (b"c", 3)):
        length = 512 + (size + 511) // 512 * 512
        builder.add(name, position, length, key(size))
        position += length
    return builder.entries()


def test_entries_are_looked_up_by_name_in_tar_order() -> None:
    index = entries()
    assert list(index) == [b"a/", b"a/one", b"a/b/", b"a/b/two", b"c"]
    assert index[b"a/one"] == (512, 1024, key(10))
    assert b"a/b/" in index and b"a/b" not in index
    assert index.get(b"missing") is None
    assert list(index.directories) == [0, 2]


def test_a_directorys_run_spans_its_subtree_and_counts_its_files_contents() -> None:
    index = entries()
    # a/ 0-512, a/one 512-1536, a/b/ 1536-2048, a/b/two 2048-3584, c 3584-4608
    assert index.run(b"a/", tar_end=4608) == (0, 3584, 0, 4, 710)
    assert index.run(b"a/b/", tar_end=4608) == (1536, 3584, 2, 4, 700)
    assert index.run(b"c/", tar_end=4608) is None


def test_a_run_with_a_gap_is_not_one_range() -> None:
    builder = IndexBuilder()
    builder.add(b"d/", 0, 512, key(0))
    builder.add(b"d/x", 2048, 1024, key(5))  # something unindexed lies between
    assert builder.entries().run(b"d/", tar_end=4096) is None


def test_a_run_carried_into_a_new_index_moves_by_the_shift() -> None:
    old = entries()
    new = IndexBuilder()
    new.add(b"0/", 0, 512, key(0))
    new.add_run(old, 2, 4, shift=512 - 1536)
    carried = new.entries()
    assert list(carried) == [b"0/", b"a/b/", b"a/b/two"]
    assert carried[b"a/b/"][0] == 512 and carried[b"a/b/two"] == (1024, 1536, key(700))
    assert list(carried.directories) == [0, 1]
    assert old[b"a/b/"][0] == 1536  # the previous index is left as it was


def test_an_index_of_the_earlier_format_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "layer.index"
    LayerIndex((1, 2), None, 4096, entries(), []).save(path)
    assert load_index(path) is not None
    path.write_bytes(marshal.dumps((3, (1, 2), None, 4096, [], [])))
    assert load_index(path) is None
