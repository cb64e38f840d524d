"""Paths inside a root directory, resolved the way ``openat2(RESOLVE_IN_ROOT)`` does.

A container's filesystem (a snapshot, an upper dir, a merged mount) is untrusted: its
symlinks were written by an image or a RUN step. Any path kiln opens in it is resolved here
first, component by component, reading every symlink *relative to the root*: an absolute
target restarts at the root, and ``..`` at the root stays at the root. The result is always
a path under ``root`` whose existing components are real directories, so opening it never
follows a link onto the host (barring a concurrent writer inside the root, which kiln never
runs while it writes).
"""

from __future__ import annotations

import os
import stat
from collections import deque
from pathlib import Path

from builder.errors import StoreError

#: Linux's own limit on symlinks followed in one resolution (``MAXSYMLINKS``).
MAX_SYMLINKS = 40


def _components(path: str) -> list[str]:
    return [part for part in path.split("/") if part not in ("", ".")]


def resolve_in_root(root: Path, path: str, *, follow_final: bool = True, strict: bool = False) -> Path:
    """``path`` (absolute or relative, taken from ``root``) resolved without leaving ``root``.

    Components that do not exist are kept as written, so the result can name something to
    create. With ``follow_final=False`` a symlink in the last component is not followed
    (``lstat``/``unlink``/``lchown`` semantics). Raises :class:`StoreError` after
    :data:`MAX_SYMLINKS` links, as the kernel fails with ``ELOOP``.

    ``strict`` refuses (:class:`StoreError`) instead of re-rooting whenever the path would
    leave the root if read on the host: a symlink with an absolute target, or a ``..`` above
    the root. The layer applier uses it, since a well-formed layer never writes through such
    a link: a diff walks ``lstat`` and never descends into one.
    """
    root_text = os.fspath(root).rstrip("/")  # "" for "/", so joins never start with "//"
    pending = deque(_components(path))
    resolved: list[str] = []
    links_followed = 0
    while pending:
        part = pending.popleft()
        if part == "..":
            if resolved:
                resolved.pop()
            elif strict:
                raise StoreError(f"{path!r} climbs above the root with '..'")
            continue
        candidate = "/".join((root_text, *resolved, part))
        try:
            mode = os.lstat(candidate).st_mode
        except (FileNotFoundError, NotADirectoryError):
            resolved.append(part)
            continue
        if not stat.S_ISLNK(mode) or (not pending and not follow_final):
            resolved.append(part)
            continue
        links_followed += 1
        if links_followed > MAX_SYMLINKS:
            raise StoreError(f"too many levels of symbolic links resolving {path!r} in {root}")
        target = os.readlink(candidate)
        if target.startswith("/"):
            if strict:
                shown = "/".join((*resolved, part))
                raise StoreError(f"{shown!r} is a symlink to {target!r}, outside the root")
            resolved.clear()
        pending.extendleft(reversed(_components(target)))
    return Path("/".join((root_text, *resolved))) if resolved else root


def is_within(root: Path, path: Path) -> bool:
    """Whether ``path`` is ``root`` or lies under it, lexically (no filesystem access)."""
    root_text = os.path.normpath(root)
    path_text = os.path.normpath(path)
    return path_text == root_text or path_text.startswith(root_text.rstrip("/") + "/")


def ensure_dir_in_root(root: Path, path: str, *, mode: int = 0o755, strict: bool = False) -> Path:
    """Make ``path`` and its missing parents inside ``root``; return the resolved directory.

    Each missing component is created with ``mode`` (less the umask) and owned by the caller,
    as ``mkdir -p`` does. Raises :class:`StoreError` when an existing component is not a
    directory. ``strict`` is passed to :func:`resolve_in_root`.
    """
    resolved = resolve_in_root(root, path, strict=strict)
    if os.path.isdir(resolved):  # the common case: nothing to make (never a link: resolved)
        return resolved
    root_text = os.fspath(root).rstrip("/")
    current = root_text
    for part in resolved.relative_to(root).parts:
        current = f"{current}/{part}"
        try:
            existing = os.lstat(current).st_mode
        except FileNotFoundError:
            os.mkdir(current, mode)
            continue
        if not stat.S_ISDIR(existing):
            shown = current[len(root_text) :]
            message = f"cannot create directory {path!r}: {shown} exists and is not a directory"
            raise StoreError(message)
    return resolved


def parent_in_root(root: Path, path: str, *, create: bool = False) -> tuple[Path, str]:
    """The resolved parent directory of ``path`` and its last component.

    This is how a writer finds where to put an entry without following a symlink that the
    entry's own name may already hold. ``create`` makes missing parents (as
    :func:`ensure_dir_in_root`). The last component is never ``..`` or empty: a path that
    names the root itself raises :class:`StoreError`.
    """
    parts = _components(path)
    if not parts or parts[-1] == "..":
        raise StoreError(f"{path!r} does not name an entry inside the root")
    parent_text = "/".join(parts[:-1])
    parent = ensure_dir_in_root(root, parent_text) if create else resolve_in_root(root, parent_text)
    return parent, parts[-1]
