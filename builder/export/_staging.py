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

import zstandard

from builder.durable import TEMP_PREFIX
from builder.errors import ImageFormatError
from builder.layers.compression import open_decompressed

_CHUNK = 1 << 20
_TAIL_KEPT = 1 << 16


@contextmanager
def staged_archive(stream: BinaryIO, parent: Path) -> Iterator[Path]:
    """Extract the archive ``stream`` (tar, plain or gzip- or zstd-compressed) into a temporary directory."""
    staging = parent / f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(8)}"
    staging.mkdir(mode=0o700)
    try:
        _extract(stream, staging)
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


class _TailRecorder:
    """Passes reads through, counting bytes and keeping the most recent ones.

    Python's tarfile stops quietly when the data ends on a header boundary, so an archive cut
    short there looks whole; the end-of-archive zero block that tarfile stopped at is checked
    in what this keeps."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.total = 0
        self.tail = bytearray()

    def read(self, size: int = -1) -> bytes:
        chunk = self.stream.read(size)
        self.total += len(chunk)
        self.tail += chunk
        if len(self.tail) > _TAIL_KEPT:
            del self.tail[: len(self.tail) - _TAIL_KEPT]
        return chunk

    def block_at(self, offset: int) -> bytes:
        start = offset - (self.total - len(self.tail))
        if start < 0:
            return b""
        return bytes(self.tail[start : start + tarfile.BLOCKSIZE])


def _extract(stream: BinaryIO, staging: Path) -> None:
    links: dict[str, str] = {}
    try:
        uncompressed, _compression = open_decompressed(stream)
        recorder = _TailRecorder(uncompressed)
        with tarfile.open(fileobj=recorder, mode="r|") as archive:  # type: ignore[call-overload]
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
            end_block = recorder.block_at(archive.offset)
        if len(end_block) != tarfile.BLOCKSIZE or end_block.count(0) != tarfile.BLOCKSIZE:
            raise ImageFormatError("the archive is truncated: it stops before its end-of-archive marker")
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, zstandard.ZstdError) as err:
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
