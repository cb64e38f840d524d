"""Layer blob → directory: unpack a layer tar inside a root, whiteouts applied, never outside.

Every entry is checked before anything is written. Refused, with a :class:`LayerError`
naming the entry: an absolute name or one with a ``..`` component; a hardlink whose target
is absolute, climbs with ``..``, is missing or is a directory; writing through a symlink
that points out of the root (absolute target, or ``..`` above the root) — a diff never
writes through a symlink, so such an entry can only be an attack; a whiteout of ``..``.
Parents are resolved with :func:`builder.rootpath.resolve_in_root`, so nothing is ever
opened through a link onto the host, and a final component that is a symlink is replaced,
never followed.

Two ways to apply whiteouts:

* ``overlay`` (snapshots used as overlay lower dirs): ``.wh.NAME`` becomes a 0/0 character
  device and ``.wh..wh..opq`` the ``trusted.overlay.opaque=y`` xattr on its directory;
* ``oci`` (flattening onto earlier layers): the whiteout deletes; the opaque marker empties
  its directory of everything not written by this same layer.

Metadata follows the entry: ``chown`` before ``chmod`` (``chown`` clears setuid), xattrs,
then the mtime; directory mtimes are set last, since adding children changes them. Owners,
devices and ``trusted.*`` xattrs need root; without it they are skipped, as rootless Docker
does.
"""

from __future__ import annotations

import errno
import gzip
import os
import shutil
import stat
import tarfile
from pathlib import Path
from typing import BinaryIO, Literal

import zstandard

from builder.errors import LayerError, StoreError
from builder.layers.compression import open_decompressed
from builder.layers.whiteouts import (
    AUFS_META_PREFIX,
    OPAQUE_MARKER,
    TRUSTED_OPAQUE_XATTR,
    USER_OPAQUE_XATTR,
    WHITEOUT_PREFIX,
    is_overlay_private_xattr,
)
from builder.oci.digest import Digest, HashingReader
from builder.rootpath import ensure_dir_in_root, is_within, resolve_in_root

_XATTR_PAX_PREFIX = "SCHILY.xattr."
_COPY_SIZE = 1 << 20


def _drain(reader: HashingReader) -> Digest:
    """Read (and hash) whatever follows the tar's end blocks; return the diff id."""
    while reader.read(_COPY_SIZE):
        pass
    return reader.digest()


def _entry_parts(name: str, path: str | None = None) -> list[str]:
    """The components of an entry's ``path`` (its name by default); refuses absolute and ``..``."""
    path = name if path is None else path
    what = f"layer entry {name!r}" if path == name else f"layer entry {name!r}: link target {path!r}"
    if path.startswith("/"):
        raise LayerError(f"{what} is an absolute path")
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise LayerError(f"{what} climbs out of its directory with '..'")
    return parts


