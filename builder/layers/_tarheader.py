"""Encoding of one tar header block, POSIX ustar with a PAX extended header when needed.

Written by hand rather than with :mod:`tarfile` so that binary xattr values (a
``security.capability`` is binary) go into ``SCHILY.xattr.*`` records as raw bytes, the way
Go's ``archive/tar`` (Docker, BuildKit, containerd) writes and reads them, and so that the
bytes produced are fixed by this module alone: a layer's digest must not change with the
Python version. The PAX header is emitted only when ustar cannot hold a field, with its
records sorted by key, as Go does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field

from builder.lazyclasses import dataclass

BLOCK = 512
END_OF_ARCHIVE = b"\0" * (2 * BLOCK)

REGULAR = b"0"
HARDLINK = b"1"
SYMLINK = b"2"
CHAR_DEVICE = b"3"
BLOCK_DEVICE = b"4"
DIRECTORY = b"5"
FIFO = b"6"
_PAX_HEADER = b"x"

_NAME_SIZE = 100
_SMALL_MAX = 8**7  # 7 octal digits: mode, uid, gid, devices
_LARGE_MAX = 8**11  # 11 octal digits: size, mtime


@dataclass(frozen=True)
class TarEntry:
    """One entry's header fields; ``name`` is relative, a directory's ends with ``/``."""

    name: bytes
    type_flag: bytes
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    size: int = 0
    mtime: int = 0
    linkname: bytes = b""
    devmajor: int = 0
    devminor: int = 0
    xattrs: Mapping[str, bytes] = field(default_factory=dict)


def _octal(value: int, width: int) -> bytes:
    return f"{value:0{width - 1}o}".encode() + b"\0"


def _pax_record(key: str, value: bytes) -> bytes:
    body = b" " + key.encode() + b"=" + value + b"\n"
    length = len(body) + 1
    while len(str(length)) + len(body) != length:
        length = len(str(length)) + len(body)
    return str(length).encode() + body


def _needs_pax_text(value: bytes) -> bool:
    return len(value) > _NAME_SIZE or not value.isascii() or b"\0" in value


def _ustar_block(entry: TarEntry, name: bytes, linkname: bytes, pax: dict[str, bytes]) -> bytes:
    def number(key: str, value: int, width: int, limit: int) -> bytes:
        return _octal(0 if key in pax or value < 0 or value >= limit else value, width)

    header = b"".join(
        (
            name[:_NAME_SIZE].ljust(_NAME_SIZE, b"\0"),
            _octal(entry.mode & 0o7777, 8),
            number("uid", entry.uid, 8, _SMALL_MAX),
            number("gid", entry.gid, 8, _SMALL_MAX),
            number("size", entry.size, 12, _LARGE_MAX),
            number("mtime", entry.mtime, 12, _LARGE_MAX),
            b" " * 8,
            entry.type_flag,
            linkname[:_NAME_SIZE].ljust(_NAME_SIZE, b"\0"),
            b"ustar\x0000",
            b"\0" * 64,  # uname, gname: left empty, as containerd does
            _octal(entry.devmajor, 8),
            _octal(entry.devminor, 8),
            b"\0" * 155,
        )
    ).ljust(BLOCK, b"\0")
    checksum = f"{sum(header):06o}".encode() + b"\0 "
    return header[:148] + checksum + header[156:]


def padding(size: int) -> bytes:
    """Zero bytes that bring a member's content up to a whole block."""
    return b"\0" * (-size % BLOCK)


def _plain_ustar_block(entry: TarEntry) -> bytes | None:
    """The ustar block of an entry that needs no PAX header, formatted in one step; ``None``
    when it needs one. The same bytes as :func:`_ustar_block` (a unit test holds them
    equal); this is the common case, met once per file of every layer written."""
    name, linkname = entry.name, entry.linkname
    if (
        entry.xattrs
        or len(name) > _NAME_SIZE
        or len(linkname) > _NAME_SIZE
        or not (name.isascii() and linkname.isascii())
        or b"\0" in name
        or b"\0" in linkname
        or not (0 <= entry.uid < _SMALL_MAX and 0 <= entry.gid < _SMALL_MAX)
        or not (0 <= entry.size < _LARGE_MAX and 0 <= entry.mtime < _LARGE_MAX)
        or not (0 <= entry.devmajor < _SMALL_MAX and 0 <= entry.devminor < _SMALL_MAX)
    ):
        return None
    header = b"".join(
        (
            name.ljust(_NAME_SIZE, b"\0"),
            b"%07o\0%07o\0%07o\0%011o\0%011o\0        "
            % (entry.mode & 0o7777, entry.uid, entry.gid, entry.size, entry.mtime),
            entry.type_flag,
            linkname.ljust(_NAME_SIZE, b"\0"),
            b"ustar\x0000",
            _EMPTY_OWNER_NAMES,
            b"%07o\0%07o\0" % (entry.devmajor, entry.devminor),
            _TAIL,
        )
    )
    return header[:148] + b"%06o\0 " % sum(header) + header[156:]


#: uname and gname, left empty; then the prefix field and the block's unused end.
_EMPTY_OWNER_NAMES = b"\0" * 64
_TAIL = b"\0" * (155 + 12)


def encode_header(entry: TarEntry) -> bytes:
    """The header block(s) of ``entry``: a PAX header first when ustar is not enough."""
    plain = _plain_ustar_block(entry)
    if plain is not None:
        return plain
    pax: dict[str, bytes] = {}
    if _needs_pax_text(entry.name):
        pax["path"] = entry.name
    if _needs_pax_text(entry.linkname):
        pax["linkpath"] = entry.linkname
    for key, value in (("uid", entry.uid), ("gid", entry.gid)):
        if value >= _SMALL_MAX:
            pax[key] = str(value).encode()
    for key, value in (("size", entry.size), ("mtime", entry.mtime)):
        if not 0 <= value < _LARGE_MAX:
            pax[key] = str(value).encode()
    for xattr_name, xattr_value in entry.xattrs.items():
        pax[f"SCHILY.xattr.{xattr_name}"] = xattr_value
    name = entry.name if "path" not in pax else entry.name[:_NAME_SIZE].decode("ascii", "replace").encode()
    linkname = entry.linkname if "linkpath" not in pax else b""
    block = _ustar_block(entry, name, linkname, pax)
    if not pax:
        return block
    records = b"".join(_pax_record(key, pax[key]) for key in sorted(pax))
    base = entry.name.rstrip(b"/").rsplit(b"/", 1)[-1]
    pax_name = (b"PaxHeaders.0/" + base)[:_NAME_SIZE]
    pax_entry = TarEntry(name=pax_name, type_flag=_PAX_HEADER, size=len(records))
    pax_block = _ustar_block(pax_entry, pax_entry.name, b"", {})
    return pax_block + records + padding(len(records)) + block
