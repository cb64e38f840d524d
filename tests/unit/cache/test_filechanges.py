"""Comparing a selection with the previous record's a directory at a time."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from builder.context import BuildContext
from builder.store.store import Store
from cache import records
from cache.contenthash import ContextHasher, SourceDigest
from cache.filechanges import FileChanges
from cache.prune import prune_records
from tests.fixtures.cache_records import put_layer, record_for

KEY = "sha256:" + "1" * 64


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "ctx"
    for directory in range(3):
        (root / f"d{directory}").mkdir(parents=True)
        for index in range(5):
            (root / f"d{directory}/f{index}.txt").write_text(f"{directory}.{index}\n")
    (root / "top.txt").write_text("top\n")
    return root


def _digest(hasher: ContextHasher, root: Path) -> SourceDigest:
    return hasher.digest_sources(BuildContext.open(root), ["."])


def _recorded(
    store: Store, tmp_path: Path, selection: SourceDigest, *, grouped: bool = True
) -> records.StoredInput:
    """``selection`` saved as a record's input, and read back as the next build reads it."""
    layer = put_layer(store, tmp_path, {"a": "1"})
    record = record_for(layer, KEY, preimage={"inputs": {"context": selection.digest}})
    if grouped:
        records.save(store.meta, record)
        records.save_input_groups(store.meta, record, {"context": selection})
    else:  # as builds stored them before directories were
        records.save(store.meta, record, input_files={"context": dict(selection.files)})
    return records.stored_inputs(store.meta, record.preimage)["context"]


@pytest.mark.parametrize("grouped", [True, False], ids=["by-directory", "stored-whole"])
def test_only_the_directories_that_differ_are_compared_and_the_differences_are_the_same(
    store: Store, tmp_path: Path, tree: Path, grouped: bool
) -> None:
    with ContextHasher(tmp_path / "contenthash.db") as hasher:
        before = _digest(hasher, tree)
        stored = _recorded(store, tmp_path, before, grouped=grouped)
        (tree / "d1/f2.txt").write_text("edited\n")
        (tree / "d2/f9.txt").write_text("added\n")
        (tree / "d0/f4.txt").unlink()
        after = _digest(hasher, tree)
    changes = FileChanges(after, stored)
    expected = [("d0/f4.txt", "removed"), ("d1/f2.txt", "changed"), ("d2/f9.txt", "added")]
    assert changes.differences == expected
    assert changes.removed and changes.any_unchanged
    assert changes.touched() == {path for path, _how in expected}
    assert sorted(changes.unchanged_names()) == sorted(
        name for name in after.files if name not in changes.touched()
    )
    if grouped:
        assert sorted(changes.changed_groups) == ["d0", "d1", "d2"]
        assert changes.same(".") and not changes.same("d1")
        assert changes.old_files("d1")["d1/f2.txt"] != after.files["d1/f2.txt"]


def test_a_directory_is_clean_only_while_nothing_in_it_is_touched(
    store: Store, tmp_path: Path, tree: Path
) -> None:
    """Same entries and same stat fingerprint: clean. A touched file (same content, new
    time) keeps the directory's entries the same but not clean."""
    with ContextHasher(tmp_path / "contenthash.db") as hasher:
        before = _digest(hasher, tree)
        stored = _recorded(store, tmp_path, before)
        os.utime(tree / "d1/f0.txt", ns=(1_600_000_000_000_000_000,) * 2)
        after = _digest(hasher, tree)
    changes = FileChanges(after, stored)
    assert changes.differences == []
    assert changes.same("d1") and not changes.clean("d1")
    assert changes.clean("d0") and changes.clean("d2")


def test_groups_are_stored_once_and_pruned_with_the_last_record_that_needs_them(
    store: Store, tmp_path: Path, tree: Path
) -> None:
    with ContextHasher(tmp_path / "contenthash.db") as hasher:
        first = _digest(hasher, tree)
        _recorded(store, tmp_path, first)
        groups_before = set(store.meta.keys(records.INPUT_GROUPS_NAMESPACE))
        (tree / "d1/f2.txt").write_text("edited\n")
        second = _digest(hasher, tree)
    layer = put_layer(store, tmp_path, {"b": "2"})
    later = record_for(
        layer, "sha256:" + "2" * 64, preimage={"inputs": {"context": second.digest}}, last_used=2e9
    )
    records.save(store.meta, later)
    records.save_input_groups(store.meta, later, {"context": second})
    added = set(store.meta.keys(records.INPUT_GROUPS_NAMESPACE)) - groups_before
    assert len(added) == 1  # d1's; the unchanged directories were stored already
    prune_records(store.meta, until=3600.0, now=2e9)
    assert [record.key for record in records.all_records(store.meta)] == [later.key]
    kept = set(store.meta.keys(records.INPUT_GROUPS_NAMESPACE))
    assert kept == set(second.group_digests.values())
    assert records.input_files(store.meta, later.preimage) == {"context": dict(second.files)}
