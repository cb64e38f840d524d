"""Mount-point stubs: what the runtime creates in the rootfs only to mount something over it.

Bind-mounting /etc/hosts into a rootfs that has no such file makes the runtime create an
empty file there first (and missing parent directories, and empty directories for /proc,
/sys, /dev and RUN --mount targets). Written through the overlay, those stubs would land in
the step's layer. Like BuildKit (0.11 and later, its ``MountStubsCleaner`` with the
recursive option the Dockerfile frontend sets), kiln notes before the run which mount
destinations, and which of their parents, do not exist yet, and afterwards removes those
that are still an empty file or an empty directory, restoring the parent directory's
times so the parent's entry in the layer is as it was. What the step itself put there
(content, or a directory with entries) is kept.

Paths are removed through the merged view before unmounting: an entry the lower dirs never
had simply disappears from the upper dir, with no whiteout.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from builder.rootpath import resolve_in_root


def missing_mount_points(rootfs: Path, destinations: Iterable[str]) -> list[Path]:
    """The host paths of each destination and parent that does not exist, deepest first."""
    missing: list[Path] = []
    for destination in destinations:
        relative = destination.strip("/")
        while relative:
            host_path = resolve_in_root(rootfs, relative, follow_final=False)
            if os.path.lexists(host_path):
                break
            if host_path not in missing:
                missing.append(host_path)
            relative = os.path.dirname(relative)
    return sorted(missing, key=lambda path: len(path.parts), reverse=True)


def _is_empty_stub(path: Path) -> bool:
    try:
        status = os.lstat(path)
    except OSError:
        return False
    if stat.S_ISREG(status.st_mode):
        return status.st_size == 0
    if stat.S_ISDIR(status.st_mode):
        with os.scandir(path) as entries:
            return next(entries, None) is None
    return False


def remove_mount_stubs(stub_paths: Iterable[Path]) -> list[Path]:
    """Remove the stubs still empty (in the order given: deepest first); the paths removed."""
    removed: list[Path] = []
    for path in stub_paths:
        if not _is_empty_stub(path):
            continue
        parent_status = os.stat(path.parent)
        if os.path.isdir(path) and not os.path.islink(path):
            os.rmdir(path)
        else:
            os.unlink(path)
        os.utime(path.parent, ns=(parent_status.st_atime_ns, parent_status.st_mtime_ns))
        removed.append(path)
    return removed
