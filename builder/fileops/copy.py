"""COPY and ADD without a container: a :class:`CopyOp` applied to a destination root.

The steps are BuildKit's (``dockerfile2llb`` ``dispatchCopy`` and the file op backend):

1. Each source path is cleaned against ``/`` of its source; one that climbs above it is
   refused. A path with wildcards expands to its matches, and matching nothing is no error
   (and creates nothing); a plain path must exist, or the step fails with "not found".
2. The destination is cleaned against ``/`` (``/link/..`` is ``/``). It names a directory
   when it ends with ``/`` (or is ``.``); its missing directories are made ``0755``, owned
   by ``--chown`` when given. It resolves inside the root: a symlink in the image leads
   where it points *within the image*.
3. A directory source copies its contents; a file lands inside the destination when that is
   an existing directory, else at the destination itself, named after the source path as
   written (a symlinked source is followed, its name kept).
4. ADD of a local tar archive (``op.unpack``) extracts it into the destination directory
   instead; ADD of a URL downloads it first (never unpacked); heredoc files are written
   ``0644`` (or their own mode).
5. ``--parents`` keeps each source's path below the context root, or below a ``/./`` in
   the source; ``--exclude`` leaves out matching paths below each copied source.

Owners: the build context, URLs and heredocs give ``0:0``, another stage or image keeps its
owners, ``--chown`` overrides both. ``--link`` needs nothing here: the caller gives an empty
``dest_root`` and stacks the result as an independent layer.
"""

from __future__ import annotations

import os
import posixpath
import stat
from pathlib import Path

from builder.context import BuildContext
from builder.errors import BuildError, KilnError
from builder.fileops.chmod import ModeChange, parse_chmod
from builder.fileops.donor import DonorLayer
from builder.fileops.sources import (
    SourceTree,
    context_tree,
    exception_prefix_rule,
    has_wildcards,
    literal_name,
)
from builder.fileops.writer import CopyRules, TreeWriter
from builder.graph import (
    ContextSource,
    CopyOp,
    GitSource,
    ImageSource,
    InlineFile,
    InlineSource,
    StageSource,
    UrlSource,
)
from builder.patterns import PatternMatcher
from builder.rootpath import resolve_in_root

_ROOT_OWNER = (0, 0)


def copy_into(
    op: CopyOp,
    *,
    dest_root: Path,
    source_root: Path | None,
    context: BuildContext | None = None,
    chown: tuple[int, int] | None = None,
    donor: DonorLayer | None = None,
    upper: Path | None = None,
    git_commit: str | None = None,
) -> None:
    """Apply ``op`` to the filesystem at ``dest_root``.

    ``source_root`` is the directory the op reads: the context root, or the rootfs of the
    stage or image named by ``--from`` (ignored for URL and heredoc sources). ``context``
    gives the ``.dockerignore`` rules of a context source. ``chown`` is ``op.chown``
    resolved against the destination (:func:`builder.fileops.owner.resolve_owner`).
    ``donor`` is the previous layer of the same step, from which files of a context copy
    that did not change are claimed instead of copied (:mod:`builder.fileops.donor`; the
    caller links them once ``dest_root`` is unmounted). ``upper`` is the upper dir of the
    overlay mounted at ``dest_root``: what goes below a directory this copy makes is written
    there directly (:class:`TreeWriter`). ``git_commit`` is the commit a git source's ref
    named when the step was keyed (asked of the remote now when not given). Failures raise
    :class:`BuildError` naming the step.
    """
    try:
        _copy(op, dest_root, source_root, context, chown, donor=donor, upper=upper, git_commit=git_commit)
    except BuildError as err:
        if err.span is None:
            raise BuildError(err.message, op.location) from err
        raise
    except KilnError as err:
        raise BuildError(str(err), op.location) from err
    except OSError as err:
        roots = [root for root in (dest_root, source_root) if root is not None]
        raise BuildError(_os_error_message(err, roots), op.location) from err


def _os_error_message(err: OSError, roots: list[Path]) -> str:
    """An OS error with the machine's root directories left out of the path it names."""
    shown = str(err.filename or "")
    for root in roots:
        if shown.startswith(str(root)):
            shown = "/" + shown[len(str(root)) :].lstrip("/")
            break
    return f"{err.strerror or err}: {shown}" if shown else str(err.strerror or err)


