"""A rebuild that makes the same image gets the stored image back (same id, nothing
written), even when its timestamps would differ; --no-cache or any change makes a new one."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from builder.store.store import Store
from tests.fixtures.cache_builds import BASE, busybox_tar, context_dir, kiln_build, store_listing, store_root

__all__ = ["busybox_tar", "context_dir", "store_root"]  # fixtures used here

DOCKERFILE = f"FROM {BASE}\nCOPY app /app\nENV MODE=fast\nLABEL a=b\n"


def _image_id(store_root: Path, name: str) -> str:
    with Store.open(store_root) as store:
        return str(store.manifest(store.resolve(name))["config"]["digest"])


def test_a_fully_cached_rebuild_a_second_later_names_the_same_image(
    monkeypatch: pytest.MonkeyPatch, store_root: Path, context_dir: Path
) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH")  # real timestamps: they would differ
    kiln_build(monkeypatch, store_root, context_dir, DOCKERFILE, "-t", "reuse:1")
    first = _image_id(store_root, "reuse:1")
    before = store_listing(store_root)[0]
    time.sleep(1.1)
    kiln_build(monkeypatch, store_root, context_dir, DOCKERFILE, "-t", "reuse:2")
    assert _image_id(store_root, "reuse:2") == first
    assert store_listing(store_root)[0] == before  # no config or manifest written

    kiln_build(monkeypatch, store_root, context_dir, DOCKERFILE, "--no-cache", "-t", "reuse:3")
    assert _image_id(store_root, "reuse:3") != first
    kiln_build(monkeypatch, store_root, context_dir, DOCKERFILE.replace("a=b", "a=c"), "-t", "reuse:4")
    assert _image_id(store_root, "reuse:4") not in (first, _image_id(store_root, "reuse:3"))


def test_a_pruned_image_is_forgotten_and_made_again(
    monkeypatch: pytest.MonkeyPatch, store_root: Path, context_dir: Path
) -> None:
    from builder.cli.main import main
    from builder.image_reuse import NAMESPACE

    monkeypatch.delenv("SOURCE_DATE_EPOCH")  # with it set, nothing is remembered
    kiln_build(monkeypatch, store_root, context_dir, DOCKERFILE)  # no name: pruned next
    with Store.open(store_root) as store:
        assert len(store.meta.keys(NAMESPACE)) == 1
    assert main(["--root", str(store_root), "prune"]) == 0
    with Store.open(store_root) as store:
        assert store.meta.keys(NAMESPACE) == []
    kiln_build(monkeypatch, store_root, context_dir, DOCKERFILE, "-t", "again:1")
    assert _image_id(store_root, "again:1").startswith("sha256:")


def test_each_source_date_epoch_gets_its_own_image(
    monkeypatch: pytest.MonkeyPatch, store_root: Path, context_dir: Path
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "100")
    kiln_build(monkeypatch, store_root, context_dir, DOCKERFILE, "-t", "epoch:1")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "2000000000")
    kiln_build(monkeypatch, store_root, context_dir, DOCKERFILE, "-t", "epoch:2")
    assert _image_id(store_root, "epoch:1") != _image_id(store_root, "epoch:2")
    with Store.open(store_root) as store:
        _manifest, config = store.get_image("epoch:2")
        assert config["created"].startswith("2033-05-18")
