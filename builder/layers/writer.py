"""Directory diff → layer blob: a deterministic tar, compressed, hashed twice in one pass.

The tree is walked depth-first with each directory's entries sorted by name bytes, the
order Go's ``filepath.Walk`` gives BuildKit and Docker. An entry holds type, mode (with
setuid, setgid and sticky bits), uid/gid, whole-second mtime, xattrs and, for a
hardlinked file met again, a link to the first name. Overlay whiteouts (0/0 character
devices, opaque xattrs) become OCI whiteout files, the opaque marker right after its
directory. ``source_date_epoch`` clamps every mtime to at most that time, so a rebuild of
the same content gives the same digest. Sockets are left out, as in every layer writer.

The tar bytes are hashed into the diff id while they are handed to the compressor, whose
output is hashed into the blob digest while written to ``out``: nothing is read back.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import BinaryIO, Literal

from builder.errors import LayerError
from builder.layers import _tarheader as tarheader
from builder.layers.compression import Compression, open_compressor
from builder.layers.layerindex import FileKey, IndexBuilder, LayerIndex, PreviousLayer, file_key
from builder.layers.splicing import TarSink
from builder.layers.whiteouts import (
    OPAQUE_MARKER,
    WHITEOUT_PREFIX,
    is_opaque_dir,
    is_overlay_private_xattr,
    is_overlay_whiteout,
)
from builder.lazyclasses import dataclass
from builder.oci.digest import Digest, HashingWriter
from builder.oci.mediatypes import layer_media_type
from builder.oci.model import Descriptor

WhiteoutFormat = Literal["overlay", "oci"]
_READ_SIZE = 1 << 20


@dataclass(frozen=True)
class LayerDescriptor:
    """What writing a layer produced: the blob's digest and size, and the tar's diff id.

    ``content_size`` is the sum of ``st_size`` over the non-directory entries written: what
    the store records as the size of a snapshot of the same tree, known here without a
    second walk.
    """

    digest: Digest
    diff_id: Digest
    size: int
    media_type: str
    compression: Compression
    content_size: int = 0
    #: Where each regular file's entry lies, when asked for (``write_layer(index=True)``).
    index: LayerIndex | None = None
    #: When ranges of a previous layer were reused: what ``out`` received, and the parts.
    splice: Splice | None = None

    def descriptor(self) -> Descriptor:
        """The manifest entry for this layer blob."""
        return Descriptor(media_type=self.media_type, digest=self.digest, size=self.size)


@dataclass(frozen=True)
class Splice:
    """A layer tar made of new bytes (written to the blob ``out``: ``literal_digest``,
    ``literal_size``) and ranges of the previous layer's tar. ``parts`` holds
    ``(literal, offset, length)`` in order: a range of the new bytes when ``literal``,
    else of the previous tar."""

    literal_digest: Digest
    literal_size: int
    parts: tuple[tuple[bool, int, int], ...]


class _TarStream:
    """Emits the entries of one tree as tar bytes into a writer."""

    def __init__(
        self,
        tar_out: HashingWriter | TarSink,
        *,
        source_date_epoch: int | None,
        convert_overlay: bool,
        exclude: Callable[[str], bool] | None,
        index: IndexBuilder | None = None,
        previous: PreviousLayer | None = None,
    ) -> None:
        self._out = tar_out
        self._sink = tar_out if isinstance(tar_out, TarSink) else None
        #: Filled with each regular file's entry span (a layer index is being written).
        self._index = index
        self._previous = previous.index.entries if previous is not None else None
        self._reusable: Mapping[bytes, tuple[int, int, FileKey]] = self._previous or {}
        self._kept = previous.kept if previous is not None else frozenset()
        self._clean = previous.clean if previous is not None else frozenset()
        self._previous_size = previous.index.size if previous is not None else 0
        self._epoch = source_date_epoch
        self._convert_overlay = convert_overlay
        self._exclude = exclude
        self._first_names: dict[tuple[int, int], bytes] = {}
        self._buffer = memoryview(bytearray(_READ_SIZE))
        self.content_size = 0

    def _marker(self, name: bytes, status: os.stat_result) -> tarheader.TarEntry:
        """An empty file standing for a whiteout; owner and time taken from what it replaces."""
        return tarheader.TarEntry(
            name=name,
            type_flag=tarheader.REGULAR,
            mode=0o600,
            uid=status.st_uid,
            gid=status.st_gid,
            mtime=_header_mtime(status, self._epoch),
        )

    def walk(self, directory: bytes, prefix: bytes) -> None:
        kept = self._kept
        for child in sorted(os.listdir(directory)):
            name = prefix + child
            if self._exclude is not None and self._exclude(os.fsdecode(name)):
                continue
            if self._clean and name + b"/" in self._clean and self._name_subtree(name + b"/"):
                continue
            if kept and name in kept and self._sink is not None:
                start, length, key = self._reusable[name]
                self.content_size += key[2]
                if self._index is not None:
                    self._index.add(name, self._sink.position, length, key)
                self._sink.reference(start, length)
                continue
            path = os.path.join(directory, child)
            status = os.lstat(path)
            if not stat.S_ISDIR(status.st_mode):
                self.content_size += status.st_size
            if self._convert_overlay and is_overlay_whiteout(status):
                marker = prefix + WHITEOUT_PREFIX.encode() + child
                self._out.write(tarheader.encode_header(self._marker(marker, status)))
                continue
            if stat.S_ISSOCK(status.st_mode):
                continue
            self._emit(path, name, status)
            if stat.S_ISDIR(status.st_mode):
                if self._convert_overlay and is_opaque_dir(path):
                    marker = name + b"/" + OPAQUE_MARKER.encode()
                    self._out.write(tarheader.encode_header(self._marker(marker, status)))
                self.walk(path, name + b"/")

    def _name_subtree(self, directory: bytes) -> bool:
        """Name a clean directory's whole subtree (``directory`` ends in ``/``) as one range
        of the previous tar, re-indexed where it now lies; false when the index does not
        show it as one unbroken run starting with the directory's own entry."""
        if self._sink is None or self._previous is None:
            return False
        run = self._previous.run(directory, self._previous_size - 2 * tarheader.BLOCK)
        if run is None:
            return False
        first, end, begin, stop, content_size = run
        if self._index is not None:
            self._index.add_run(self._previous, begin, stop, self._sink.position - first)
        self.content_size += content_size
        self._sink.reference(first, end - first)
        return True

    def _emit(self, path: bytes, name: bytes, status: os.stat_result) -> None:
        # One header object per entry, its fields settled first: this runs for every file
        # of a layer (20,000 in a large COPY), so no intermediate copies.
        mode = status.st_mode
        type_flag, size, linkname, major, minor = tarheader.REGULAR, 0, b"", 0, 0
        if stat.S_ISDIR(mode):
            name, type_flag = name + b"/", tarheader.DIRECTORY
        elif stat.S_ISREG(mode):
            inode = (status.st_dev, status.st_ino)
            first_name = self._first_names.get(inode) if status.st_nlink > 1 else None
            if first_name is not None:
                type_flag, linkname = tarheader.HARDLINK, first_name
            else:
                if status.st_nlink > 1:
                    self._first_names[inode] = name
                if self._reused(name, status):
                    return
                size = status.st_size
        elif stat.S_ISLNK(mode):
            type_flag, linkname = tarheader.SYMLINK, os.readlink(path)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            type_flag = tarheader.CHAR_DEVICE if stat.S_ISCHR(mode) else tarheader.BLOCK_DEVICE
            major, minor = os.major(status.st_rdev), os.minor(status.st_rdev)
        elif stat.S_ISFIFO(mode):
            type_flag = tarheader.FIFO
        else:
            raise LayerError(f"cannot put {os.fsdecode(name)!r} in a layer: unknown file type {mode:o}")
        entry = _entry(
            name,
            type_flag,
            status,
            self._epoch,
            size=size,
            linkname=linkname,
            devmajor=major,
            devminor=minor,
            xattrs=_read_xattrs(path),
        )
        xattrs = entry.xattrs
        header = tarheader.encode_header(entry)
        if self._sink is None:
            self._out.write(header)
            if size:
                self._copy_content(path, name, size)
            return
        start = self._sink.position
        if type_flag == tarheader.DIRECTORY:
            # A directory's header is made anew (its inode is new), but most often it is
            # the very bytes the previous tar holds for it: then name those, so that the
            # splice stays a few long runs rather than two pieces per directory.
            known = self._reusable.get(name)
            self._sink.write_or_reference(header, (known[0], known[1]) if known else None)
        else:
            self._sink.write(header)
            if size:
                self._copy_content(path, name, size)
        # Directories, and regular files without xattrs (an index entry promises a file has
        # none, :mod:`builder.fileops.donor` relies on it); not hard links to a first name.
        indexed = type_flag == tarheader.DIRECTORY or (type_flag == tarheader.REGULAR and not xattrs)
        if self._index is not None and indexed:
            self._index.add(name, start, self._sink.position - start, file_key(status))

    def _reused(self, name: bytes, status: os.stat_result) -> bool:
        """Name the previous layer's entry for a regular file when it is the same inode,
        unchanged (see :mod:`builder.layers.layerindex`), and index it; false otherwise."""
        known = self._reusable.get(name)
        if known is None or self._sink is None:
            return False
        key = file_key(status)
        if known[2] != key:
            return False
        start = self._sink.position
        self._sink.reference(known[0], known[1])
        if self._index is not None:
            self._index.add(name, start, known[1], key)
        return True

    def _copy_content(self, path: bytes, name: bytes, size: int) -> None:
        """Stream a file's bytes through one reused buffer; every sink copies what it keeps."""
        remaining = size
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with open(descriptor, "rb", buffering=0) as source:
            while remaining > 0:
                count = source.readinto(self._buffer[: min(_READ_SIZE, remaining)])
                if not count:
                    break
                self._out.write(self._buffer[:count])
                remaining -= count
        if remaining:
            raise LayerError(f"{os.fsdecode(name)!r} shrank while it was written into a layer")
        self._out.write(tarheader.padding(size))


