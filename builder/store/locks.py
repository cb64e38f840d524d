"""Cross-process file locks (``flock``) that keep two kiln processes from tearing the store.

Two locks matter. The *gc lock* is held shared by every operation that writes blobs and then
records them (import, load, build, tag) and exclusively by ``prune``, so a sweep never sees a
blob that is written but not yet referenced. The *index lock* serialises rewrites of the
root ``index.json``. ``flock`` locks belong to the open file description, so the kernel drops
them when a process dies: a crash never leaves the store locked.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def file_lock(path: Path, *, exclusive: bool) -> Iterator[None]:
    """Hold a shared or exclusive ``flock`` on ``path`` (created if missing) for the block."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


@contextmanager
def file_lock_now(path: Path) -> Iterator[bool]:
    """Hold ``path``'s ``flock`` exclusively for the block if no one holds it now; yields
    whether it is held. For work that may as well be skipped rather than waited for."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
        else:
            yield True
    finally:
        os.close(fd)
