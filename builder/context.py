"""The build context as the builder sees it: a directory seen through its ignore file.

What a step may read is what BuildKit would have transferred: the entries not excluded by
``.dockerignore``, plus the excluded directories that lead to re-included entries. Symlinks
are entries like any other; they are never followed by the walk, and where a path must be
followed (reading a file) links resolve inside the root: an absolute target is relative to
the context root, and a target climbing above the root is refused.
"""

from __future__ import annotations

import enum
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from builder._pattern_syntax import Token, literal_text, to_regex, tokenize
from builder.errors import ContextError
from builder.ignore_file import find_ignore_file
from builder.lazyclasses import dataclass
from builder.patterns import PatternMatcher, clean_path, read_ignore_file

#: Same limit as Linux's ELOOP: more links than this on one path is a loop.
MAX_SYMLINK_HOPS = 40


def contains_wildcards(path: str) -> bool:
    """Whether a COPY source uses ``*``, ``?`` or ``[`` unescaped (BuildKit's test for globbing)."""
    index = 0
    while index < len(path):
        if path[index] == "\\":
            index += 2
            continue
        if path[index] in "*?[":
            return True
        index += 1
    return False


class EntryKind(enum.StrEnum):
    """What an entry of the context is, from ``lstat``."""

    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    OTHER = "other"  # device, fifo, socket: listed, and left to the copier to refuse

    @classmethod
    def of(cls, mode: int) -> EntryKind:
        if stat.S_ISREG(mode):
            return cls.FILE
        if stat.S_ISDIR(mode):
            return cls.DIR
        if stat.S_ISLNK(mode):
            return cls.SYMLINK
        return cls.OTHER


@dataclass(frozen=True)
class ContextEntry:
    """One entry a filtered walk yields: its slash path relative to the root, kind, lstat."""

    path: str
    kind: EntryKind
    stat: os.stat_result


