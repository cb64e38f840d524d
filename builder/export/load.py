"""``kiln load``: tell an OCI archive from a docker archive and load either, all or nothing."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from builder.errors import ImageFormatError
from builder.export._loading import LoadedImage, PendingImage, commit
from builder.export._staging import staged_archive
from builder.export.docker_archive import read_docker_archive
from builder.export.oci_archive import read_oci_layout
from builder.store.store import Store

FORMAT_OCI = "oci"
FORMAT_DOCKER = "docker"


def detect_format(staging: Path) -> str:
    """``"oci"`` for an OCI layout (also docker 25's combined layout), ``"docker"`` for a
    ``manifest.json`` archive; raise :class:`ImageFormatError` for anything else."""
    if (staging / "oci-layout").is_file() and (staging / "index.json").is_file():
        return FORMAT_OCI
    if (staging / "manifest.json").is_file():
        return FORMAT_DOCKER
    raise ImageFormatError("not an image archive: it has neither index.json and oci-layout nor manifest.json")


def load_archive(store: Store, stream: BinaryIO) -> list[LoadedImage]:
    """Verify every image of the archive, then add them; a bad archive leaves the store as it was."""
    with staged_archive(stream, store.root) as staging:
        pending: list[PendingImage]
        if detect_format(staging) == FORMAT_OCI:
            pending = read_oci_layout(staging)
        else:
            pending = read_docker_archive(staging)
        return commit(store, pending)