def _header_mtime(status: os.stat_result, source_date_epoch: int | None) -> int:
    mtime = int(status.st_mtime)
    return mtime if source_date_epoch is None else min(mtime, source_date_epoch)


def _entry(
    name: bytes,
    type_flag: bytes,
    status: os.stat_result,
    source_date_epoch: int | None,
    *,
    size: int = 0,
    linkname: bytes = b"",
    devmajor: int = 0,
    devminor: int = 0,
    xattrs: dict[str, bytes] | None = None,
) -> tarheader.TarEntry:
    """The header fields of an entry, its time clamped to ``source_date_epoch``."""
    return tarheader.TarEntry(
        name=name,
        type_flag=type_flag,
        mode=stat.S_IMODE(status.st_mode),
        uid=status.st_uid,
        gid=status.st_gid,
        size=size,
        mtime=_header_mtime(status, source_date_epoch),
        linkname=linkname,
        devmajor=devmajor,
        devminor=devminor,
        xattrs=xattrs or {},
    )


def regular_file_entry(path: str, name: bytes, source_date_epoch: int | None) -> bytes | None:
    """The bytes a layer tar holds for the regular file at ``path`` named ``name`` (header,
    content, padding), as the writer makes them; ``None`` for anything else, or a file with
    more than one link (the writer may make it a hard link to another name)."""
    try:
        status = os.lstat(path)
        if not stat.S_ISREG(status.st_mode) or status.st_nlink != 1:
            return None
        header = tarheader.encode_header(
            _entry(
                name,
                tarheader.REGULAR,
                status,
                source_date_epoch,
                size=status.st_size,
                xattrs=_read_xattrs(os.fsencode(path)),
            )
        )
        with open(path, "rb") as source:
            content = source.read(status.st_size + 1)
    except OSError:
        return None
    if len(content) != status.st_size:
        return None  # changing under us: the writer will see what it sees
    return header + content + tarheader.padding(status.st_size)


