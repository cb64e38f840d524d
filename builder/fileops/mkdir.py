"""WORKDIR's filesystem half: make the directory and its missing parents.

BuildKit makes the missing directories ``0755`` and owned by the stage's ``USER`` (resolved
in the image's own /etc/passwd and /etc/group, by the file-op rules of
:mod:`builder.fileops.owner`); directories that exist are left untouched, and when nothing
is missing the user is not even looked up, so ``USER daemon`` then ``WORKDIR /tmp`` works on
an image without a ``daemon`` user (``workdir-owner``). The path resolves inside the root:
a symlink on the way leads where it points within the image.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from builder.errors import BuildError, KilnError
from builder.fileops.owner import resolve_owner
from builder.graph import MkdirOp
from builder.rootpath import resolve_in_root

_CAN_CHOWN = os.geteuid() == 0


def make_workdir(op: MkdirOp, *, dest_root: Path) -> list[Path]:
    """Apply ``op`` under ``dest_root``; return the directories it created, outermost first."""
    target = resolve_in_root(dest_root, op.path)
    missing = _missing_dirs(dest_root, target, op)
    if not missing:
        return []
    owner: tuple[int, int] | None = None
    if op.user:
        try:
            owner = resolve_owner(op.user, dest_root)
        except KilnError as err:
            raise BuildError(f"WORKDIR {op.path}: {err}", op.location) from err
    for directory in missing:
        os.mkdir(directory, 0o700)
        if owner is not None and _CAN_CHOWN:
            os.lchown(directory, *owner)
        os.chmod(directory, op.mode & 0o7777)
    return missing


def _missing_dirs(dest_root: Path, target: Path, op: MkdirOp) -> list[Path]:
    """The components of ``target`` (resolved in root) that do not exist yet."""
    missing: list[Path] = []
    current = dest_root
    for part in target.relative_to(dest_root).parts:
        current = current / part
        if missing:
            missing.append(current)
            continue
        try:
            info = os.lstat(current)
        except FileNotFoundError:
            missing.append(current)
            continue
        if not stat.S_ISDIR(info.st_mode):
            shown = "/" + str(current.relative_to(dest_root))
            raise BuildError(f"WORKDIR {op.path}: {shown} exists and is not a directory", op.location)
    return missing