class _Unpacker:
    def __init__(self, root: Path, whiteout_format: Literal["overlay", "oci"]) -> None:
        self.root = root
        self.whiteout_format = whiteout_format
        self.is_root = os.geteuid() == 0
        self.written: set[Path] = set()
        self.directory_times: list[tuple[Path, int]] = []
        # Resolved parent directories by entry path. Only removing a directory or a symlink
        # can change how a cached path resolves (a new entry cannot sit where a cached path
        # already passes), so removing one clears the cache.
        self.parents: dict[str, Path] = {}

    def remove(self, path: Path) -> None:
        """Delete whatever is at ``path`` (never following a symlink), if anything."""
        try:
            status = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(status.st_mode):
            shutil.rmtree(path)
        else:
            os.unlink(path)
        if stat.S_ISDIR(status.st_mode) or stat.S_ISLNK(status.st_mode):
            self.parents.clear()

    def parent_of(self, member: tarfile.TarInfo, parts: list[str], *, create: bool = True) -> Path:
        """The entry's parent directory, resolved strictly in the root (made if ``create``)."""
        parent_path = "/".join(parts[:-1])
        cached = self.parents.get(parent_path)
        if cached is not None:
            return cached
        try:
            if create:
                parent = ensure_dir_in_root(self.root, parent_path, mode=0o755, strict=True)
            else:
                parent = resolve_in_root(self.root, parent_path, strict=True)
        except StoreError as err:
            raise LayerError(f"layer entry {member.name!r} refused: {err}") from err
        if not is_within(self.root, parent):  # cannot happen: resolution stays in root
            raise LayerError(f"layer entry {member.name!r} resolves outside the root")
        if create:
            self.parents[parent_path] = parent
        return parent

    def apply(self, member: tarfile.TarInfo, archive: tarfile.TarFile) -> None:
        parts = _entry_parts(member.name)
        if not parts:
            return  # the root itself: its metadata belongs to whoever made the root
        base = parts[-1]
        if base.startswith(WHITEOUT_PREFIX):
            self.whiteout(member, parts)
            return
        target = self.parent_of(member, parts) / base
        self.written.add(target)
        if member.isdir():
            try:
                existing = os.lstat(target)
            except FileNotFoundError:
                existing = None
            if existing is None or not stat.S_ISDIR(existing.st_mode):
                self.remove(target)
                os.mkdir(target, 0o700)
            self.finish(target, member)
            self.directory_times.append((target, int(member.mtime)))
            return
        self.remove(target)
        if member.isreg():
            self.write_file(target, member, archive)
        elif member.islnk():
            self.hardlink(target, member)
            return  # a link shares its inode's metadata: nothing more to set
        elif member.issym():
            os.symlink(member.linkname, target)
        elif member.ischr() or member.isblk():
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
            if not self.mknod(target, kind | 0o600, os.makedev(member.devmajor, member.devminor)):
                return
        elif member.isfifo():
            os.mkfifo(target, 0o600)
        else:
            raise LayerError(f"layer entry {member.name!r} has unsupported type {member.type!r}")
        self.finish(target, member)

    def mknod(self, target: Path, mode: int, device: int) -> bool:
        try:
            os.mknod(target, mode, device)
        except PermissionError:
            if self.is_root:
                raise
            return False
        return True

    def write_file(self, target: Path, member: tarfile.TarInfo, archive: tarfile.TarFile) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        source = archive.extractfile(member)
        if source is None:
            raise LayerError(f"layer entry {member.name!r}: no content")
        with open(os.open(target, flags, 0o600), "wb") as destination:
            shutil.copyfileobj(source, destination, _COPY_SIZE)

    def hardlink(self, target: Path, member: tarfile.TarInfo) -> None:
        link_parts = _entry_parts(member.name, member.linkname)
        if not link_parts:
            raise LayerError(f"layer entry {member.name!r} is a hardlink to the root")
        try:
            source = resolve_in_root(self.root, "/".join(link_parts), follow_final=False, strict=True)
        except StoreError as err:
            raise LayerError(f"layer entry {member.name!r} refused: hardlink target {err}") from err
        try:
            status = os.lstat(source)
        except FileNotFoundError:
            raise LayerError(
                f"layer entry {member.name!r} is a hardlink to {member.linkname!r}, which does not exist"
            ) from None
        if stat.S_ISDIR(status.st_mode) or not is_within(self.root, source):
            raise LayerError(f"layer entry {member.name!r} is a hardlink to directory {member.linkname!r}")
        os.link(source, target, follow_symlinks=False)

    def finish(self, target: Path, member: tarfile.TarInfo) -> None:
        """Owner, then mode (so setuid survives), xattrs and mtime; a symlink keeps its mode."""
        is_link = member.issym()
        try:
            os.chown(target, member.uid, member.gid, follow_symlinks=False)
        except PermissionError:
            if self.is_root:
                raise
        if not is_link:
            os.chmod(target, member.mode & 0o7777)
        for key, value in sorted(member.pax_headers.items()):
            if key.startswith(_XATTR_PAX_PREFIX):
                self.set_xattr(target, key[len(_XATTR_PAX_PREFIX) :], value, member)
        if not member.isdir():
            os.utime(target, (member.mtime, member.mtime), follow_symlinks=False)

    def set_xattr(self, target: Path, name: str, value: str, member: tarfile.TarInfo) -> None:
        if is_overlay_private_xattr(name):
            return
        try:
            os.setxattr(target, name, value.encode("utf-8", "surrogateescape"), follow_symlinks=False)
        except OSError as err:
            unsupported = err.errno in (errno.ENOTSUP, errno.EOPNOTSUPP)
            # user.* xattrs are not allowed on symlinks, even for root.
            refused = err.errno == errno.EPERM and (not self.is_root or member.issym())
            if unsupported or refused:
                return
            raise LayerError(f"layer entry {member.name!r}: cannot set xattr {name}: {err.strerror}") from err

    def whiteout(self, member: tarfile.TarInfo, parts: list[str]) -> None:
        base = parts[-1]
        if base.startswith(AUFS_META_PREFIX) and base != OPAQUE_MARKER:
            return
        # Flattening, a whiteout in a directory that is not there has nothing to hide.
        parent = self.parent_of(member, parts, create=self.whiteout_format == "overlay")
        if not os.path.isdir(parent) or os.path.islink(parent):
            return
        if base == OPAQUE_MARKER:
            self.opaque(parent)
            return
        hidden = base[len(WHITEOUT_PREFIX) :]
        if hidden in ("", ".", "..") or "/" in hidden:
            raise LayerError(f"layer entry {member.name!r} is a whiteout outside its directory")
        target = parent / hidden
        self.remove(target)
        if self.whiteout_format == "overlay" and self.mknod(target, stat.S_IFCHR | 0o600, 0):
            self.written.add(target)
            if self.is_root:
                os.chown(target, member.uid, member.gid, follow_symlinks=False)
            os.utime(target, (member.mtime, member.mtime), follow_symlinks=False)

    def opaque(self, directory: Path) -> None:
        if self.whiteout_format == "overlay":
            name = TRUSTED_OPAQUE_XATTR if self.is_root else USER_OPAQUE_XATTR
            os.setxattr(directory, name, b"y", follow_symlinks=False)
            return
        for child in os.listdir(directory):
            path = directory / child
            if path not in self.written:
                self.remove(path)

    def set_directory_times(self) -> None:
        for path, mtime in reversed(self.directory_times):
            os.utime(path, (mtime, mtime), follow_symlinks=False)


