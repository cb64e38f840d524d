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
digest for the file's current ``lstat``; the walk itself is :mod:`cache.treewalk`'s.
"""

from __future__ import annotations

import functools
import hashlib
import os
import posixpath
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from builder.context import BuildContext
from builder.fileops.sources import SourceTree, has_wildcards, literal_name
from builder.patterns import PatternMatcher
from cache.listing import fingerprint
from cache.statcache import RACY_WINDOW_NS, StatCache, TreeDigests
from cache.treewalk import Listing, TreeWalk, never

if TYPE_CHECKING:
    from cache.prescan import ContextScan

#: Entry digests kept per file are shortened to this many hex digits. They name the file
#: that changed, and a re-run COPY links every file whose digest is unchanged from its
#: previous layer (:mod:`builder.fileops.donor`), so they must not collide even when
#: someone tries: 128 bits.
SHORT_DIGEST_LENGTH = 32


class SourceDigest:
    """The digest of a selection, and (computed on first use) each path's short digest.

    ``files`` lets :func:`cache.explain.explain_miss` name the file that changed; a source
    that matched nothing appears as ``"<source path>": "missing"``. It is only needed when a
    step misses, so a fully cached build never computes it: the walk keeps the hashed lines
    as it fed them (often a whole directory's at once), and they are split up here.

    The same lines are kept by directory (``groups``: a directory's own entries, by its name
    in the selection; ``""`` for what the sources name at the top), so that a miss compares
    a directory at a time (:mod:`cache.filechanges`): 20,000 files in 100 directories with one
    changed file split up 200 lines, not 20,000.
    """

    def __init__(
        self,
        digest: str,
        pieces: Sequence[bytes | tuple[str, bytes]],
        listings: Mapping[str, Listing] | None = None,
        groups: Mapping[str, Sequence[bytes | tuple[str, bytes]]] | None = None,
        stat_lists: Mapping[str, tuple[str, bytes] | None] | None = None,
    ) -> None:
        self.digest = digest
        self._pieces = pieces
        #: Each directory's entries and their ``lstat`` as the walk met them, by the
        #: directory's name in the selection (:attr:`cache.treewalk.TreeWalk.listings`).
        self.listings = listings or {}
        self.groups: Mapping[str, Sequence[bytes | tuple[str, bytes]]] = (
            groups if groups is not None else {"": pieces}
        )
        self._stat_lists = stat_lists or {}
        self._group_files: dict[str, dict[str, str]] = {}

    @functools.cached_property
    def files(self) -> Mapping[str, str]:
        """``name → short digest of its hashed line`` (or the mark of a source that selects
        nothing), for the whole selection."""
        files: dict[str, str] = {}
        for piece in self._pieces:
            _add_piece(piece, files)
        return files

    def files_of(self, group: str) -> Mapping[str, str]:
        """:attr:`files` of one group (a directory's own entries, or ``""``)."""
        files = self._group_files.get(group)
        if files is None:
            files = {}
            for piece in self.groups.get(group, ()):
                _add_piece(piece, files)
            self._group_files[group] = files
        return files

    @functools.cached_property
    def group_digests(self) -> Mapping[str, str]:
        """Each group's lines as one short digest: equal ones name the same entries, each
        with the same type, mode, size and content."""
        digests: dict[str, str] = {}
        for group, pieces in self.groups.items():
            hasher = hashlib.sha256()
            for piece in pieces:
                hasher.update(piece if isinstance(piece, bytes) else _mark_line(*piece))
            digests[group] = hasher.hexdigest()[:SHORT_DIGEST_LENGTH]
        return digests

    @functools.cached_property
    def fingerprints(self) -> Mapping[str, str | None]:
        """Each directory's :func:`cache.listing.fingerprint` (names and stat keys)."""
        return {name: fingerprint(stat_list) for name, stat_list in self._stat_lists.items()}

    def __repr__(self) -> str:
        return f"SourceDigest({self.digest!r}, {len(self.files)} entries)"


def _add_piece(piece: bytes | tuple[str, bytes], files: dict[str, str]) -> None:
    """Add the short digests of one fed piece (a chunk of lines, or a mark) to ``files``."""
    if isinstance(piece, tuple):
        files[piece[0]] = piece[1].decode()
    elif not (piece.isascii() and _ascii_line_digests(piece, files)):
        sha256 = hashlib.sha256
        for name, line in split_lines(piece):
            files[name] = sha256(line).hexdigest()[:SHORT_DIGEST_LENGTH]


def _mark_line(name: str, state: bytes) -> bytes:
    return f"{len(name)}:{name} ".encode("utf-8", "surrogatepass") + state + b"\n"


def split_lines(chunk: bytes) -> Iterator[tuple[str, bytes]]:
    """The ``(name, line)`` of each entry line in ``chunk``: ``<len>:<name> ...\\n``.

    The name is skipped by its length, so a name holding a newline or a colon is no trouble.
    The length counts characters; in an all-ASCII chunk (nearly every one) that is bytes, and
    the chunk is cut up as it is, without decoding it whole and encoding each line again.
    """
    if chunk.isascii():
        yield from _split_ascii_lines(chunk)
        return
    text = chunk.decode("utf-8", "surrogatepass")
    position = 0
    while position < len(text):
        colon = text.index(":", position)
        name_end = colon + 1 + int(text[position:colon])
        line_end = text.index("\n", name_end) + 1
        yield text[colon + 1 : name_end], text[position:line_end].encode("utf-8", "surrogatepass")
        position = line_end


_SPACE, _NEWLINE = ord(" "), ord("\n")


def _ascii_line_digests(chunk: bytes, files: dict[str, str]) -> bool:
    """:attr:`SourceDigest.files` of an all-ASCII chunk, cut at each line end (the common
    case, and the quick one); false at the first line that does not hold its name's length
    of name, and the chunk is then split by the lengths (:func:`split_lines`). A name that
    holds a line end is the only way to cut a line short, and the first line cut short has
    too few characters after its length: no line after it is ever looked at."""
    sha256 = hashlib.sha256
    try:
        for line in chunk.splitlines(keepends=True):
            colon = line.index(b":")
            name_end = colon + 1 + int(line[:colon])
            if line[name_end] != _SPACE or line[-1] != _NEWLINE:
                return False
            files[line[colon + 1 : name_end].decode("ascii")] = sha256(line).hexdigest()[:SHORT_DIGEST_LENGTH]
    except (ValueError, IndexError):
        return False
    return True


def _split_ascii_lines(chunk: bytes) -> Iterator[tuple[str, bytes]]:
    position, size = 0, len(chunk)
    find = chunk.index
    while position < size:
        colon = find(b":", position)
        name_end = colon + 1 + int(chunk[position:colon])
        line_end = find(b"\n", name_end) + 1
        yield chunk[colon + 1 : name_end].decode("ascii"), chunk[position:line_end]
        position = line_end


class ContextHasher:
    """Digests of context selections, remembering file digests in ``cache_path`` (SQLite).

    One hasher serves a whole build; stages on several threads take turns (one lock, since
    the stat cache's connection is shared). Close it at the end, or use it as a context
    manager.
    """

    def __init__(
        self, cache_path: Path, *, racy_window_ns: int = RACY_WINDOW_NS, scan: ContextScan | None = None
    ) -> None:
        self.stat_cache = StatCache(cache_path, racy_window_ns=racy_window_ns)
        #: The build context's scan (:mod:`cache.prescan`), for the walks of that context.
        self.scan = scan
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
        on_change: Callable[[bool], None] | None = None,
    ) -> SourceDigest:
        """The digest of what ``COPY [--exclude] [--parents] <paths> ...`` reads from ``context``;
        ``on_change`` is called once if a directory changed since the last walk, with whether
        it is one a path names, with other entry names than then."""
        matcher = context.matcher

        def keep_dir(rel: str) -> bool:
            return matcher.dir_may_contain_included(rel) and next(iter(context.walk(rel)), None) is not None

        tree = SourceTree(context.root, excluded=matcher.excluded, keep_dir=keep_dir)
        patterns = tuple((pattern.text, pattern.exclusion) for pattern in matcher.patterns)
        scan = self.scan if self.scan is not None and self.scan.root == str(context.root) else None
        return self._digest(
            tree,
            paths,
            exclude,
            parents=parents,
            keep_owners=False,
            patterns=patterns,
            on_change=on_change,
            scan=scan,
        )

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
        patterns: tuple[tuple[str, bool], ...] = (),
        on_change: Callable[[bool], None] | None = None,
        scan: ContextScan | None = None,
    ) -> SourceDigest:
        """The digest of ``paths`` in ``tree``, whose ``.dockerignore`` ``patterns`` (none for
        a plain tree) name its filters."""
        exclude_matcher = PatternMatcher(exclude) if exclude else None
        with self._lock:
            # Only a context (kept, no owners) is worth remembering across builds.
            if keep_owners:
                digests = TreeDigests({}, self.stat_cache.racy_window_ns)
            else:
                digests = self.stat_cache.tree(tree.root)
            walker = _Walker(
                tree,
                digests,
                excluded=tree.excluded if patterns else never,
                keep_dir=tree.keep_dir,
                exclude=exclude_matcher.excluded if exclude_matcher else never,
                exclude_keep_dir=exclude_matcher.dir_may_contain_included if exclude_matcher else never,
                filter_id=(patterns, tuple(exclude), keep_owners),
                keep_owners=keep_owners,
            )
            walker.on_change = on_change
            walker.scan = scan
            for path in paths:
                if parents:
                    walker.add_with_parents(path)
                else:
                    walker.add(path)
            if walker.walked_root and not exclude:
                # Every directory still there was met: the rest were deleted (or ignored).
                digests.forget_unvisited()
            self.files_read += walker.files_read
            self.stat_cache.flush()
        return SourceDigest(
            "sha256:" + walker.hasher.hexdigest(),
            walker.pieces,
            walker.listings,
            walker.groups,
            walker.stat_lists,
        )


