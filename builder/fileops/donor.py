"""Re-running a COPY after a few context files changed, without copying the rest again.

When a ``COPY`` misses the cache only because some of the files it reads changed, the last
layer built for the same step (same Dockerfile position, same op, same layers below) already
holds every other file exactly as this copy would write it. Snapshots never change once
made (overlay copies a lower file up before writing it), so such a file can be *hard-linked*
from that snapshot into this step's upper dir instead of being copied again: a one-file
change to ``COPY . /app`` over 300 MB then copies one file, not 300 MB.

A file is taken from the donor only when all of these hold, else it is copied as usual:

* its entry digest in this build's selection equals the one recorded for the donor's
  (path, type, mode, size and content digest are in it);
* the donor's file at the same destination is a regular file with the size, mode, owner
  and modification time this copy would give it, and neither it nor the source has
  extended attributes;
* the source is not hard-linked (the copier keeps hard links between copied files), no
  other file of this copy took the same donor inode (two separate files must not become
  one), and the destination's directory already exists in the upper dir (so the link
  needs no directory the overlay did not make).

Below a directory the copy made, the copier writes straight into the upper dir, and a
claimed file is linked there at once. Elsewhere it writes through the overlay mount, and a
hard link cannot cross from the store's filesystem into an overlay, so those claims are
linked into the upper dir after the overlay is unmounted (:meth:`DonorLayer.link_claimed`);
linking touches the directories' times, which are put back. A donor file that vanished
meanwhile (a concurrent prune) is copied from the source instead.

With the donor layer's index (:mod:`builder.layers.layerindex`, checked by the caller to
describe this very snapshot) the donor's side is read from the index instead of from each
file: an indexed file's inode, type, size, mode, owner and time are those recorded when the
layer was written (snapshots never change), and only files without extended attributes are
indexed. That spares an ``lstat`` and a ``listxattr`` per file of a large copy.

Better still, when the donor's snapshot can be taken out of the store
(:mod:`builder.store.takeover`), its tree *is* the step's upper dir (``in_place``): an
unchanged file is then already where the copy writes it, and a claim leaves it there,
linking nothing. Only an indexed file is kept so (the index says what is there); any other
is written again by the copier. Where the taken tree holds an entry of another type than
the copy writes (a directory where a file goes, or the reverse), the copier raises
:class:`DonorConflictError`, and the step starts over in an empty upper dir without a donor.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import TYPE_CHECKING

from builder.lazyclasses import dataclass

if TYPE_CHECKING:
    from builder.fileops.changeset import ChangeSet
    from builder.layers.layerindex import FileKey

#: Copies a source file to a path and gives it the copier's metadata (the fallback).
CopyFile = Callable[[str, str, os.stat_result], None]


class AllBut:
    """Every name but ``excluded``: the unchanged files of a selection known by what changed
    (:class:`cache.filechanges.FileChanges`), without listing the 20,000 others."""

    def __init__(self, excluded: Collection[str]) -> None:
        self._excluded = frozenset(excluded)

    def __contains__(self, name: object) -> bool:
        return name not in self._excluded


class DonorConflictError(Exception):
    """The donor's tree, taken as the upper dir, holds an entry of another type where the
    copy writes: the step must start over without it (the copy itself may be valid)."""


@dataclass(frozen=True)
class _Claim:
    donor: str
    inode: tuple[int, int]
    source: str
    info: os.stat_result
    copy_file: CopyFile


@dataclass(frozen=True)
class _Directory:
    """One directory the copier writes files into, as the donor layer sees it.

    Worked out once per directory, so that claiming each of its files costs string
    concatenation, not path arithmetic. Each prefix is empty or ends with ``/``:
    ``relative`` is the directory below the copy's root, ``donor`` its path in the donor's
    snapshot and ``target`` the path the copier writes files to. ``direct`` says ``target``
    is in the upper dir (files are linked at once) rather than below the mount.
    """

    relative: str
    donor: str
    target: str
    direct: bool


class DonorLayer:
    """The snapshot of the previous layer of one COPY step, and the files claimed from it.

    ``unchanged`` holds the selection names (as the context digest names them) whose
    entries are the same in the donor's selection and in this one. ``dest_root`` is where
    the copier writes (the overlay mount); ``upper`` is that overlay's upper dir.
    """

    def __init__(
        self,
        root: os.PathLike[str] | str,
        unchanged: Collection[str] | AllBut,
        *,
        dest_root: os.PathLike[str] | str,
        upper: os.PathLike[str] | str,
        index: Mapping[bytes, tuple[int, int, FileKey]] | None = None,
        in_place: bool = False,
        graveyard: os.PathLike[str] | str | None = None,
    ) -> None:
        #: The donor layer's index entries by path below the copy's root, if it has one.
        self._index = index
        #: The donor's tree is the upper dir itself (``root`` is ``upper``): see the module doc.
        self.in_place = in_place
        #: The time of this copy, given to the directories :meth:`restamp_items` restamps.
        self.now_ns = time.time_ns()
        #: Where the files the copy replaces in a taken tree are kept alive (see
        #: :meth:`replacing`), on the upper dir's filesystem; made on first use.
        self._graveyard = os.fspath(graveyard) if graveyard is not None else None
        self._buried = 0
        # Resolved once, so the per-directory symlink check compares like with like.
        self.root = os.path.realpath(root)
        self.unchanged = unchanged if isinstance(unchanged, AllBut) else frozenset(unchanged)
        self.dest_root = os.fspath(dest_root)
        self._dest_prefix = self.dest_root.rstrip("/") + "/"
        self.upper = os.fspath(upper)
        self._upper_prefix = self.upper.rstrip("/") + "/"
        self._claims: dict[str, _Claim] = {}
        #: What changed since the previous run, when the probe could tell (a tree taken in
        #: place is then brought up to date entry by entry, :mod:`builder.fileops.changeset`).
        self.changes: ChangeSet | None = None
        #: Where the copy's item went, below ``dest_root`` (:meth:`note_item`).
        self.items: list[str] = []
        #: The entry names and times of the directories at and above each item in a taken
        #: tree, as the previous copy left them (``None``: not a directory there).
        self._before: dict[str, tuple[frozenset[str], int, int] | None] = {}
        #: Files linked so far: at once (written straight into the upper dir), and those
        #: claimed through the mount once :meth:`link_claimed` has linked them.
        self.linked = 0
        #: Files left where they are in a tree taken as the upper dir (``in_place``), by
        #: their index keys (paths below the root): their entries hold for the layer written.
        self.kept_names: list[bytes] = []
        #: Directories (index keys, ending in ``/``) whose whole subtree is the previous
        #: layer's, untouched (:mod:`builder.fileops.changeset`).
        self.clean_dirs: list[bytes] = []
        #: Called with the index key of the one regular file a re-run wrote anew into a tree
        #: taken in place, as soon as it is written, when it is the only one
        #: (:mod:`builder.fileops.changeset`): its entry may be foretold.
        self.on_rewritten: Callable[[bytes], None] | None = None
        self._inodes: set[tuple[int, int]] = set()
        self._ready: dict[str, bool] = {}
        self._directories: dict[str, _Directory | None] = {}

    @property
    def index(self) -> Mapping[bytes, tuple[int, int, FileKey]] | None:
        """The donor layer's index entries, by path below the root."""
        return self._index

    @property
    def kept(self) -> int:
        """How many files of a taken tree are left where they are."""
        return len(self.kept_names)

    @property
    def claimed(self) -> int:
        """How many files are (or will be, once the mount is gone) taken, not copied."""
        return self.linked + self.kept + len(self._claims)

    def claim(
        self,
        name: str,
        source: os.PathLike[str] | str,
        target: os.PathLike[str] | str,
        info: os.stat_result,
        *,
        mode: int,
        owner: tuple[int, int] | None,
        copy_file: CopyFile,
    ) -> bool:
        """Take ``target`` from the donor if it holds the same file (see the module doc).

        ``name`` is the source's name in the selection, ``mode`` the permission bits the
        copy gives it and ``owner`` its owner (``None`` when the copier cannot chown).
        ``copy_file`` writes it the usual way if the link fails later.
        """
        if name not in self.unchanged or info.st_nlink != 1:
            return False
        parent, _, filename = os.fspath(target).rpartition("/")
        try:
            directory = self._directories[parent]
        except KeyError:
            directory = self._directories[parent] = self._directory(parent)
        if directory is None:
            return False
        donor = directory.donor + filename
        key = os.fsencode(directory.relative + filename)
        indexed = self._index.get(key) if self._index else None
        if indexed is None and self.in_place:
            return False
        if indexed is not None:
            device, inode_number, size, mtime_ns, file_mode, uid, gid = indexed[2]
            donor_xattrs = False  # only files without them are indexed
        else:
            try:
                found = os.lstat(donor)
            except OSError:
                return False
            device, inode_number, size = found.st_dev, found.st_ino, found.st_size
            mtime_ns, file_mode, uid, gid = found.st_mtime_ns, found.st_mode, found.st_uid, found.st_gid
            donor_xattrs = _has_xattrs(donor)
        inode = (device, inode_number)
        if (
            not stat.S_ISREG(file_mode)
            or not matches_key((device, inode_number, size, mtime_ns, file_mode, uid, gid), info, mode, owner)
            or inode in self._inodes
            or donor_xattrs
            or _has_xattrs(source)
        ):
            return False
        if self.in_place:
            self._inodes.add(inode)
            self.kept_names.append(key)
            return True
        if directory.direct:
            if not _link(donor, directory.target + filename):
                return False
            self._inodes.add(inode)
            self.linked += 1
            return True
        relative = directory.relative + filename
        replaced = self._claims.get(relative)
        if replaced is not None:
            self._inodes.discard(replaced.inode)
        self._inodes.add(inode)
        self._claims[relative] = _Claim(donor, inode, os.fspath(source), info, copy_file)
        return True

    def _directory(self, target: str) -> _Directory | None:
        """The directory ``target`` (where the copier writes) as a place to claim files in;
        ``None`` when no file there can be taken from the donor. Asked at the first claim
        in each directory, as late as the files it holds."""
        # The copier writes below a directory it made straight into the upper dir: link there
        # at once. Elsewhere it writes through the mount: link after the unmount.
        text = target + "/"
        direct = text.startswith(self._upper_prefix)
        relative = text[len(self._upper_prefix) :] if direct else self._relative(text)
        if relative is None or not self._directory_ready(relative.rstrip("/")):
            return None
        return _Directory(relative, os.path.join(self.root, relative), text, direct)

    def replacing(self, target: str) -> None:
        """The copier is about to remove ``target`` (below the mount) to write another file
        there. In a taken tree that may be one of the tree's own files: it is linked into the
        graveyard first, so that its inode outlives the step. Otherwise the new file could
        get its inode number at once (ext4 reuses them), and with the same size, time and
        mode pass for it in the index: the layer would be given the old file's bytes."""
        if not self.in_place or self._graveyard is None:
            return
        relative = self._relative(target)
        if relative is None:
            return
        if not self._buried:
            os.makedirs(self._graveyard, exist_ok=True)
        try:
            os.link(
                os.path.join(self.upper, relative), f"{self._graveyard}/{self._buried}", follow_symlinks=False
            )
        except FileNotFoundError:
            return  # not in the upper dir: a file of the layers below
        self._buried += 1

    def keep(self, keys: Iterable[bytes]) -> None:
        """Files of the taken tree (by their index keys) stay as they are: what the copy
        would write there (:mod:`builder.fileops.changeset` found them so)."""
        self.kept_names.extend(keys)

    def relative_of(self, target: os.PathLike[str] | str) -> str | None:
        """``target`` (below the mount) as a path below the root, else ``None``."""
        return self._relative(os.fspath(target))

    def note_item(self, target: os.PathLike[str] | str) -> None:
        """The copy writes its item (the path the COPY names) at ``target``."""
        relative = self._relative(os.fspath(target))
        if relative is not None:
            self.items.append(relative)
            if self.in_place:
                for path in self._item_chain(relative):
                    if path not in self._before:
                        self._before[path] = _entries_and_times(os.path.join(self.upper, path))

    def restamp_items(self, lower: os.PathLike[str] | str) -> None:
        """Give the directories at and above the copy's item, in a taken tree, their times
        (call once the mount is gone; ``lower`` shows the layers below).

        The copier sets the times of the directories below its item from their sources, not
        of these: a fresh copy makes them, or writes into them through the overlay, so they
        take the time of the copy, unless they are directories of the layers below that the
        overlay only copied up (it keeps their times). In the taken tree they hold the times
        of the previous copy. One whose entries are the ones the previous copy left keeps
        that time, as a directory does when only files below it are rewritten, whatever the
        kernel stamped meanwhile: then the new tar is the previous one up to the first
        changed file, and its hash resumes from the previous one's saved states instead of
        starting over at byte 145 (0.24 s for 335 MB). Each other one not as the layers
        below have it gets the copy's time (:attr:`now_ns`, fixed before the copy, so that
        it can be foretold).
        """
        chains: list[str] = []
        for item in self.items:
            chains += self._item_chain(item)
        restamp = []
        for path in dict.fromkeys(chains):
            full = os.path.join(self.upper, path)
            before = self._before.get(path)
            now = _entries_and_times(full) if before is not None else None
            if before is not None and now is not None and now[0] == before[0]:
                os.utime(full, ns=before[1:], follow_symlinks=False)
            else:
                restamp.append(path)
        for path in stale_times(self.upper, restamp, lower):
            os.utime(os.path.join(self.upper, path), ns=(self.now_ns, self.now_ns), follow_symlinks=False)

    def _item_chain(self, item: str) -> list[str]:
        """The directories at and above ``item`` (the item's own when it is a directory)."""
        return with_parents(item if os.path.isdir(os.path.join(self.upper, item)) else os.path.dirname(item))

    def release(self, target: os.PathLike[str] | str) -> None:
        """Forget a claim on ``target``: the copier is writing something else there."""
        if self._claims:
            claim = self._claims.pop(self._relative(os.fspath(target)) or "", None)
            if claim is not None:
                self._inodes.discard(claim.inode)

    def link_claimed(self) -> None:
        """Link every claimed file into the upper dir (call once the overlay is unmounted),
        keeping the times of the directories they land in."""
        parents = {os.path.dirname(relative) for relative in self._claims}
        times = {}
        for parent in parents:
            found = os.lstat(os.path.join(self.upper, parent))
            times[parent] = (found.st_atime_ns, found.st_mtime_ns)
        for relative, claim in self._claims.items():
            target = os.path.join(self.upper, relative)
            if _link(claim.donor, target):
                self.linked += 1
                continue
            if os.path.lexists(target):
                os.unlink(target)
            claim.copy_file(claim.source, target, claim.info)
        for parent, (atime_ns, mtime_ns) in times.items():
            os.utime(os.path.join(self.upper, parent), ns=(atime_ns, mtime_ns), follow_symlinks=False)
        self._claims.clear()

    def _relative(self, text: str) -> str | None:
        """The path ``text`` below the copy's root (the copier resolved it there), else ``None``."""
        if not text.startswith(self._dest_prefix) or "/../" in text or text.endswith("/.."):
            return None
        return text[len(self._dest_prefix) :]

    def _directory_ready(self, relative: str) -> bool:
        """Whether a directory exists as a real directory both in the upper dir and in the
        donor, with no symlink on the way in the donor (memoized per directory)."""
        known = self._ready.get(relative)
        if known is None:
            upper = os.path.join(self.upper, relative)
            donor = os.path.join(self.root, relative)
            known = (
                os.path.isdir(upper)
                and not os.path.islink(upper)
                and os.path.realpath(donor) == os.path.normpath(donor)
                and os.path.isdir(donor)
            )
            self._ready[relative] = known
        return known


