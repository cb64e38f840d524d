"""Unpack an image archive into a private staging directory before anything reaches the store.

``load`` verifies a whole archive before it changes the store, and tar members come in any
order (``index.json`` may follow the blobs), so the archive's regular files are first copied
into a temporary directory inside the store root (removed afterwards, or by the next start
after a crash). Only plain relative names are accepted; a symlink member (old ``docker
save`` links duplicate ``layer.tar`` files) is resolved inside the archive or refused.
"""

from __future__ import annotations

import gzip
import os
import secrets
import shutil
import tarfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from builder.errors import ImageFormatError
from builder.store.blobs import TEMP_PREFIX

_CHUNK = 1 << 20


@contextmanager
def staged_archive(stream: BinaryIO, parent: Path) -> Iterator[Path]:
    """Extract the archive ``stream`` (tar, possibly gzip-compressed) into a temporary directory."""
    staging = parent / f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(8)}"
    staging.mkdir(mode=0o700)
    try:
        _extract(stream, staging)
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _extract(stream: BinaryIO, staging: Path) -> None:
    links: dict[str, str] = {}
    try:
        with tarfile.open(fileobj=stream, mode="r|*") as archive:
            for member in archive:
                name = _safe_name(member.name)
                if name is None or member.isdir():
                    continue
                if member.issym() or member.islnk():
                    links[name] = member.linkname if member.islnk() else _join(name, member.linkname)
                    continue
                if not member.isfile():
                    raise ImageFormatError(f"archive entry {member.name!r} is not a regular file")
                target = staging / name
                target.parent.mkdir(parents=True, exist_ok=True)
                source = archive.extractfile(member)
                if source is None:
                    raise ImageFormatError(f"archive entry {member.name!r} cannot be read")
                with target.open("wb") as out:
                    shutil.copyfileobj(source, out, _CHUNK)
                if target.stat().st_size != member.size:
                    raise ImageFormatError(f"archive entry {member.name!r} is truncated")
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise ImageFormatError(f"the archive is truncated or not a tar file: {err}") from err
    for name, target_name in links.items():
        resolved = _safe_name(target_name)
        if resolved is None or not (staging / resolved).is_file():
            raise ImageFormatError(f"archive link {name!r} points outside the archive: {target_name!r}")
        destination = staging / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        os.link(staging / resolved, destination)


def _join(name: str, link_target: str) -> str:
    if link_target.startswith("/"):
        return link_target
    return str(PurePosixPath(name).parent / link_target)


def _safe_name(raw_name: str) -> str | None:
    """The member's normalised relative name; ``None`` for the archive root; refuse escapes."""
    parts: list[str] = []
    for part in raw_name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise ImageFormatError(f"archive entry {raw_name!r} climbs out of the archive")
            parts.pop()
            continue
        parts.append(part)
    if raw_name.startswith("/"):
        raise ImageFormatError(f"archive entry {raw_name!r} has an absolute name")
    return "/".join(parts) if parts else None
