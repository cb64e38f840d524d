"""``kiln prune`` and the build cache: plain prune keeps every cached layer, the cache
filters forget records (and so their layers), a dry run forgets nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.cli.main import main
from builder.store.store import Store
from cache import records
from tests.fixtures.cache_builds import busybox_tar, context_dir, kiln_build, ran, store_root
from tests.integration.test_cache_exactness import ALL_SINGLE, SINGLE_STAGE

__all__ = ["busybox_tar", "context_dir", "store_root"]  # fixtures used here


def prune(store_root: Path, *flags: str) -> None:
    assert main(["--root", str(store_root), "prune", *flags]) == 0


def record_count(store_root: Path) -> int:
    with Store.open(store_root) as store:
        return len(records.all_records(store.meta))


def test_plain_prune_keeps_the_cached_layers(
    monkeypatch: pytest.MonkeyPatch, store_root: Path, context_dir: Path
) -> None:
    kiln_build(monkeypatch, store_root, context_dir, SINGLE_STAGE)
    prune(store_root)  # the built image has no name: it goes, its layers stay for the cache
    assert record_count(store_root) == 4
    assert ran(kiln_build(monkeypatch, store_root, context_dir, SINGLE_STAGE)) == []


@pytest.mark.parametrize("flags", [("--all",), ("--filter", "type=cache"), ("--keep-storage", "0")])
def test_cache_filters_forget_every_record(
    monkeypatch: pytest.MonkeyPatch, store_root: Path, context_dir: Path, flags: tuple[str, ...]
) -> None:
    kiln_build(monkeypatch, store_root, context_dir, SINGLE_STAGE)
    prune(store_root, *flags)
    assert record_count(store_root) == 0
    assert ran(kiln_build(monkeypatch, store_root, context_dir, SINGLE_STAGE)) == ALL_SINGLE


def test_until_forgets_only_records_unused_for_that_long(
    monkeypatch: pytest.MonkeyPatch, store_root: Path, context_dir: Path
) -> None:
    kiln_build(monkeypatch, store_root, context_dir, SINGLE_STAGE)
    prune(store_root, "--filter", "until=1h")
    assert record_count(store_root) == 4
    assert ran(kiln_build(monkeypatch, store_root, context_dir, SINGLE_STAGE)) == []


def test_a_dry_run_forgets_nothing(
    monkeypatch: pytest.MonkeyPatch, store_root: Path, context_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kiln_build(monkeypatch, store_root, context_dir, SINGLE_STAGE)
    capsys.readouterr()
    prune(store_root, "--all", "--dry-run")
    assert "would forget 4 cache records" in capsys.readouterr().out
    assert record_count(store_root) == 4
    assert ran(kiln_build(monkeypatch, store_root, context_dir, SINGLE_STAGE)) == []


def test_cache_mount_filter_clears_the_cache_mounts(store_root: Path) -> None:
    leftover = store_root / "cache-mounts" / "some-id" / "file"
    leftover.parent.mkdir(parents=True)
    leftover.write_text("cached download\n")
    prune(store_root, "--filter", "type=cache-mount")
    assert not leftover.parent.exists()


def test_an_unknown_filter_is_a_usage_error(store_root: Path) -> None:
    assert main(["--root", str(store_root), "prune", "--filter", "label=x"]) == 2


def test_a_layer_pruned_between_lookup_and_lease_is_rebuilt(
    monkeypatch: pytest.MonkeyPatch, store_root: Path, context_dir: Path
) -> None:
    """A cache prune that removes a record's layer after the build looked it up (but before
    the build leased it) turns that step into a miss: the image still gets all its layers."""
    from builder.runner import PRUNED_MEANWHILE, LocalRunner

    kiln_build(monkeypatch, store_root, context_dir, SINGLE_STAGE, "-t", "pruned:1")
    looked_up = LocalRunner._probe
    removed: list[str] = []

    def probe_then_prune(self: LocalRunner, *args: object, **kwargs: object) -> object:
        probe = looked_up(self, *args, **kwargs)  # type: ignore[arg-type]
        if probe.record is not None and not removed:
            self._store.blobs.delete(probe.record.blob_digest)
            removed.append(probe.record.blob_digest)
        return probe

    monkeypatch.setattr(LocalRunner, "_probe", probe_then_prune)
    results = kiln_build(monkeypatch, store_root, context_dir, SINGLE_STAGE, "-t", "pruned:2")
    assert ran(results) == ALL_SINGLE[:1]
    assert results[0].reason == PRUNED_MEANWHILE
    with Store.open(store_root) as store:
        manifest = store.manifest(store.resolve("pruned:2"))
        assert all(store.blobs.has(layer["digest"]) for layer in manifest["layers"])