def _copy(
    op: CopyOp,
    dest_root: Path,
    source_root: Path | None,
    context: BuildContext | None,
    chown: tuple[int, int] | None,
    *,
    donor: DonorLayer | None,
    upper: Path | None,
    git_commit: str | None = None,
) -> None:
    mode_change = parse_chmod(op.chmod) if op.chmod else None
    rules = _rules(op, chown, mode_change)
    source = op.source
    if isinstance(source, UrlSource | InlineSource | GitSource):
        # Only here: a copy from the context needs neither HTTP, git nor temporary files,
        # and their modules take a tenth of a second to import.
        import tempfile

        from builder.fileops.fetch import fetch_url
        from builder.fileops.git import checkout, resolve_commit
    if isinstance(source, UrlSource):
        with tempfile.TemporaryDirectory(prefix="kiln-fetch-") as scratch:
            fetched = fetch_url(source.url, Path(scratch), checksum=source.checksum)
            _copy_paths(op, dest_root, SourceTree(Path(scratch)), (fetched.name,), rules, unpack=False)
        return
    if isinstance(source, InlineSource):
        with tempfile.TemporaryDirectory(prefix="kiln-heredoc-") as scratch:
            names = [_write_inline(Path(scratch), item) for item in source.files]
            _copy_paths(op, dest_root, SourceTree(Path(scratch)), tuple(names), rules, unpack=False)
        return
    if isinstance(source, GitSource):
        with tempfile.TemporaryDirectory(prefix="kiln-git-") as scratch:
            tree_root = checkout(source, git_commit or resolve_commit(source), Path(scratch) / "repo")
            _copy_paths(op, dest_root, SourceTree(tree_root), (".",), rules, unpack=False)
        return
    if source_root is None:
        raise BuildError("a copy from a context, stage or image needs its source root")
    tree = SourceTree(source_root)
    if isinstance(source, ContextSource) and context is not None:
        tree = context_tree(context)
    else:
        donor = None  # only a context selection names its files as the donor's record does
    if isinstance(source, (StageSource, ImageSource)):
        rules.source_owner = None
    _copy_paths(op, dest_root, tree, op.paths, rules, unpack=op.unpack, donor=donor, upper=upper)


def _rules(op: CopyOp, chown: tuple[int, int] | None, mode_change: ModeChange | None) -> CopyRules:
    rules = CopyRules(chown=chown, source_owner=_ROOT_OWNER, mode_change=mode_change)
    if op.exclude:
        matcher = PatternMatcher(op.exclude)
        rules.exclude = matcher.excluded
        rules.exclude_keep_dir = exception_prefix_rule(matcher)
    return rules


def _write_inline(scratch: Path, item: InlineFile) -> str:
    relative = _clean_source(item.name)
    target = scratch / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(item.content, encoding="utf-8")
    os.chmod(target, item.mode)
    return relative


def _clean_source(path: str) -> str:
    """A source path relative to its root; one climbing above the root is refused."""
    cleaned = posixpath.normpath(path.lstrip("/") or ".")
    if cleaned == ".." or cleaned.startswith("../"):
        raise BuildError(f"source path {path!r} is outside the build context")
    return "" if cleaned == "." else cleaned


def _dest(op: CopyOp) -> tuple[str, bool]:
    """The destination cleaned against ``/``, and whether it names a directory."""
    raw = op.dest
    names_dir = raw in ("", ".") or raw.endswith(("/", "/."))
    return posixpath.normpath("/" + raw), names_dir


def _copy_paths(
    op: CopyOp,
    dest_root: Path,
    tree: SourceTree,
    paths: tuple[str, ...],
    rules: CopyRules,
    *,
    unpack: bool,
    donor: DonorLayer | None = None,
    upper: Path | None = None,
) -> None:
    dest, names_dir = _dest(op)
    for path in paths:
        if op.parents:
            _copy_with_parents(dest_root, tree, path, dest, rules)
            continue
        relative = _clean_source(path)
        matches = tree.expand(relative)
        if matches is None:
            matches = ["/".join(literal_name(part) for part in relative.split("/") if part)]
        else:
            base = _wildcard_base(relative)
            matches = [match for match in matches if not rules.exclude(posixpath.relpath(match, base))]
        for match in matches:
            _copy_one(
                dest_root,
                tree,
                match,
                dest,
                rules,
                names_dir=names_dir,
                unpack=unpack,
                donor=donor,
                upper=upper,
            )