def _read_xattrs(path: bytes) -> dict[str, bytes]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as err:
        if err.errno in (errno.ENOTSUP, errno.EPERM):
            return {}
        raise
    found: dict[str, bytes] = {}
    for xattr_name in sorted(names):
        if is_overlay_private_xattr(xattr_name):
            continue
        try:
            found[xattr_name] = os.getxattr(path, xattr_name, follow_symlinks=False)
        except OSError as err:
            if err.errno not in (errno.ENODATA, errno.EPERM, errno.ENOTSUP):
                raise
    return found


def write_layer(
    diff_dir: Path,
    out: BinaryIO,
    *,
    compression: Compression = "gzip",
    source_date_epoch: int | None = None,
    whiteout_format: WhiteoutFormat = "overlay",
    exclude: Callable[[str], bool] | None = None,
    index: bool = False,
    previous: PreviousLayer | None = None,
) -> LayerDescriptor:
    """Write the tree under ``diff_dir`` to ``out`` as one layer blob and describe it.

    ``whiteout_format="overlay"`` reads ``diff_dir`` as an overlay upper dir and converts
    its whiteouts; ``"oci"`` writes the tree as it is (whiteout files already spelled the
    OCI way). ``exclude`` receives each path relative to ``diff_dir`` (``etc/hosts``, no
    leading slash) and leaves it out when true; a left-out directory takes its subtree with
    it. ``out`` is written sequentially and left open.

    Uncompressed, ``index=True`` also describes where each file's entry lies
    (``LayerDescriptor.index``), and ``previous`` lets unchanged files' entries be named
    in that layer instead of written: then ``out`` receives only the new bytes, and
    ``LayerDescriptor.splice`` says how the tar is made of them and the previous tar's.
    """
    if compression == "none":
        return _write_uncompressed(
            diff_dir,
            out,
            source_date_epoch=source_date_epoch,
            whiteout_format=whiteout_format,
            exclude=exclude,
            index=index,
            previous=previous,
        )
    blob = HashingWriter(out)
    compressor = open_compressor(compression, blob)
    tar = HashingWriter(compressor)
    stream = _TarStream(
        tar,
        source_date_epoch=source_date_epoch,
        convert_overlay=whiteout_format == "overlay",
        exclude=exclude,
    )
    try:
        stream.walk(os.fsencode(diff_dir), b"")
        tar.write(tarheader.END_OF_ARCHIVE)
    finally:
        compressor.close()
    blob.flush()
    return LayerDescriptor(
        digest=blob.digest(),
        diff_id=tar.digest(),
        size=blob.size,
        media_type=layer_media_type(compression),
        compression=compression,
        content_size=stream.content_size,
    )


