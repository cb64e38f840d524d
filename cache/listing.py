"""A directory's listing, as the stat cache records it and the context scan compares it.

The few functions both the build's walk (:mod:`cache.treewalk`, :mod:`cache.statcache`) and
the context scan's helper process (:mod:`cache.prescan`) need, in a module that loads
nothing but ``os``, ``marshal`` and ``hashlib``: the helper is forked before the build has
imported anything, and every module it imports is time it does not spend listing.
"""

from __future__ import annotations

import hashlib
import marshal
import os

TYPE_CHECKING = False  # (no ``typing`` import: see :mod:`builder.cli.entry`)
if TYPE_CHECKING:
    from collections.abc import Iterable

#: What must be unchanged for a remembered entry to still hold:
#: ``(mode, device, inode, size, mtime_ns, ctime_ns)``. A plain tuple, since a context has
#: tens of thousands of them, built in one list comprehension per directory.
StatKey = tuple[int, int, int, int, int, int]

#: ``marshal`` version for packed keys and digests (see :func:`pack_keys`).
_PACKING = 2


def stat_key(info: os.stat_result) -> StatKey:
    return (info.st_mode, info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def stat_keys(infos: Iterable[os.stat_result]) -> list[StatKey]:
    """:func:`stat_key` of each entry of a directory, in one comprehension (the hot path)."""
    return [(s.st_mode, s.st_dev, s.st_ino, s.st_size, s.st_mtime_ns, s.st_ctime_ns) for s in infos]


def join_names(names: list[str]) -> str:
    """A directory's names as one string, compared whole (no name holds a ``/``)."""
    return "/".join(names)


def pack_keys(keys: list[StatKey]) -> bytes:
    """Stat keys as bytes that are equal exactly when the keys are: ``marshal`` version 2
    writes no back-references, so its output depends on the values alone."""
    return marshal.dumps(keys, _PACKING)


def stat_list(
    names: list[str], infos: list[os.stat_result | None], complete: bool
) -> tuple[str, bytes] | None:
    """A directory's names and its entries' packed stat keys, as :func:`fingerprint` takes
    them; ``None`` when an entry was gone when listed (``complete`` is false)."""
    if not complete:
        return None
    return join_names(names), pack_keys(stat_keys(infos))  # type: ignore[arg-type]  # (complete)


def fingerprint(stat_list: tuple[str, bytes] | None) -> str | None:
    """A directory's names and its entries' stat keys (with their change times and inodes,
    :attr:`cache.treewalk.TreeWalk.stat_lists`) as a short digest: the same one later means no entry was
    written, touched, replaced, added or removed since."""
    if stat_list is None:
        return None
    listing, packed_keys = stat_list
    digest = hashlib.sha256(listing.encode("utf-8", "surrogatepass"))
    digest.update(b"\0")
    digest.update(packed_keys)
    return digest.hexdigest()[:32]


def sorted_names(fd: int) -> list[str]:
    """Names in byte order (Go's lexical order): code point order is the same for any name
    without undecodable bytes, and cheaper to get."""
    names = os.listdir(fd)
    if "".join(names).isascii():
        names.sort()
    else:
        names.sort(key=os.fsencode)
    return names


def lstat_all(fd: int, names: list[str]) -> tuple[list[os.stat_result | None], bool]:
    """``lstat`` of each name in directory ``fd`` (``None`` for one removed meanwhile), and
    whether all of them were found."""
    lstat = os.lstat
    try:
        return [lstat(name, dir_fd=fd) for name in names], True
    except (FileNotFoundError, NotADirectoryError):
        pass
    infos: list[os.stat_result | None] = []
    for name in names:
        try:
            infos.append(lstat(name, dir_fd=fd))
        except (FileNotFoundError, NotADirectoryError):
            infos.append(None)
    return infos, False
