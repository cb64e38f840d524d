"""ADD of a local tar archive: recognise it, then extract it confined to its destination.

BuildKit treats a source as an archive when it is a regular file whose (gzip, bzip2, xz or
zstd compressed, or plain) stream starts with a valid tar header; anything else is copied
as a file. Extraction follows Docker's ``Untar`` run chrooted into the destination
directory: every entry name and every symlink met on the way resolves inside that
directory (a ``symldir -> ..`` entry leads back to the destination itself, not above it),
an entry climbing out with ``..`` is refused, an existing non-directory (or a directory, for
a non-directory entry) is replaced, the archive's owners (or ``--chown``), modes (with
setuid/setgid/sticky), times and xattrs are kept, and missing parents are made ``0755``,
owned by root.
Whiteout names get no special meaning: an archive is not a layer.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import posixpath
import shutil
import stat
import tarfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, cast

import zstandard

from builder.errors import BuildError
from builder.rootpath import ensure_dir_in_root, resolve_in_root

_CAN_CHOWN = os.geteuid() == 0


@contextmanager
def open_decompressed(path: Path) -> Iterator[IO[bytes]]:
    """``path``'s content, decompressed by its magic bytes (plain when none matches)."""
    with ExitStack() as stack:
        raw = stack.enter_context(open(path, "rb"))
        magic = raw.read(6)
        raw.seek(0)
        if magic.startswith(b"\x1f\x8b"):
            yield cast(IO[bytes], stack.enter_context(gzip.GzipFile(fileobj=raw)))
        elif magic.startswith(b"BZh"):
            yield cast(IO[bytes], stack.enter_context(bz2.BZ2File(raw)))
        elif magic.startswith(b"\xfd7zXZ\x00"):
            yield cast(IO[bytes], stack.enter_context(lzma.LZMAFile(raw)))
        elif magic.startswith(b"\x28\xb5\x2f\xfd"):
            yield stack.enter_context(zstandard.ZstdDecompressor().stream_reader(raw))
        else:
            yield raw


def is_archive(path: Path) -> bool:
    """Whether ``path`` is a regular file holding a (possibly compressed) tar stream."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return False
        with open_decompressed(path) as stream:
            header = stream.read(tarfile.BLOCKSIZE)
    except (OSError, EOFError, lzma.LZMAError, zstandard.ZstdError):
        return False
    if len(header) < tarfile.BLOCKSIZE:
        return False
    try:
        tarfile.TarInfo.frombuf(header, "utf-8", "surrogateescape")
    except tarfile.HeaderError:
        return False
    return True


def extract_archive(archive: Path, dest_dir: Path, *, chown: tuple[int, int] | None = None) -> None:
    """Extract ``archive`` into the existing directory ``dest_dir``, confined to it.

    ``chown`` (``ADD --chown``) replaces the owners the archive's headers give, as current
    BuildKit does.
    """
    directories: list[tuple[Path, tarfile.TarInfo]] = []
    try:
        with open_decompressed(archive) as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                if chown is not None:
                    member.uid, member.gid = chown
                target = _extract_member(tar, member, dest_dir)
                if target is not None and member.isdir():
                    directories.append((target, member))
    except (tarfile.TarError, EOFError, lzma.LZMAError, zstandard.ZstdError) as err:
        raise BuildError(f"failed to extract {archive.name}: {err}") from err
    for target, member in reversed(directories):
        os.utime(target, (member.mtime, member.mtime))


def _extract_member(tar: tarfile.TarFile, member: tarfile.TarInfo, dest_dir: Path) -> Path | None:
    name = posixpath.normpath("/" + member.name).lstrip("/")
    if posixpath.normpath(member.name).startswith("../") or member.name in ("..",):
        raise BuildError(f"archive entry {member.name!r} is outside the destination")
    if not name:
        return None  # the destination itself: Docker's Untar skips "."
    parent = ensure_dir_in_root(dest_dir, posixpath.dirname(name))
    target = parent / posixpath.basename(name)
    _clear(target, keep_dir=member.isdir())
    if member.isdir():
        if not target.is_dir():
            os.mkdir(target, 0o700)
    elif member.isreg():
        source = tar.extractfile(member)
        assert source is not None  # a regular member always has content
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with open(fd, "wb") as writer:
            shutil.copyfileobj(source, writer, 1 << 20)
    elif member.issym():
        os.symlink(member.linkname, target)
    elif member.islnk():
        linked = resolve_in_root(dest_dir, member.linkname, follow_final=False)
        if posixpath.normpath(member.linkname).startswith("../"):
            raise BuildError(f"archive hard link {member.name!r} points outside the destination")
        os.link(linked, target)
    elif member.ischr() or member.isblk():
        kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
        os.mknod(target, kind | 0o600, os.makedev(member.devmajor, member.devminor))
    elif member.isfifo():
        os.mkfifo(target)
    else:
        return None
    _apply_header(target, member)
    return target


def _clear(target: Path, *, keep_dir: bool) -> None:
    """Make room for an entry: a directory stays for a directory entry, all else goes."""
    try:
        existing = os.lstat(target)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(existing.st_mode):
        if not keep_dir:
            shutil.rmtree(target)
        return
    os.unlink(target)


def _apply_header(target: Path, member: tarfile.TarInfo) -> None:
    """Owner, then mode (chown clears setuid), xattrs and mtime, as the header says."""
    if _CAN_CHOWN:
        os.lchown(target, member.uid, member.gid)
    if member.issym():
        os.utime(target, (member.mtime, member.mtime), follow_symlinks=False)
        return
    os.chmod(target, member.mode & 0o7777)
    for key, value in member.pax_headers.items():
        if key.startswith("SCHILY.xattr."):
            try:
                name = key.removeprefix("SCHILY.xattr.")
                os.setxattr(target, name, value.encode("utf-8", "surrogateescape"))
            except OSError:
                continue
    os.utime(target, (member.mtime, member.mtime))
