"""What a copy reads from: a directory tree seen through an optional ignore filter.

Copying needs four questions answered about its source, whatever the source is: where a
path leads (symlinks resolved inside the tree, never out of it), whether an entry exists
(an entry ``.dockerignore`` leaves out does not), what a directory lists, and which paths a
wildcard source matches. :class:`SourceTree` answers them for a plain root (another stage,
an image, a fetched file) and, given the context's ignore rules, for the build context.

Wildcards follow BuildKit (``fsutil/copy.ResolveWildcards``): the path is split at its first
component holding an unescaped ``*``, ``?`` or ``[``; the part before is resolved like any
path, the rest is matched component by component with Go's ``filepath.Match`` rules
against the entries below it, in lexical order, without following symlinks on the way.
A directory that matches is a match itself (nothing below it is matched separately).
"""

from __future__ import annotations

import os
import posixpath
import re
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

from builder._pattern_syntax import literal_text, to_regex, tokenize
from builder.context import BuildContext
from builder.errors import ContextError
from builder.lazyclasses import dataclass
from builder.patterns import PatternMatcher
from builder.rootpath import resolve_in_root

#: ``rel path -> bool``: whether an entry of the tree is left out (``.dockerignore``).
PathFilter = Callable[[str], bool]


def _never(_: str) -> bool:
    return False


@dataclass(frozen=True)
class TreeEntry:
    """One entry met while walking a copied item: its path below the item, and its lstat."""

    rel: str
    path: Path
    info: os.stat_result


@dataclass(frozen=True)
class SourceTree:
    """A directory tree to copy from.

    ``excluded`` names what the tree leaves out (paths relative to ``root``, no leading
    slash); ``keep_dir`` says whether an excluded directory must still be descended because
    a later ``!`` pattern may bring back something below it.
    """

    root: Path
    excluded: PathFilter = _never
    keep_dir: PathFilter = _never

    def rel(self, path: Path | str) -> str:
        """``path`` (under ``root``) as the tree-relative text the filters take."""
        text, root = str(path), str(self.root)
        # The paths asked about are built from the root, so a prefix cut is exact (and, in a
        # copy of 20,000 files, far cheaper than relpath's normalising).
        if (
            text.startswith(root)
            and text[len(root) : len(root) + 1] == "/"
            and "/./" not in text
            and "/../" not in text
            and not text.endswith(("/.", "/.."))
        ):
            return text[len(root) + 1 :]
        text = os.path.relpath(path, self.root)
        return "" if text == "." else text

    def resolve(self, path: str, *, follow_final: bool = True) -> Path:
        """``path`` (taken from the tree's root) with every symlink resolved inside it."""
        return resolve_in_root(self.root, path, follow_final=follow_final)

    def lstat(self, path: Path | str) -> os.stat_result | None:
        """The entry at ``path``; ``None`` when it is absent or left out.

        An entry is left out when it is excluded, or when a directory above it is excluded
        and not kept (the walk that gathers a context never descends there).
        """
        try:
            info = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        rel = self.rel(path)
        if not rel or self.excluded is _never:
            return info
        parent, _, _name = rel.rpartition("/")
        if parent and self._hides_below(parent):
            return None
        return None if self._leaves_out(rel, info) else info

    def _hides_below(self, rel: str) -> bool:
        """Whether everything below the directory ``rel`` is left out: it or a directory
        above it is excluded and not kept."""
        parts = rel.split("/")
        for depth in range(1, len(parts) + 1):
            ancestor = "/".join(parts[:depth])
            if self.excluded(ancestor) and not self.keep_dir(ancestor):
                return True
        return False

    def _leaves_out(self, rel: str, info: os.stat_result) -> bool:
        """Whether the entry ``rel`` is excluded itself (a kept directory is not)."""
        return self.excluded(rel) and not (stat.S_ISDIR(info.st_mode) and self.keep_dir(rel))

    def listdir(self, directory: Path) -> list[str]:
        """The names in ``directory`` that the tree shows, in byte order (Go's lexical order)."""
        return [name for name, _info in self.entries(directory)]

    def entries(self, directory: Path | str) -> list[tuple[str, os.stat_result]]:
        """:meth:`listdir` with each entry's lstat, each looked up once (a copier walking
        20,000 files would otherwise stat each twice).

        The same answers as :meth:`lstat` of each entry, for a fraction of the work: the
        directories above the entries are the same for all of them, so whether one of them
        hides everything below is asked once, and the entries' paths are joined as text (a
        ``Path`` per entry costs more than its ``lstat``).
        """
        text = str(directory)
        prefix = text if text.endswith("/") else text + "/"
        names = os.listdir(text)
        # Text order is byte order unless a name holds a surrogate escape (a byte that is not
        # UTF-8): all-ASCII names, the usual case, skip encoding each name for the sort.
        names.sort(key=None if "".join(names).isascii() else os.fsencode)
        filtered = self.excluded is not _never
        rel = self.rel(text) if filtered else ""
        if filtered and rel and self._hides_below(rel):
            # Only what exists is hidden: an entry that vanished since the listing is absent
            # either way, so nothing needs to be looked up.
            return []
        found = []
        lstat = os.lstat
        for name in names:
            try:
                info = lstat(prefix + name)
            except (FileNotFoundError, NotADirectoryError):
                continue
            if filtered and self._leaves_out(f"{rel}/{name}" if rel else name, info):
                continue
            found.append((name, info))
        return found

    def walk(self, top: Path) -> Iterator[TreeEntry]:
        """``top`` then everything below it, depth first, parents before children."""
        info = self.lstat(top) if top != self.root else os.lstat(top)
        if info is None:
            return
        yield from self._walk(top, "", info)

    def _walk(self, path: Path, rel: str, info: os.stat_result) -> Iterator[TreeEntry]:
        yield TreeEntry(rel, path, info)
        if not stat.S_ISDIR(info.st_mode):
            return
        for name in self.listdir(path):
            child = path / name
            child_info = self.lstat(child)
            if child_info is not None:
                yield from self._walk(child, posixpath.join(rel, name) if rel else name, child_info)

    def expand(self, source: str) -> list[str] | None:
        """The tree paths a COPY source names: ``None`` when it holds no wildcard.

        A wildcard source gives its matches (possibly none), each relative to the root.
        """
        parts = [part for part in posixpath.normpath("/" + source).split("/") if part]
        first = next((index for index, part in enumerate(parts) if has_wildcards(part)), None)
        if first is None:
            return None
        base = self.resolve("/".join(literal_name(part) for part in parts[:first]))
        matchers = [component_matcher(part) for part in parts[first:]]
        return [self.rel(path) for path in self._match(base, matchers)]

    def _match(self, directory: Path, matchers: list[Callable[[str], bool]]) -> Iterator[Path]:
        info = os.lstat(directory) if directory == self.root else self.lstat(directory)
        if info is None or not stat.S_ISDIR(info.st_mode):
            return
        for name in self.listdir(directory):
            if not matchers[0](name):
                continue
            child = directory / name
            if len(matchers) == 1:
                yield child
                continue
            child_info = self.lstat(child)
            if child_info is not None and stat.S_ISDIR(child_info.st_mode):
                yield from self._match(child, matchers[1:])


