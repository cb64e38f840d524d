"""``kiln build --cache-to`` / ``--cache-from`` of the local and registry kinds: a second
store holding only the base image reuses every layer the first one built, running no step
and unpacking nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.fixtures.cache_builds import (
    busybox_tar,
    context_dir,
    import_base,
    kiln_build,
    ran,
    store_listing,
    store_root,
)
from tests.integration.test_cache_exactness import MULTI_STAGE

if TYPE_CHECKING:
    from tests.fixtures.registry import RunningRegistry

__all__ = ["busybox_tar", "context_dir", "store_root"]  # fixtures used here

pytest_plugins = ["tests.fixtures.registry"]

CHANGED_STEPS = [
    "COPY app /src",
    "RUN cat /src/main.sh > /out",
    "COPY --from=build /out /out",
    "RUN cat /out",
]


def _cache_layer_types(cache_dir: Path) -> set[str]:
    """The media types of the layers the local cache at ``cache_dir`` lists."""
    index = json.loads((cache_dir / "index.json").read_text())
    manifest_digest = index["manifests"][0]["digest"].removeprefix("sha256:")
    manifest = json.loads((cache_dir / "blobs" / "sha256" / manifest_digest).read_text())
    return {layer["mediaType"] for layer in manifest["layers"]}


def test_a_second_store_reuses_the_layers_of_a_local_cache(
    monkeypatch: pytest.MonkeyPatch, store_root: Path, context_dir: Path, busybox_tar: bytes, tmp_path: Path
) -> None:
    cache_dir = tmp_path / "cache-dir"
    first = kiln_build(
        monkeypatch, store_root, context_dir, MULTI_STAGE, "--cache-to", f"type=local,dest={cache_dir}"
    )
    assert len(ran(first)) == 6
    # The store keeps the built layers uncompressed; the cache holds them gzipped (the default).
    assert _cache_layer_types(cache_dir) == {"application/vnd.oci.image.layer.v1.tar+gzip"}
    second = tmp_path / "second"
    import_base(second, busybox_tar)
    flags = ("--cache-from", f"type=local,src={cache_dir}")
    assert ran(kiln_build(monkeypatch, second, context_dir, MULTI_STAGE, *flags)) == []
    assert store_listing(second)[1] == set()  # nothing unpacked, not even the base
    (context_dir / "app/main.sh").write_text("echo changed\n")
    assert ran(kiln_build(monkeypatch, second, context_dir, MULTI_STAGE, *flags)) == CHANGED_STEPS


def test_a_missing_local_cache_source_is_not_an_error(
    monkeypatch: pytest.MonkeyPatch, store_root: Path, context_dir: Path, tmp_path: Path
) -> None:
    flags = ("--cache-from", f"type=local,src={tmp_path / 'nothing-yet'}")
    assert len(ran(kiln_build(monkeypatch, store_root, context_dir, MULTI_STAGE, *flags))) == 6


def test_mode_min_exports_only_the_final_image_layers(
    monkeypatch: pytest.MonkeyPatch, store_root: Path, context_dir: Path, busybox_tar: bytes, tmp_path: Path
) -> None:
    cache_dir = tmp_path / "cache-dir"
    kiln_build(
        monkeypatch,
        store_root,
        context_dir,
        MULTI_STAGE,
        "--cache-to",
        f"type=local,dest={cache_dir},mode=min,compression=zstd",
    )
    assert _cache_layer_types(cache_dir) == {"application/vnd.oci.image.layer.v1.tar+zstd"}
    second = tmp_path / "second"
    import_base(second, busybox_tar)
    results = kiln_build(
        monkeypatch, second, context_dir, MULTI_STAGE, "--cache-from", f"type=local,src={cache_dir}"
    )
    # The other stages' layers were not exported: they run, and the final stage's steps,
    # keyed on identical layers (SOURCE_DATE_EPOCH), come from the cache.
    assert ran(results) == ["COPY app /src", "RUN cat /src/main.sh > /out", "RUN echo other > /other"]


@pytest.mark.usefixtures("registry_isolation")
def test_a_second_store_reuses_the_layers_of_a_registry_cache(
    monkeypatch: pytest.MonkeyPatch,
    registry: RunningRegistry,
    store_root: Path,
    context_dir: Path,
    busybox_tar: bytes,
) -> None:
    ref = f"{registry.host}/kiln/build-cache:main"
    first = kiln_build(
        monkeypatch, store_root, context_dir, MULTI_STAGE, "--cache-to", f"type=registry,ref={ref}"
    )
    assert len(ran(first)) == 6
    second = store_root.parent / "second"
    import_base(second, busybox_tar)
    results = kiln_build(
        monkeypatch, second, context_dir, MULTI_STAGE, "--cache-from", f"type=registry,ref={ref}"
    )
    assert ran(results) == []