def _write_uncompressed(
    diff_dir: Path,
    out: BinaryIO,
    *,
    source_date_epoch: int | None,
    whiteout_format: WhiteoutFormat,
    exclude: Callable[[str], bool] | None,
    index: bool,
    previous: PreviousLayer | None,
) -> LayerDescriptor:
    """The blob is the tar: each byte hashed once, ranges of ``previous`` reused."""
    if previous is not None and previous.index.epoch != source_date_epoch:
        previous = None  # its headers' times were clamped differently
    sink = TarSink(out, previous=previous, checkpoints=index)
    entries = IndexBuilder() if index else None
    stream = _TarStream(
        sink,
        source_date_epoch=source_date_epoch,
        convert_overlay=whiteout_format == "overlay",
        exclude=exclude,
        index=entries,
        previous=previous,
    )
    try:
        stream.walk(os.fsencode(diff_dir), b"")
        sink.write(tarheader.END_OF_ARCHIVE)
        diff_id = Digest(sink.diff_id())
    finally:
        sink.close()
    layer_index = None
    if entries is not None:
        root = os.lstat(diff_dir)
        layer_index = LayerIndex(
            (root.st_dev, root.st_ino), source_date_epoch, sink.position, entries.entries(), sink.checkpoints
        )
    splice = None
    if sink.spliced:
        splice = Splice(Digest(sink.literal_digest()), sink.literal_size, tuple(sink.parts))
    return LayerDescriptor(
        digest=diff_id,
        diff_id=diff_id,
        size=sink.position,
        media_type=layer_media_type("none"),
        compression="none",
        content_size=stream.content_size,
        index=layer_index,
        splice=splice,
    )