def apply_layer(
    stream: BinaryIO,
    root: Path,
    *,
    whiteout_format: Literal["overlay", "oci"] = "overlay",
    diff_id: str | None = None,
) -> Digest:
    """Unpack the layer blob read from ``stream`` into ``root``; return its diff id.

    The compression is found from the magic bytes. ``diff_id``, when given, is checked
    against the sha256 of the uncompressed tar (:class:`LayerError` if they differ; the
    caller unpacks into a temporary directory and throws it away then). ``root`` must
    exist. Any refused entry stops the unpacking with a :class:`LayerError` naming it.
    """
    uncompressed, compression = open_decompressed(stream)
    reader = HashingReader(uncompressed)
    unpacker = _Unpacker(root, whiteout_format)
    try:
        with tarfile.open(fileobj=reader, mode="r|") as archive:  # type: ignore[call-overload]
            for member in archive:
                unpacker.apply(member, archive)
    except tarfile.TarError as err:
        raise LayerError(f"layer is not a valid tar stream: {err}") from err
    except (gzip.BadGzipFile, zstandard.ZstdError, EOFError) as err:
        raise LayerError(f"layer blob is not valid {compression} data: {err}") from err
    except OSError as err:
        raise LayerError(f"cannot unpack layer into {root}: {err}") from err
    unpacker.set_directory_times()
    found = _drain(reader)
    if diff_id is not None and found != diff_id:
        raise LayerError(f"layer content has diff id {found}, expected {diff_id}")
    return found