def context_tree(context: BuildContext) -> SourceTree:
    """The build context as a copy (and its cache key) sees it.

    An excluded directory is still part of the context when a ``!`` pattern's text starts
    with the directory's path (BuildKit's fsutil walker, which the oracle cases
    ``dockerignore-exceptions-skip`` and ``dockerignore-allowlist-subdir-nofile-dir`` show):
    it is sent, possibly empty; otherwise nothing below it is sent, even what a later ``!``
    pattern would match (``copy-integration1``). Without patterns nothing is left out (an
    empty matcher neither excludes nor fails), so the tree then has no filter at all.
    """
    matcher = context.matcher
    if not matcher.patterns:
        return SourceTree(context.root)  # nothing is ignored: no filter to ask per entry
    return SourceTree(context.root, excluded=matcher.excluded, keep_dir=exception_prefix_rule(matcher))


def exception_prefix_rule(matcher: PatternMatcher) -> PathFilter:
    """fsutil's test for descending an excluded directory: a ``!`` pattern starts with it.

    Used for ``.dockerignore`` and for ``--exclude`` alike.
    """
    exceptions = [pattern.text + "/" for pattern in matcher.patterns if pattern.exclusion]

    def keep_dir(rel: str) -> bool:
        return any(text.startswith(rel + "/") for text in exceptions)

    return keep_dir


def has_wildcards(component: str) -> bool:
    """Whether a path component holds an unescaped ``*``, ``?`` or ``[``."""
    index = 0
    while index < len(component):
        char = component[index]
        if char == "\\":
            index += 2
            continue
        if char in "*?[":
            return True
        index += 1
    return False


def literal_name(component: str) -> str:
    """A wildcard-free component with its backslash escapes removed."""
    try:
        literal = literal_text(tokenize(component, double_star=False))
    except ContextError:
        return component
    return component if literal is None else literal


def component_matcher(component: str) -> Callable[[str], bool]:
    """Go ``filepath.Match`` for one component; a malformed pattern matches nothing."""
    try:
        compiled = re.compile(to_regex(tokenize(component, double_star=False)), re.DOTALL)
    except (ContextError, re.error):
        return _never
    return lambda name: compiled.fullmatch(name) is not None