class _Walker(TreeWalk):
    """Feeds the entries one selection copies, in the copier's order, into one hash."""

    def __init__(self, tree: SourceTree, digests: TreeDigests, **options: Any) -> None:
        super().__init__(digests, **options)
        self.tree = tree
        #: Whether a source was the tree's root itself, so that every directory was met.
        self.walked_root = False

    def add(self, path: str) -> None:
        """One source as ``COPY`` without ``--parents`` reads it."""
        relative = _clean(path)
        if relative is None:
            self.mark(path, "outside")
            return
        matches = self.tree.expand(relative)
        if matches is None:
            matches = ["/".join(literal_name(part) for part in relative.split("/") if part)]
        else:
            base = _wildcard_base(relative)
            matches = [match for match in matches if not self.exclude(posixpath.relpath(match, base))]
            if not matches:
                self.mark(path, "no match")
        for match in matches:
            source = self.tree.resolve(match)
            info = self._top_lstat(source)
            if info is None:
                self.mark(match or ".", "missing")
                continue
            if source == self.tree.root:
                self.walked_root = True
            self._entry(match or ".", source, "", info)

    def add_with_parents(self, path: str) -> None:
        """One source as ``COPY --parents`` reads it: paths below the ``/./`` pivot kept."""
        pivot, separator, pattern = path.partition("/./")
        if not separator:
            pivot, pattern = "", path
        pivot_rel, pattern_rel = _clean(pivot), _clean(pattern)
        if pivot_rel is None or pattern_rel is None:
            self.mark(path, "outside")
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
                self.mark(match, "missing")
                continue
            parts = below_pivot.split("/")[:-1]
            for depth in range(1, len(parts) + 1):
                above = "/".join(parts[:depth])
                above_path = pivot_dir / above
                above_info = os.lstat(above_path)
                self.record(f"{pivot_rel}/./{above}", str(above_path), self.tree.rel(above_path), above_info)
            self._entry(f"{pivot_rel}/./{below_pivot}", source, below_pivot, info)

    def _top_lstat(self, source: Path) -> os.stat_result | None:
        if source == self.tree.root:
            return os.lstat(source)
        return self.tree.lstat(source)

    def _entry(self, name: str, host_path: Path, rel: str, info: os.stat_result) -> None:
        self.walk(name, str(host_path), self.tree.rel(host_path), rel, info)


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
