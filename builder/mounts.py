"""``RUN --mount`` targets as runtime-spec mounts.

* cache: a directory under ``<store>/cache-mounts/`` that outlives builds, keyed by its id
  (the target when none is given) and its ownership and mode, as BuildKit keeps caches of
  different ``uid`` apart; it is never part of a layer or a key.
* tmpfs: a fresh tmpfs.
* bind: a directory of the context, another stage or an image, read-only unless ``rw``,
  whose writes then go to a throwaway copy.
* secret and ssh: see :mod:`builder.private_mounts` (kept out of the store entirely).

Mount points the runtime has to create in the rootfs are removed from the layer afterwards
(see :mod:`builder.exec.stubs`), as current BuildKit does.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path

from builder.errors import BuildError
from builder.exec.overlay import OverlayMount
from builder.exec.spec import SpecMount
from builder.graph import BindMount, CacheMount, Exec, TmpfsMount
from builder.rootpath import resolve_in_root
from builder.store.locks import file_lock

SourceDirs = Callable[..., AbstractContextManager[Path | None]]


def cache_mount_dir(store_root: Path, mount: CacheMount) -> Path:
    """The persistent directory of a cache mount, created with its owner and mode."""
    identity = f"{mount.id}\0{mount.uid}\0{mount.gid}\0{mount.mode:o}"
    name = hashlib.sha256(identity.encode()).hexdigest()[:32]
    directory = store_root / "cache-mounts" / name
    if not directory.is_dir():
        directory.mkdir(parents=True, exist_ok=True)
        os.chown(directory, mount.uid, mount.gid)
        os.chmod(directory, mount.mode)
    return directory


@contextmanager
def spec_mounts(
    op: Exec, store_root: Path, source_dirs: SourceDirs, where: object
) -> Iterator[list[SpecMount]]:
    """The spec mounts for ``op``'s ``--mount`` flags, valid while the block runs."""
    mounts: list[SpecMount] = []
    with ExitStack() as stack:
        for mount in op.mounts:
            if isinstance(mount, CacheMount):
                directory = cache_mount_dir(store_root, mount)
                if mount.sharing == "locked":
                    stack.enter_context(file_lock(directory.with_suffix(".lock"), exclusive=True))
                elif mount.sharing == "private":
                    directory = _private_cache_dir(directory, mount, stack)
                if mount.source is not None:
                    _seed_cache(directory, mount, source_dirs=source_dirs, where=where, stack=stack, op=op)
                access = "ro" if mount.readonly else "rw"
                mounts.append(SpecMount(mount.target, str(directory), "bind", ("rbind", access)))
            elif isinstance(mount, TmpfsMount):
                size = (f"size={mount.size}",) if mount.size else ()
                mounts.append(SpecMount(mount.target, "tmpfs", "tmpfs", ("nosuid", "nodev", *size)))
            elif isinstance(mount, BindMount):
                root = stack.enter_context(source_dirs(mount.source, where))
                if root is None:
                    raise BuildError(f"cannot bind-mount {mount.target}: no source", op.location)
                source = resolve_in_root(root, mount.source_path or "/")
                if not source.exists():
                    raise BuildError(
                        f"bind mount source {mount.source_path or '/'!r} does not exist", op.location
                    )
                if mount.readwrite:
                    source = _throwaway_copy(source, stack)
                    mounts.append(SpecMount(mount.target, str(source), "bind", ("rbind", "rw")))
                else:
                    mounts.append(SpecMount(mount.target, str(source), "bind", ("rbind", "ro")))
            # Secret and ssh mounts: builder.private_mounts, kept out of the store.
        yield mounts


def prune_cache_mounts(store_root: Path, *, dry_run: bool = False) -> tuple[list[str], int]:
    """Remove every cache mount directory (``kiln prune --filter type=cache-mount``).

    Returns the names removed and the bytes they held. A cache in use by a ``locked`` step
    is skipped; the others are plain directories that the next build recreates empty.
    """
    root = store_root / "cache-mounts"
    if not root.is_dir():
        return [], 0
    removed: list[str] = []
    freed = 0
    for directory in sorted(path for path in root.iterdir() if path.is_dir()):
        lock_path = directory.with_suffix(".lock")
        descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            for walked, _dirs, files in os.walk(directory):
                freed += sum(os.lstat(os.path.join(walked, name)).st_size for name in files)
            if not dry_run:
                shutil.rmtree(directory)
            removed.append(directory.name)
        finally:
            os.close(descriptor)
    return removed, freed


def _private_cache_dir(directory: Path, mount: CacheMount, stack: ExitStack) -> Path:
    """``sharing=private``: the cache dir if no other step holds it, else a sibling of its
    own (``<dir>.1``, ``<dir>.2``, ...), each kept for later builds like the first."""
    candidate = directory
    for number in range(1, 1000):
        descriptor = os.open(candidate.with_name(f"{candidate.name}.private"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            candidate = directory.with_name(f"{directory.name}.{number}")
            if not candidate.is_dir():
                candidate.mkdir()
                os.chown(candidate, mount.uid, mount.gid)
                os.chmod(candidate, mount.mode)
            continue
        stack.callback(os.close, descriptor)
        return candidate
    raise BuildError(f"too many concurrent users of private cache {mount.id!r}")


def _seed_cache(
    directory: Path,
    mount: CacheMount,
    *,
    source_dirs: SourceDirs,
    where: object,
    stack: ExitStack,
    op: Exec,
) -> None:
    """``from``/``source``: an empty cache starts as a copy of that directory of a stage,
    image or context; a cache that already holds something is left as it is."""
    if any(directory.iterdir()):
        return
    root = stack.enter_context(source_dirs(mount.source, where))
    if root is None:
        raise BuildError(f"cannot seed cache {mount.target}: no source", op.location)
    seed = resolve_in_root(root, mount.source_path or "/")
    if not seed.is_dir():
        raise BuildError(f"cache mount source {mount.source_path or '/'!r} is not a directory", op.location)
    shutil.copytree(seed, directory, symlinks=True, dirs_exist_ok=True)


def _throwaway_copy(source: Path, stack: ExitStack) -> Path:
    """A writable view of ``source`` for an ``rw`` bind mount: writes must not reach the
    stage. A directory gets an overlay with a scratch upper dir (nothing is copied, and
    device nodes stay device nodes); a regular file is copied."""
    scratch = Path(tempfile.mkdtemp(prefix="kiln-bind-"))
    stack.callback(shutil.rmtree, scratch, True)
    if source.is_dir():
        merged = scratch / "merged"
        stack.enter_context(OverlayMount([source], scratch / "upper", scratch / "work", merged))
        return merged
    target = scratch / "data"
    shutil.copy2(source, target)
    return target