class BuildContext:
    """A context root directory and the matcher of its ignore file."""

    def __init__(self, root: Path, matcher: PatternMatcher, ignore_file: Path | None = None) -> None:
        self.root = root.resolve()
        self.matcher = matcher
        #: The ignore file that was read, if any: ``<Dockerfile>.dockerignore`` or ``.dockerignore``.
        self.ignore_file = ignore_file
        if not self.root.is_dir():
            raise ContextError(f"build context {root} is not a directory")

    @classmethod
    def open(cls, root: Path, dockerfile: Path | None = None) -> BuildContext:
        """The context at ``root``, filtered by the ignore file BuildKit would pick.

        ``<Dockerfile name>.dockerignore`` beside the Dockerfile wins over
        ``<root>/.dockerignore``; with neither, nothing is ignored.
        """
        found = find_ignore_file(str(root), None if dockerfile is None else str(dockerfile))
        ignore_file = None if found is None else Path(found)
        patterns: list[str] = []
        if ignore_file is not None:
            try:
                text = ignore_file.read_bytes().decode("utf-8", "surrogateescape")
            except OSError as err:
                raise ContextError(f"cannot read {ignore_file.name}: {err.strerror}") from err
            patterns = read_ignore_file(text)
        try:
            matcher = PatternMatcher(patterns)
        except ContextError as err:
            raise ContextError(f"{ignore_file.name if ignore_file else 'ignore file'}: {err}") from err
        return cls(root, matcher, ignore_file)

    def is_excluded(self, path: str) -> bool:
        """Whether the ignore rules exclude ``path`` (it may still lead to re-included entries).

        The root itself is never excluded, even by ``**``.
        """
        relative = self._relative(path)
        return relative != "." and self.matcher.excluded(relative)

    def exists(self, path: str) -> bool:
        """Whether ``path`` is an entry of the filtered context, as :meth:`walk` would list it.

        Symlinks are not followed, neither the last component nor the directories above it.
        """
        relative = self._relative(path)
        if relative == ".":
            return True
        try:
            entry_stat = self._lstat_below_real_dirs(relative)
        except FileNotFoundError:
            return False
        return self._is_listed(relative, EntryKind.of(entry_stat.st_mode))

    def walk(self, prefix: str = "") -> Iterator[ContextEntry]:
        """Every entry strictly below ``prefix`` that survives the ignore rules, depth first.

        Names are sorted bytewise in each directory (Go's ``filepath.Walk`` order). An
        excluded directory is listed, just before its first entry, when something below it is
        re-included; subtrees nothing could be re-included from are not read at all.
        """
        start = "" if prefix in ("", ".") else self._relative(prefix)
        if start:
            try:
                start_stat = self._lstat_below_real_dirs(start)
            except FileNotFoundError as err:
                raise ContextError(f"{prefix}: not found in build context") from err
            if not stat.S_ISDIR(start_stat.st_mode):
                raise ContextError(f"{prefix}: not a directory in the build context")
            if self.matcher.excluded(start) and not self.matcher.dir_may_contain_included(start):
                return
        yield from self._walk_dir(start, [])

    def _walk_dir(self, directory: str, pending_dirs: list[ContextEntry]) -> Iterator[ContextEntry]:
        """Walk one directory; ``pending_dirs`` holds excluded ancestors not yet listed."""
        for name in self._sorted_names(directory):
            relative = f"{directory}/{name}" if directory else name
            try:
                entry_stat = os.lstat(self.root / relative)
            except FileNotFoundError:
                continue  # removed while the walk was running
            entry = ContextEntry(relative, EntryKind.of(entry_stat.st_mode), entry_stat)
            if not self.matcher.excluded(relative):
                yield from pending_dirs
                pending_dirs.clear()
                yield entry
                if entry.kind is EntryKind.DIR:
                    yield from self._walk_dir(relative, pending_dirs)
            elif entry.kind is EntryKind.DIR and self.matcher.dir_may_contain_included(relative):
                pending_dirs.append(entry)
                yield from self._walk_dir(relative, pending_dirs)
                if pending_dirs and pending_dirs[-1] is entry:
                    pending_dirs.pop()

    def _sorted_names(self, directory: str) -> list[str]:
        try:
            names = os.listdir(self.root / directory)
        except OSError as err:
            raise ContextError(f"cannot read {directory or '.'} in build context: {err.strerror}") from err
        return sorted(names, key=lambda name: name.encode("utf-8", "surrogateescape"))

    def glob(self, pattern: str) -> list[str]:
        """The context paths a COPY source matches, in walk order (empty when none).

        Wildcards follow Go's ``filepath.Match`` on each path component (``*`` and ``?``
        never cross ``/``, ``**`` is just ``*``) over the filtered context, as BuildKit
        resolves wildcard sources; symlinks are not followed while matching. A source without
        wildcards (``\\`` escapes do not count) is returned as is when it exists. A leading
        ``/`` means the context root; climbing above it is refused.
        """
        relative = self._relative(pattern.lstrip("/") or ".", shown=pattern)
        if relative == ".":
            return ["."]
        if not contains_wildcards(relative):
            return [relative] if self.exists(relative) else []
        try:
            components = [tokenize(part, double_star=False) for part in relative.split("/")]
        except ContextError as err:
            raise ContextError(f"{pattern}: {err}") from err
        return list(self._glob_below("", components))

    def _glob_below(self, directory: str, components: list[tuple[Token, ...]]) -> Iterator[str]:
        """Match ``components[0]`` against the entries of ``directory``, then descend."""
        component, rest = components[0], components[1:]
        literal = literal_text(component)
        if literal is not None:
            names = [literal]
        else:
            name_regex = re.compile(to_regex(component), re.DOTALL)
            names = [name for name in self._sorted_names(directory) if name_regex.fullmatch(name)]
        for name in names:
            relative = f"{directory}/{name}" if directory else name
            try:
                entry_stat = os.lstat(self.root / relative)
            except (FileNotFoundError, NotADirectoryError):
                continue
            kind = EntryKind.of(entry_stat.st_mode)
            if not self._is_listed(relative, kind):
                continue
            if not rest:
                yield relative
            elif kind is EntryKind.DIR:
                yield from self._glob_below(relative, rest)

    def resolve(self, path: str) -> Path:
        """The host path of context path ``path``, following symlinks inside the root.

        Refuses an absolute path, a path climbing out with ``..``, a symlink whose target
        climbs above the root, and symlink loops. The result need not exist.
        """
        real_relative, _ = self._follow(self._relative(path))
        return self.root / real_relative if real_relative != "." else self.root

    def open_file(self, path: str) -> BinaryIO:
        """Open a regular file of the filtered context for reading, following in-root links.

        The path, every symlink on the way and the file reached must all be kept by the
        ignore rules, since none of them would have been transferred otherwise.
        """
        relative = self._relative(path)
        real_relative, links = self._follow(relative)
        for visited in (relative, *links, real_relative):
            if visited != "." and self.matcher.excluded(visited):
                raise ContextError(f"{path}: not found in build context (excluded by the ignore file)")
        host_path = self.root / real_relative
        try:
            if not stat.S_ISREG(os.lstat(host_path).st_mode):
                raise ContextError(f"{path}: not a regular file in the build context")
            return host_path.open("rb")
        except OSError as err:
            raise ContextError(f"{path}: not found in build context") from err

    def _relative(self, path: str, shown: str | None = None) -> str:
        """``path`` cleaned; absolute paths and paths climbing out of the root are refused."""
        shown = path if shown is None else shown
        if path.startswith("/"):
            raise ContextError(f"{shown}: absolute paths are not allowed in the build context")
        relative = clean_path(path)
        if relative == ".." or relative.startswith("../"):
            raise ContextError(f"{shown}: path escapes the build context")
        return relative

    def _lstat_below_real_dirs(self, relative: str) -> os.stat_result:
        """``lstat`` of ``relative``; every component above it must be a real directory."""
        parts = relative.split("/")
        for depth in range(1, len(parts)):
            parent_stat = os.lstat(self.root.joinpath(*parts[:depth]))
            if not stat.S_ISDIR(parent_stat.st_mode):
                raise FileNotFoundError(relative)
        try:
            return os.lstat(self.root / relative)
        except NotADirectoryError as err:
            raise FileNotFoundError(relative) from err

    def _is_listed(self, relative: str, kind: EntryKind) -> bool:
        """Whether an existing entry is part of the filtered context (see :meth:`walk`)."""
        if not self.matcher.excluded(relative):
            return True
        if kind is not EntryKind.DIR or not self.matcher.dir_may_contain_included(relative):
            return False
        return next(iter(self.walk(relative)), None) is not None

    def _follow(self, relative: str) -> tuple[str, list[str]]:
        """The real path (relative to the root) ``relative`` leads to, and the links followed."""
        remaining = [] if relative == "." else relative.split("/")
        resolved: list[str] = []
        links: list[str] = []
        while remaining:
            part = remaining.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                if not resolved:
                    raise ContextError(f"{relative}: a symlink leads out of the build context")
                resolved.pop()
                continue
            candidate = "/".join([*resolved, part])
            try:
                is_link = stat.S_ISLNK(os.lstat(self.root / candidate).st_mode)
            except (FileNotFoundError, NotADirectoryError):
                is_link = False
            if not is_link:
                resolved.append(part)
                continue
            links.append(candidate)
            if len(links) > MAX_SYMLINK_HOPS:
                raise ContextError(f"{relative}: too many levels of symbolic links")
            target = os.readlink(self.root / candidate)
            if target.startswith("/"):
                resolved = []
            remaining = target.split("/") + remaining
        return "/".join(resolved) or ".", links
