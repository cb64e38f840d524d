"""``RUN --mount`` targets as runtime-spec mounts.

* cache: a directory under ``<store>/cache-mounts/`` that outlives builds, keyed by its id
  (the target when none is given) and its ownership and mode, as BuildKit keeps caches of
  different ``uid`` apart; it is never part of a layer or a key.
* tmpfs: a fresh tmpfs.
* bind: a directory of the context, another stage or an image, read-only unless ``rw``,
  whose writes then go to a throwaway copy.
* secret and ssh: provided by the build's secret store (when given); a missing required
  secret fails the step.

Mount points the runtime has to create in the rootfs are removed from the layer afterwards
(see :mod:`builder.exec.stubs`), as current BuildKit does.
"""

from __future__ import annotations

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
from builder.graph import BindMount, CacheMount, Exec, SecretMount, SshMount, TmpfsMount
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
            elif isinstance(mount, (SecretMount, SshMount)):
                if mount.required:
                    kind = "secret" if isinstance(mount, SecretMount) else "ssh agent"
                    raise BuildError(f"{kind} {mount.id!r} is required but was not provided", op.location)
        yield mounts


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
