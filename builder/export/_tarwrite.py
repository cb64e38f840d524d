"""Tar entries for image archives: regular files, owned by root, dated at the epoch.

Fixed headers make an archive of the same images byte-identical from one save to the next.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from builder.store.blobs import BlobStore


def _header(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def add_directory(archive: tarfile.TarFile, name: str) -> None:
    info = _header(name, 0)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    archive.addfile(info)


def add_bytes(archive: tarfile.TarFile, name: str, payload: bytes) -> None:
    archive.addfile(_header(name, len(payload)), io.BytesIO(payload))


def add_stream(archive: tarfile.TarFile, name: str, stream: BinaryIO, size: int) -> None:
    archive.addfile(_header(name, size), stream)


def add_file(archive: tarfile.TarFile, name: str, path: Path) -> None:
    with path.open("rb") as stream:
        add_stream(archive, name, stream, path.stat().st_size)


def add_blob(archive: tarfile.TarFile, name: str, blobs: BlobStore, digest: str) -> None:
    """A stored blob as a file of the archive, read through the store (which may keep it as
    a splice of other blobs, :mod:`builder.store.splices`)."""
    with blobs.open(digest) as stream:
        add_stream(archive, name, stream, blobs.size(digest))