def _link(donor: str, target: str) -> bool:
    """Hard-link ``donor`` at ``target``, replacing the whiteout the overlay left there when
    the copy cleared a lower file; false when the donor cannot be linked."""
    try:
        os.link(donor, target, follow_symlinks=False)
        return True
    except FileExistsError:
        os.unlink(target)
    except OSError:
        return False
    try:
        os.link(donor, target, follow_symlinks=False)
        return True
    except OSError:
        return False


def matches_key(key: FileKey, info: os.stat_result, mode: int, owner: tuple[int, int] | None) -> bool:
    """Whether the file ``key`` describes is what the copier makes of source ``info``: the
    same type, size (for a non-directory) and time, permission bits ``mode`` and, when
    given, ``owner`` (what its tar header holds, with the content its digest vouches for)."""
    _device, _inode, size, mtime_ns, file_mode, uid, gid = key
    return (
        stat.S_IFMT(file_mode) == stat.S_IFMT(info.st_mode)
        and (stat.S_ISDIR(file_mode) or size == info.st_size)
        and mtime_ns == info.st_mtime_ns
        and stat.S_IMODE(file_mode) == mode
        and (owner is None or (uid, gid) == owner)
    )


def stale_times(
    tree: os.PathLike[str] | str, paths: Iterable[str], lower: os.PathLike[str] | str
) -> list[str]:
    """Those of ``paths`` (below the root) that are directories in ``tree`` whose time is
    not the one the layers below (shown at ``lower``) give them."""
    stale = []
    for path in dict.fromkeys(paths):
        mine, theirs = _lstat(os.path.join(tree, path)), _lstat(os.path.join(lower, path))
        if mine is not None and stat.S_ISDIR(mine.st_mode):
            if theirs is None or theirs.st_mtime_ns != mine.st_mtime_ns:
                stale.append(path)
    return stale


def with_parents(path: str) -> list[str]:
    """``a/b/c`` → ``a``, ``a/b``, ``a/b/c`` (nothing for the root)."""
    parts = [part for part in path.split("/") if part]
    return ["/".join(parts[: count + 1]) for count in range(len(parts))]


def _entries_and_times(path: str) -> tuple[frozenset[str], int, int] | None:
    """The entry names of directory ``path`` and its access and modification times (ns);
    ``None`` when it is not a directory."""
    info = _lstat(path)
    if info is None or not stat.S_ISDIR(info.st_mode):
        return None
    return frozenset(os.listdir(path)), info.st_atime_ns, info.st_mtime_ns


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _has_xattrs(path: os.PathLike[str] | str) -> bool:
    try:
        return bool(os.listxattr(path, follow_symlinks=False))
    except OSError:
        return True
