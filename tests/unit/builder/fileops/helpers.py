"""Small builders for file-op tests: ops, trees on disk, and a listing to compare trees."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from builder.graph import ContextSource, CopyOp, CopySource
from builder.source import SourceSpan

SPAN = SourceSpan(file="Dockerfile", start_line=3, end_line=3, text="COPY test")


def copy_op(*paths: str, dest: str, source: CopySource | None = None, **options: object) -> CopyOp:
    """A COPY of ``paths`` to ``dest``; ``options`` are CopyOp fields (chmod, unpack, ...)."""
    return CopyOp(
        location=SPAN,
        created_by="COPY " + " ".join((*paths, dest)),
        source=source or ContextSource(),
        paths=paths,
        dest=dest,
        **options,  # type: ignore[arg-type]
    )


def listing(root: Path) -> dict[str, tuple[str, str, str]]:
    """``{path: (type, octal mode, detail)}`` for everything under ``root``."""
    found: dict[str, tuple[str, str, str]] = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(directory) / name
            info = os.lstat(path)
            rel = str(path.relative_to(root))
            mode = oct(stat.S_IMODE(info.st_mode))[2:]
            if stat.S_ISLNK(info.st_mode):
                found[rel] = ("l", mode, os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                found[rel] = ("d", mode, "")
            elif stat.S_ISREG(info.st_mode):
                found[rel] = ("f", mode, path.read_text(errors="replace"))
            else:  # a device or fifo: never opened, reading one may block or never end
                found[rel] = ("o", mode, "")
    return found


def owner(path: Path) -> tuple[int, int]:
    info = os.lstat(path)
    return info.st_uid, info.st_gid
