"""The walk below one selected entry: every entry a copy would write, as hashed lines.

Each entry contributes one line, ``<len>:<name> <kind> <perm bits> <size> <detail>[ <uid:gid>]``
(the name length-prefixed rather than quoted: unambiguous, and cheap), in the copier's
order: a directory's names in byte order, each subdirectory's entries right after its own
line. A regular file's detail is its content's sha256, a symlink's its JSON-quoted target,
a device's ``major,minor``.

A context rebuild meets the same tens of thousands of files every time, so the walk works
a directory at a time: one ``listdir`` and one ``lstat`` per name (relative to the
directory's descriptor), then, when the stat cache's :class:`~cache.statcache.DirRecord`
shows the same names with the same stat keys and the same rendering, the lines hashed last
time are fed as they are. Otherwise the directory's lines are made afresh (reading only the
files whose key changed) and remembered for next time.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from builder.errors import ContextError
from cache.listing import (
    StatKey,
    lstat_all,
    sorted_names,
    stat_key,
    stat_list,
)
from cache.statcache import (
    MAX_RENDERS,
    MTIME,
    DirRecord,
    FilterId,
    Rendered,
    RenderSignature,
    TreeDigests,
)

if TYPE_CHECKING:
    from cache.prescan import ContextScan

_CHUNK = 1 << 20
_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_OPEN_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC

#: ``rel path -> bool``, as :class:`builder.fileops.sources.SourceTree` takes them.
PathFilter = Callable[[str], bool]

_KIND_NAMES = {
    stat.S_IFREG: "file",
    stat.S_IFDIR: "dir",
    stat.S_IFLNK: "symlink",
    stat.S_IFCHR: "char",
    stat.S_IFBLK: "block",
    stat.S_IFIFO: "fifo",
    stat.S_IFSOCK: "socket",
}


def never(_: str) -> bool:
    return False


class Listing:
    """A directory's entry names in walk order and their ``lstat`` (``None`` for an entry
    gone meanwhile).

    A directory the walk took from the context scan it did not list itself: its entries are
    ``lstat``-ed when first asked for, which a copy re-run does only for the few directories
    it writes in.
    """

    __slots__ = ("_path", "_stats", "names")

    def __init__(self, names: list[str], stats: list[os.stat_result | None] | None, path: str = "") -> None:
        self.names = names
        self._stats = stats
        self._path = path

    @property
    def stats(self) -> list[os.stat_result | None]:
        if self._stats is None:
            try:
                fd = os.open(self._path, _OPEN_DIR)
            except OSError:
                self._stats = [None] * len(self.names)  # gone: so are its entries
            else:
                try:
                    self._stats, _complete = lstat_all(fd, self.names)
                finally:
                    os.close(fd)
        return self._stats


class TreeWalk:
    """Feeds entries into one hash, keeping the fed lines for :class:`SourceDigest.files`.

    ``excluded``/``keep_dir`` are the tree's filters (``.dockerignore``, by tree-relative
    path), ``exclude``/``exclude_keep_dir`` the copy's own ``--exclude`` (by path below the
    copied entry); ``filter_id`` names all of them, so that lines remembered under other
    filters are never replayed.
    """

    def __init__(
        self,
        digests: TreeDigests,
        *,
        excluded: PathFilter,
        keep_dir: PathFilter,
        exclude: PathFilter,
        exclude_keep_dir: PathFilter,
        filter_id: FilterId,
        keep_owners: bool,
    ) -> None:
        self.digests = digests
        self.excluded, self.keep_dir = excluded, keep_dir
        self.exclude, self.exclude_keep_dir = exclude, exclude_keep_dir
        self.filter_id = filter_id
        self.keep_owners = keep_owners
        self.hasher = hashlib.sha256()
        #: What was hashed, in order: chunks of entry lines, or ``(name, mark)``.
        self.pieces: list[bytes | tuple[str, bytes]] = []
        #: The same lines by directory (its name in the selection; ``""`` for the entries
        #: named at the top, marks included): a directory's own entries' lines, in order.
        self.groups: dict[str, list[bytes | tuple[str, bytes]]] = {"": []}
        #: Each directory's names and packed stat keys (``None`` when an entry vanished
        #: while listed), for :func:`fingerprint`.
        self.stat_lists: dict[str, tuple[str, bytes] | None] = {}
        #: How many files had their content read (the rest came from the stat cache).
        self.files_read = 0
        #: Each directory walked, by its name in the selection: its entries' names and
        #: ``lstat`` (``None`` for one gone meanwhile), as the walk met them.
        self.listings: dict[str, Listing] = {}
        #: The context's directories as a helper process listed them ahead of the walk
        #: (:mod:`cache.prescan`), by path in the tree; ``None`` to list each one here.
        self.scan: ContextScan | None = None
        #: Called once, at the first directory not as the last walk left it, with whether
        #: that is a directory the walk started at whose entry names changed (a copy
        #: re-run then restamps its item's directory, :meth:`DonorLayer.restamp_items`).
        self.on_change: Callable[[bool], None] | None = None
        self._started_ns = time.time_ns()
        self._buffer: memoryview | None = None  # made when the first file is read

    def walk(self, name: str, host_path: str, tree_rel: str, rel: str, info: os.stat_result) -> None:
        """An entry and, for a directory, everything below it the copier would write."""
        is_dir = stat.S_ISDIR(info.st_mode)
        if rel and self.exclude(rel) and not (is_dir and self.exclude_keep_dir(rel)):
            return
        self.record(name, host_path, tree_rel, info)
        if is_dir:
            self._directory(name, host_path, tree_rel, rel, top=True)

    def record(self, name: str, host_path: str, tree_rel: str, info: os.stat_result) -> None:
        """Hash one entry's line (nothing below it)."""
        if stat.S_ISREG(info.st_mode):
            detail = self._file_digest(host_path, tree_rel, info)
        else:
            detail = _detail(host_path, info)
        line = self._line(name, info, detail).encode("utf-8", "surrogatepass")
        self._feed(line)
        self.groups[""].append(line)

    def mark(self, name: str, state: str) -> None:
        """A source that selects nothing: hashed, and shown as ``state`` in the file list."""
        self.hasher.update(f"{len(name)}:{name} {state}\n".encode("utf-8", "surrogatepass"))
        self.pieces.append((name, state.encode()))
        self.groups[""].append((name, state.encode()))

    def _feed(self, chunk: bytes) -> None:
        if chunk:
            self.hasher.update(chunk)
            self.pieces.append(chunk)

    def _line(self, name: str, info: os.stat_result, detail: str) -> str:
        mode = info.st_mode
        kind = _KIND_NAMES.get(stat.S_IFMT(mode), "other")
        size = info.st_size if kind == "file" else 0
        owner = f" {info.st_uid}:{info.st_gid}" if self.keep_owners else ""
        return f"{len(name)}:{name} {kind} {mode & 0o7777:o} {size} {detail}{owner}\n"

    def _directory(self, name: str, host_path: str, tree_rel: str, rel: str, *, top: bool = False) -> None:
        """Everything below directory ``host_path``: its remembered lines when none of its
        entries changed, else lines made afresh."""
        record = self.digests.directory(tree_rel)
        signature: RenderSignature = (name, rel if self.exclude is not never else None, self.filter_id)
        rendered = self._scanned(record, signature, name, host_path, tree_rel)
        if rendered is None:
            rendered = self._listed(
                record, signature, name=name, host_path=host_path, tree_rel=tree_rel, rel=rel, top=top
            )
        segments = rendered.segments
        self.groups[name] = segments  # type: ignore[assignment]  # (bytes only)
        for index, subdir in enumerate(rendered.subdirs):
            self._feed(segments[index])
            self._directory(
                subdir if name == "." else f"{name}/{subdir}",
                f"{host_path}/{subdir}",
                f"{tree_rel}/{subdir}" if tree_rel else subdir,
                f"{rel}/{subdir}" if rel else subdir,
            )
        self._feed(segments[-1])

    def _scanned(
        self, record: DirRecord | None, signature: RenderSignature, name: str, host_path: str, tree_rel: str
    ) -> Rendered | None:
        """The remembered lines, when the context scan has already found the directory as
        its record has it; ``None`` to list it here."""
        if self.scan is None or record is None or self.scan.fingerprint(tree_rel) != record.fingerprint:
            return None
        rendered = record.rendered_for(signature)
        if rendered is not None:
            self.listings[name] = Listing(record.names, None, host_path)
            self.stat_lists[name] = (record.listing, record.packed_keys)
        return rendered

    def _listed(
        self,
        record: DirRecord | None,
        signature: RenderSignature,
        *,
        name: str,
        host_path: str,
        tree_rel: str,
        rel: str,
        top: bool,
    ) -> Rendered:
        """The directory listed here: its remembered lines when none of its entries changed
        (and they were rendered under ``signature``), else lines made afresh."""
        fd = os.open(host_path, _OPEN_DIR)
        try:
            names = sorted_names(fd)
            infos, complete = lstat_all(fd, names)
            self.listings[name] = Listing(names, infos)
            rendered = record.rendered_for(signature) if record is not None else None
            listed = stat_list(names, infos, complete)
            self.stat_lists[name] = listed
            if record is None or listed is None:
                renamed = changed = True
            else:
                renamed = record.listing != listed[0]
                changed = renamed or record.packed_keys != listed[1]
            if changed and self.on_change is not None:
                # Not for a directory merely not replayed (it holds an ignored directory).
                tell, self.on_change = self.on_change, None
                tell(top and renamed)
            if changed or rendered is None:
                rendered = self._render(
                    fd,
                    record,
                    signature,
                    names,
                    infos,
                    name=name,
                    host_path=host_path,
                    tree_rel=tree_rel,
                    rel=rel,
                )
        finally:
            os.close(fd)
        return rendered

    def _render(
        self,
        fd: int,
        record: DirRecord | None,
        signature: RenderSignature,
        names: list[str],
        infos: list[os.stat_result | None],
        *,
        name: str,
        host_path: str,
        tree_rel: str,
        rel: str,
    ) -> Rendered:
        """A directory's lines made afresh; its record is updated when anything changed."""
        known = record.known_digests() if record is not None else {}
        excluded, keep_dir, exclude, exclude_keep_dir = (
            self.excluded,
            self.keep_dir,
            self.exclude,
            self.exclude_keep_dir,
        )
        owners = self.keep_owners
        segments: list[bytes] = []
        subdirs: list[str] = []
        lines: list[str] = []
        # Replaying these lines is right when the same names with the same stat keys under
        # the same signature make the same lines: filters are functions of the path, except
        # whether the tree keeps an excluded directory (that depends on what lies below it),
        # and an entry changed within the racy window could change again unseen.
        replayable = True
        seen_names: list[str] = []
        seen_keys: list[StatKey] = []
        seen_digests: list[str | None] = []
        for child_name, info in zip(names, infos, strict=True):
            if info is None:
                replayable = False  # removed while hashing; the copier would not see it either
                continue
            mode = info.st_mode
            key = stat_key(info)
            seen_names.append(child_name)
            seen_keys.append(key)
            remembered = known.get(child_name)
            digest = remembered[1] if remembered is not None and remembered[0] == key else None
            seen_digests.append(digest)
            is_dir = stat.S_ISDIR(mode)
            child_tree_rel = f"{tree_rel}/{child_name}" if tree_rel else child_name
            if excluded is not never and excluded(child_tree_rel):
                if not is_dir:
                    continue
                replayable = False
                if not keep_dir(child_tree_rel):
                    continue
            child_rel = f"{rel}/{child_name}" if rel else child_name
            if exclude is not never and exclude(child_rel) and not (is_dir and exclude_keep_dir(child_rel)):
                continue
            if not is_dir and self._started_ns - key[MTIME] < self.digests.racy_window_ns:
                replayable = False
            shown = child_name if name == "." else f"{name}/{child_name}"
            if stat.S_ISREG(mode):
                if digest is None:
                    digest, trusted = self._hash(child_name, fd, key)
                    if trusted:
                        seen_digests[-1] = digest
                    else:
                        replayable = False
                owner = f" {info.st_uid}:{info.st_gid}" if owners else ""
                lines.append(f"{len(shown)}:{shown} file {mode & 0o7777:o} {info.st_size} {digest}{owner}\n")
                continue
            lines.append(self._line(shown, info, _detail(f"{host_path}/{child_name}", info)))
            if is_dir:
                segments.append("".join(lines).encode("utf-8", "surrogatepass"))
                subdirs.append(child_name)
                lines.clear()
        segments.append("".join(lines).encode("utf-8", "surrogatepass"))
        rendered = Rendered(signature, segments, subdirs)
        updated = DirRecord.of(seen_names, seen_keys, seen_digests, [rendered] if replayable else [])
        if record is not None and (record.listing, record.packed_keys) == (
            updated.listing,
            updated.packed_keys,
        ):
            # Nothing changed but the signature: the other renderings still hold.
            others = [kept for kept in record.renders if kept.signature != signature]
            updated.renders = (updated.renders + others)[:MAX_RENDERS]
        if record is None or not record.same_as(updated):
            self.digests.store(tree_rel, updated)
        return rendered

    def _hash(self, path: str, dir_fd: int | None, key: StatKey) -> tuple[str, bool]:
        """Read file ``path`` (relative to directory ``dir_fd`` if given): its sha256 hex, and
        whether it may be remembered (unchanged while read, and not racily new)."""
        started_ns = time.time_ns()
        if self._buffer is None:
            self._buffer = memoryview(bytearray(_CHUNK))
        sha256, after = _hash_file(path, dir_fd, self._buffer)
        self.files_read += 1
        trusted = stat_key(after) == key and started_ns - key[MTIME] >= self.digests.racy_window_ns
        return sha256, trusted

    def _file_digest(self, host_path: str, tree_rel: str, info: os.stat_result) -> str:
        """A regular file named on its own (not met in a directory walk), remembered in its
        directory's record."""
        parent, _, file_name = tree_rel.rpartition("/")
        record = self.digests.directory(parent)
        key = stat_key(info)
        if record is not None and file_name in record.names:
            index = record.names.index(file_name)
            if record.keys[index] == key and record.digests[index] is not None:
                return record.digests[index]  # type: ignore[return-value]
        sha256, trusted = self._hash(host_path, None, key)
        if trusted:
            names, keys, digests = (record.names, record.keys, record.digests) if record else ([], [], [])
            if file_name in names:
                index = names.index(file_name)
                keys[index], digests[index] = key, sha256
            else:
                names.append(file_name)
                keys.append(key)
                digests.append(sha256)
            self.digests.store(parent, DirRecord.of(names, keys, digests, []))
        return sha256


def _detail(host_path: str, info: os.stat_result) -> str:
    """The detail of an entry that is not a regular file: a symlink's target, a device's
    number, nothing for the rest."""
    if stat.S_ISLNK(info.st_mode):
        return json.dumps(os.readlink(host_path), ensure_ascii=False)
    if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode):
        return f"{os.major(info.st_rdev)},{os.minor(info.st_rdev)}"
    return ""


def _hash_file(path: str, dir_fd: int | None, buffer: memoryview) -> tuple[str, os.stat_result]:
    """Read a file without following a final symlink; return its digest and its ``fstat``
    after reading (a file that changed meanwhile is hashed but not remembered).

    Reads go into ``buffer`` with plain syscalls: a context is mostly small files, for
    which a file object and a fresh megabyte per read cost more than the reading.
    """
    try:
        fd = os.open(path, _OPEN_FILE, dir_fd=dir_fd)
    except OSError as err:
        name = os.path.basename(path)
        raise ContextError(f"cannot read {name} in the build context: {err.strerror}") from err
    try:
        hasher = hashlib.sha256()
        while count := os.readv(fd, (buffer,)):
            hasher.update(buffer[:count])
        return hasher.hexdigest(), os.fstat(fd)
    finally:
        os.close(fd)
