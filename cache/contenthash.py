"""Content digests of what a COPY or ADD reads: exactly the files it selects, nothing else.

The selection is the copier's own (:mod:`builder.fileops.copy`): the same source tree seen
through ``.dockerignore``, the same wildcard expansion, the same ``--exclude`` and
``--parents`` rules, a named symlink followed and links below it kept as links. So a change
to an ignored or unselected file changes no digest, and any change the copier would carry
into the layer does.

Each selected entry contributes its path, type, permission bits, size and content digest
(link target for a symlink, device number for a device). Owners count only where the copy
keeps them (:func:`digest_tree` for another stage or image); a context copy writes ``0:0``
whatever the host owners are, so they do not count there. Modification times and xattrs do
not count, as in BuildKit: a touched but unchanged file reuses the cached layer.

File contents are read only when the persistent :class:`~cache.statcache.StatCache` has no
digest for the file's current ``lstat``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import posixpath
import stat
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from builder.context import BuildContext
from builder.errors import ContextError
from builder.fileops.sources import SourceTree, has_wildcards, literal_name
from builder.patterns import PatternMatcher
from cache.statcache import RACY_WINDOW_NS, StatCache, TreeDigests, stat_key

_CHUNK = 1 << 20
#: Entry digests kept per file for explanations are shortened to this many hex digits.
SHORT_DIGEST_LENGTH = 16

#: What :meth:`_Walker._mark` records for a source that selects nothing.
_MARKS = frozenset({b"missing", b"no match", b"outside"})

_KIND_NAMES = {
    stat.S_IFREG: "file",
    stat.S_IFDIR: "dir",
    stat.S_IFLNK: "symlink",
    stat.S_IFCHR: "char",
    stat.S_IFBLK: "block",
    stat.S_IFIFO: "fifo",
    stat.S_IFSOCK: "socket",
}


class SourceDigest:
    """The digest of a selection, and (computed on first use) each path's short digest.

    ``files`` lets :func:`cache.explain.explain_miss` name the file that changed; a source
    that matched nothing appears as ``"<source path>": "missing"``. It is only needed when a
    step misses, so a fully cached build never computes it.
    """

    def __init__(self, digest: str, entry_lines: Mapping[str, bytes]) -> None:
        self.digest = digest
        self._entry_lines = entry_lines

    @functools.cached_property
    def files(self) -> Mapping[str, str]:
        return {
            name: line.decode() if line in _MARKS else hashlib.sha256(line).hexdigest()[:SHORT_DIGEST_LENGTH]
            for name, line in self._entry_lines.items()
        }

    def __repr__(self) -> str:
        return f"SourceDigest({self.digest!r}, {len(self._entry_lines)} entries)"


class ContextHasher:
    """Digests of context selections, remembering file digests in ``cache_path`` (SQLite).

    One hasher serves a whole build; stages on several threads take turns (one lock, since
    the stat cache's connection is shared). Close it at the end, or use it as a context
    manager.
    """

    def __init__(self, cache_path: Path, *, racy_window_ns: int = RACY_WINDOW_NS) -> None:
        self.stat_cache = StatCache(cache_path, racy_window_ns=racy_window_ns)
        #: How many files had their content read (the rest came from the stat cache).
        self.files_read = 0
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self.stat_cache.flush()
            self.stat_cache.close()

    def __enter__(self) -> ContextHasher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def digest_sources(
        self,
        context: BuildContext,
        paths: Sequence[str],
        *,
        exclude: Sequence[str] = (),
        parents: bool = False,
    ) -> SourceDigest:
        """The digest of what ``COPY [--exclude] [--parents] <paths> ...`` reads from ``context``."""
        matcher = context.matcher

        def keep_dir(rel: str) -> bool:
            return matcher.dir_may_contain_included(rel) and next(iter(context.walk(rel)), None) is not None

        tree = SourceTree(context.root, excluded=matcher.excluded, keep_dir=keep_dir)
        return self._digest(tree, paths, exclude, parents=parents, keep_owners=False)

    def digest_tree(
        self, root: Path, paths: Sequence[str] = (".",), *, exclude: Sequence[str] = ()
    ) -> SourceDigest:
        """The digest of ``paths`` below a plain directory (a stage's or image's rootfs),
        owners included since such copies keep them.

        Nothing is remembered across calls: such a root is usually a temporary mount, and a
        stage is better named by its top layer's chain id, which costs nothing to compute.
        """
        return self._digest(SourceTree(root), paths, exclude, parents=False, keep_owners=True)

    def _digest(
        self,
        tree: SourceTree,
        paths: Sequence[str],
        exclude: Sequence[str],
        *,
        parents: bool,
        keep_owners: bool,
    ) -> SourceDigest:
        walker = _Walker(tree, self, PatternMatcher(exclude) if exclude else None, keep_owners)
        with self._lock:
            # Only a context (kept, no owners) is worth remembering across builds.
            walker.digests = self.stat_cache.tree(tree.root) if not keep_owners else TreeDigests({}, 0)
            for path in paths:
                if parents:
                    walker.add_with_parents(path)
                else:
                    walker.add(path)
            self.stat_cache.flush()
        return SourceDigest("sha256:" + walker.hasher.hexdigest(), walker.lines)

    def file_digest(self, digests: TreeDigests, relative: str, host_path: str, info: os.stat_result) -> str:
        """The sha256 hex of a regular file's content, from the stat cache when it is fresh."""
        key = stat_key(info)
        known = digests.get(relative, key)
        if known is not None:
            return known
        started_ns = time.time_ns()
        sha256, after = _hash_file(host_path)
        self.files_read += 1
        if stat_key(after) == key:
            digests.remember(relative, key, sha256, hashed_at_ns=started_ns)
        return sha256


def _hash_file(host_path: str) -> tuple[str, os.stat_result]:
    """Read a file without following a final symlink; return its digest and its ``fstat``
    after reading (a file that changed meanwhile is hashed but not remembered)."""
    try:
        fd = os.open(host_path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as err:
        name = os.path.basename(host_path)
        raise ContextError(f"cannot read {name} in the build context: {err.strerror}") from err
    with open(fd, "rb") as reader:
        hasher = hashlib.sha256()
        while chunk := reader.read(_CHUNK):
            hasher.update(chunk)
        return hasher.hexdigest(), os.fstat(reader.fileno())


class _Walker:
    """Feeds the entries one selection copies, in the copier's order, into one hash."""

    def __init__(
        self,
        tree: SourceTree,
        hasher_owner: ContextHasher,
        exclude: PatternMatcher | None,
        keep_owners: bool,
    ) -> None:
        self.tree = tree
        self.owner = hasher_owner
        self.exclude: Callable[[str], bool] = exclude.excluded if exclude else _never
        self.exclude_keep_dir: Callable[[str], bool] = exclude.dir_may_contain_included if exclude else _never
        self.keep_owners = keep_owners
        self.hasher = hashlib.sha256()
        self.lines: dict[str, bytes] = {}
        self.digests = TreeDigests({}, 0)

    def add(self, path: str) -> None:
        """One source as ``COPY`` without ``--parents`` reads it."""
        relative = _clean(path)
        if relative is None:
            self._mark(path, "outside")
            return
        matches = self.tree.expand(relative)
        if matches is None:
            matches = ["/".join(literal_name(part) for part in relative.split("/") if part)]
        else:
            base = _wildcard_base(relative)
            matches = [match for match in matches if not self.exclude(posixpath.relpath(match, base))]
            if not matches:
                self._mark(path, "no match")
        for match in matches:
            source = self.tree.resolve(match)
            info = self._top_lstat(source)
            if info is None:
                self._mark(match or ".", "missing")
                continue
            self._entry(match or ".", source, "", info)

    def add_with_parents(self, path: str) -> None:
        """One source as ``COPY --parents`` reads it: paths below the ``/./`` pivot kept."""
        pivot, separator, pattern = path.partition("/./")
        if not separator:
            pivot, pattern = "", path
        pivot_rel, pattern_rel = _clean(pivot), _clean(pattern)
        if pivot_rel is None or pattern_rel is None:
            self._mark(path, "outside")
            return
        full = posixpath.join(pivot_rel, pattern_rel) if pivot_rel else pattern_rel
        matches = self.tree.expand(full)
        if matches is None:
            literal = "/".join(literal_name(part) for part in full.split("/") if part)
            matches = [literal]
        pivot_dir = self.tree.resolve(pivot_rel)
        for match in matches:
            source = self.tree.resolve(match, follow_final=False)
            below_pivot = os.path.relpath(source, pivot_dir)
            if below_pivot.startswith("../"):
                continue
            info = self.tree.lstat(source)
            if info is None:
                self._mark(match, "missing")
                continue
            parts = below_pivot.split("/")[:-1]
            for depth in range(1, len(parts) + 1):
                above = "/".join(parts[:depth])
                above_path = pivot_dir / above
                above_info = os.lstat(above_path)
                self._record(f"{pivot_rel}/./{above}", str(above_path), self.tree.rel(above_path), above_info)
            self._entry(f"{pivot_rel}/./{below_pivot}", source, below_pivot, info)

    def _top_lstat(self, source: Path) -> os.stat_result | None:
        if source == self.tree.root:
            return os.lstat(source)
        return self.tree.lstat(source)

    def _entry(self, name: str, host_path: Path, rel: str, info: os.stat_result) -> None:
        """An entry and, for a directory, everything below it the copier would write."""
        self._walk(name, str(host_path), self.tree.rel(host_path), rel, info)

    def _walk(self, name: str, host_path: str, tree_rel: str, rel: str, info: os.stat_result) -> None:
        """:meth:`_entry` on plain strings: this loop meets every file of the context, so it
        filters with the tree's predicates directly rather than through ``SourceTree.lstat``
        (the same rules, without a ``relpath`` per entry)."""
        is_dir = stat.S_ISDIR(info.st_mode)
        if rel and self.exclude(rel) and not (is_dir and self.exclude_keep_dir(rel)):
            return
        self._record(name, host_path, tree_rel, info)
        if not is_dir:
            return
        excluded, keep_dir = self.tree.excluded, self.tree.keep_dir
        # Regular files of a context copy take an inlined path (same line as _record):
        # a 20,000-file context spends most of a cached build's time in this loop.
        inline_files = not self.keep_owners
        known_digests = self.digests.entries
        has_exclude = self.exclude is not _never
        for child_name in _sorted_names(host_path):
            child_path = f"{host_path}/{child_name}"
            child_tree_rel = f"{tree_rel}/{child_name}" if tree_rel else child_name
            try:
                child_info = os.lstat(child_path)
            except (FileNotFoundError, NotADirectoryError):
                continue  # removed while hashing; the copier would not see it either
            child_mode = child_info.st_mode
            if excluded(child_tree_rel) and not (stat.S_ISDIR(child_mode) and keep_dir(child_tree_rel)):
                continue
            child_rel = f"{rel}/{child_name}" if rel else child_name
            child_shown = child_name if name == "." else f"{name}/{child_name}"
            if inline_files and stat.S_ISREG(child_mode):
                if has_exclude and self.exclude(child_rel):
                    continue
                key = stat_key(child_info)
                known = known_digests.get(child_tree_rel)
                if known is not None and known[0] == key:
                    content = known[1]
                else:
                    content = self.owner.file_digest(self.digests, child_tree_rel, child_path, child_info)
                size = child_info.st_size
                line = f"{len(child_shown)}:{child_shown} file {child_mode & 0o7777:o} {size} {content}\n"
                encoded = line.encode("utf-8", "surrogatepass")
                self.hasher.update(encoded)
                self.lines[child_shown] = encoded
                continue
            self._walk(child_shown, child_path, child_tree_rel, child_rel, child_info)

    def _record(self, name: str, host_path: str, tree_rel: str, info: os.stat_result) -> None:
        """Hash one entry's line: ``<len>:<name> <kind> <perm bits> <size> <detail>[ <uid:gid>]``.

        The name is length-prefixed rather than quoted: unambiguous, and cheaper per entry.
        """
        mode = info.st_mode
        if stat.S_ISREG(mode):
            kind, size = "file", info.st_size
            detail = self.owner.file_digest(self.digests, tree_rel, host_path, info)
        else:
            kind, size = _KIND_NAMES.get(stat.S_IFMT(mode), "other"), 0
            if kind == "symlink":
                detail = json.dumps(os.readlink(host_path), ensure_ascii=False)
            elif kind in ("char", "block"):
                detail = f"{os.major(info.st_rdev)},{os.minor(info.st_rdev)}"
            else:
                detail = ""
        owner = f" {info.st_uid}:{info.st_gid}" if self.keep_owners else ""
        line = f"{len(name)}:{name} {kind} {mode & 0o7777:o} {size} {detail}{owner}\n"
        encoded = line.encode("utf-8", "surrogatepass")
        self.hasher.update(encoded)
        self.lines[name] = encoded

    def _mark(self, name: str, state: str) -> None:
        line = f"{len(name)}:{name} {state}\n".encode("utf-8", "surrogatepass")
        self.hasher.update(line)
        self.lines[name] = state.encode()


def _sorted_names(directory: str) -> list[str]:
    """Names in byte order (Go's lexical order): code point order is the same for any name
    without undecodable bytes, and cheaper to get."""
    names = os.listdir(directory)
    if all(name.isascii() for name in names):
        names.sort()
    else:
        names.sort(key=os.fsencode)
    return names


def _clean(path: str) -> str | None:
    """A source path relative to its root ("" for the root), ``None`` when it climbs out."""
    cleaned = posixpath.normpath(path.lstrip("/") or ".")
    if cleaned == ".." or cleaned.startswith("../"):
        return None
    return "" if cleaned == "." else cleaned


def _wildcard_base(relative: str) -> str:
    """The literal directories before a wildcard source's first wildcard component."""
    parts = relative.split("/")
    first = next(index for index, part in enumerate(parts) if has_wildcards(part))
    return "/".join(parts[:first]) or "."


def _never(_: str) -> bool:
    return False
