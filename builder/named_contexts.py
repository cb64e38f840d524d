"""``--build-context NAME=VALUE``: the values a build accepts, reduced to two forms.

The frontend knows two kinds of named context: a directory (``NAME=DIR``) and an image
(``NAME=docker-image://REF``). ``oci-layout://PATH[:TAG|@DIGEST]`` is loaded into the store
here, before the frontend runs, and becomes ``docker-image://<manifest digest>``: the image
is then resolved, keyed and leased like any other, and no name in the store changes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from builder.errors import UsageError

if TYPE_CHECKING:
    from builder.export._loading import PendingImage
    from builder.store.store import Store

IMAGE_SCHEME = "docker-image://"
LAYOUT_SCHEME = "oci-layout://"


def split_layout_value(value: str) -> tuple[Path, str, str]:
    """``PATH[:TAG|@DIGEST]`` → (path, tag, digest); at most one of tag and digest is set."""
    location, at, digest = value.partition("@")
    if at:
        return Path(location), "", digest
    head, colon, tag = location.rpartition(":")
    if colon and "/" not in tag:
        return Path(head), tag, ""
    return Path(location), "", ""


def _load_layout(store: Store, value: str) -> str:
    # The loaders come in only for an oci-layout:// context: every build calls
    # resolve_named_contexts, and the archive readers cost ~10 ms of start-up otherwise.
    from builder.export._loading import commit
    from builder.export.oci_archive import read_oci_layout

    path, tag, digest = split_layout_value(value)
    if not (path / "index.json").is_file():
        raise UsageError(f"--build-context oci-layout://{value}: {path} is not an OCI layout")
    pending = read_oci_layout(path)
    if digest:
        loaded = commit(store, [_unnamed(image) for image in pending])
        if not any(image.manifest_digest == digest for image in loaded):
            raise UsageError(f"--build-context oci-layout://{value}: no manifest {digest} in the layout")
        return digest
    chosen = [image for image in pending if not tag or any(_tag_of(name) == tag for name in image.names)]
    if not chosen:
        raise UsageError(f"--build-context oci-layout://{value}: no image tagged {tag!r} in the layout")
    [loaded_image] = commit(store, [_unnamed(chosen[0])])
    return loaded_image.manifest_digest


def _tag_of(name: str) -> str:
    last = name.rpartition("/")[2]
    return last.rpartition(":")[2] if ":" in last else name


def _unnamed(image: PendingImage) -> PendingImage:
    """The pending image without names: loading a context must not retag the store."""
    return dataclasses.replace(image, names=[])


def resolve_named_contexts(store: Store, values: Mapping[str, str]) -> dict[str, str]:
    """Each value as a directory path (made absolute) or ``docker-image://REF``."""
    resolved: dict[str, str] = {}
    for name, value in values.items():
        if value.startswith(IMAGE_SCHEME):
            resolved[name] = value
        elif value.startswith(LAYOUT_SCHEME):
            resolved[name] = IMAGE_SCHEME + _load_layout(store, value.removeprefix(LAYOUT_SCHEME))
        elif "://" in value:
            raise UsageError(
                f"--build-context {name}={value}: unsupported kind (use a directory, "
                "docker-image:// or oci-layout://)"
            )
        else:
            directory = Path(value).resolve()
            if not directory.is_dir():
                raise UsageError(f"--build-context {name}={value}: not a directory")
            resolved[name] = str(directory)
    return resolved