def _wildcard_base(relative: str) -> str:
    """The literal directories before a wildcard source's first wildcard component."""
    parts = relative.split("/")
    first = next(index for index, part in enumerate(parts) if has_wildcards(part))
    return "/".join(parts[:first]) or "."


def _copy_one(
    dest_root: Path,
    tree: SourceTree,
    source_path: str,
    dest: str,
    rules: CopyRules,
    *,
    names_dir: bool,
    unpack: bool,
    donor: DonorLayer | None = None,
    upper: Path | None = None,
) -> None:
    source = tree.resolve(source_path)
    info = tree.lstat(source) if source != tree.root else os.lstat(source)
    if info is None:
        raise BuildError(f'"/{source_path}" not found')
    writer = TreeWriter(dest_root, tree, rules, donor=donor, item_name=source_path or ".", upper_root=upper)
    if unpack:
        from builder.fileops.archive import extract_archive, is_archive  # ADD only: tarfile

        if is_archive(source):
            target_dir = resolve_in_root(dest_root, dest)
            writer.make_dirs(target_dir)
            extract_archive(source, target_dir, chown=rules.chown)
            return
    writer.make_dirs(resolve_in_root(dest_root, dest if names_dir else posixpath.dirname(dest)))
    target = resolve_in_root(dest_root, dest)
    try:
        target_info: os.stat_result | None = os.stat(target)
    except (FileNotFoundError, NotADirectoryError):
        target_info = None
    is_dir = stat.S_ISDIR(info.st_mode)
    if not is_dir and target_info is not None and stat.S_ISDIR(target_info.st_mode):
        target = target / posixpath.basename(source_path)
    writer.make_dirs(target if is_dir and target_info is None else target.parent)
    if donor is not None and donor.changes is not None and is_dir and target_info is not None:
        from builder.fileops.changeset import copy_changes

        if stat.S_ISDIR(target_info.st_mode) and copy_changes(
            writer, str(source), str(target), source_path or ".", donor
        ):
            return
    writer.copy(source, "", target, info, nested=False)


def _copy_with_parents(dest_root: Path, tree: SourceTree, path: str, dest: str, rules: CopyRules) -> None:
    """``--parents``: copy ``path`` keeping its directories below the pivot (``/./``)."""
    pivot, separator, pattern = path.partition("/./")
    if not separator:
        pivot, pattern = "", path
    pivot_rel = _clean_source(pivot)
    pattern_rel = _clean_source(pattern)
    full = posixpath.join(pivot_rel, pattern_rel) if pivot_rel else pattern_rel
    matches = tree.expand(full)
    if matches is None:
        literal = "/".join(literal_name(part) for part in full.split("/") if part)
        if tree.lstat(tree.resolve(literal, follow_final=False)) is None:
            raise BuildError(f'"/{literal}" not found')
        matches = [literal]
    pivot_dir = tree.resolve(pivot_rel)
    writer = TreeWriter(dest_root, tree, rules)
    dest_dir = resolve_in_root(dest_root, dest)
    writer.make_dirs(dest_dir)
    for match in matches:
        source = tree.resolve(match, follow_final=False)
        below_pivot = os.path.relpath(source, pivot_dir)
        if below_pivot.startswith("../"):
            continue
        _make_source_parents(writer, pivot_dir, dest_dir, below_pivot)
        info = tree.lstat(source)
        if info is not None:
            writer.copy(source, below_pivot, dest_dir / below_pivot, info, nested=True)


def _make_source_parents(writer: TreeWriter, pivot_dir: Path, dest_dir: Path, below_pivot: str) -> None:
    """The directories above a ``--parents`` match, made with their source's metadata."""
    parts = below_pivot.split("/")[:-1]
    for depth in range(1, len(parts) + 1):
        relative = "/".join(parts[:depth])
        source_dir, target_dir = pivot_dir / relative, dest_dir / relative
        info = os.lstat(source_dir)
        try:
            existing = os.lstat(target_dir)
        except FileNotFoundError:
            os.mkdir(target_dir, 0o700)
            writer.apply_metadata(source_dir, target_dir, info)
            continue
        if not stat.S_ISDIR(existing.st_mode):
            raise BuildError(f"cannot copy to non-directory: /{relative}")
        os.chmod(target_dir, stat.S_IMODE(info.st_mode))
