"""Export an image's flattened filesystem into a directory (``-o type=local``, ``kiln`` rootfs dumps).

Layers are applied bottom first with ``whiteout_format="oci"``: a whiteout deletes what the
layers below wrote and an opaque marker empties its directory, so the result is the tree a
container of the image starts with. Each layer is checked against its diff id on the way.
The target must be empty or absent, so an export never mixes with older files.

A multi-platform build exports one subdirectory per platform (``linux_amd64``,
``linux_arm_v7``), as BuildKit's local and tar exporters split platforms by default.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from builder.errors import StoreError
from builder.layers import apply_layer
from builder.store.store import Store


def export_directory(store: Store, ref: str, target: Path) -> None:
    """Write the flattened filesystem of the image ``ref`` names into ``target``."""
    manifest, config = store.get_image(ref)
    layers = store.layers(manifest, config)
    _make_empty(target)
    for layer in layers:
        with store.blobs.open(layer.digest) as stream:
            apply_layer(stream, target, whiteout_format="oci", diff_id=layer.diff_id)


def export_platform_directories(store: Store, images: Sequence[tuple[str, str]], target: Path) -> None:
    """Write each ``(subdirectory, image ref)`` of ``images`` as ``target/subdirectory``:
    one platform's filesystem per subdirectory, nothing else in ``target``."""
    _make_empty(target)
    for subdirectory, ref in images:
        export_directory(store, ref, target / subdirectory)


def _make_empty(target: Path) -> None:
    """Create ``target``, refusing one that already holds files."""
    if target.exists() and any(target.iterdir()):
        raise StoreError(f"export directory {target} is not empty")
    target.mkdir(parents=True, exist_ok=True)
