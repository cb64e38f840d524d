"""Taking a snapshot out of the store, for a build step to change it into its own.

A ``COPY`` re-run after a few context files changed makes a layer that is its previous
layer but for those files (:mod:`builder.fileops.donor`). Hard-linking that layer's
unchanged files into a new tree costs a ``link()`` each: 20,000 files take a quarter of a
second. Taking the previous snapshot's whole tree as the step's upper dir costs one
``rename``; the copy then writes only what changed.

What goes is the snapshot, not the layer: its blob stays (the new layer is spliced from
it), its cache record and images stay, and whoever needs the snapshot again unpacks it from
the blob (:meth:`SnapshotStore.ensure`), as after a prune.

A snapshot in use is never taken. Every user of a snapshot leases it, or the image it
belongs to, before looking it up (a build under the gc lock held shared, a container when it
is made), so the snapshot is taken under the gc lock held exclusively, and only if it can be
had at once (a build writing a blob right now is not waited for: the step links its files
instead). The leases are read before the rename, and again after it for one added in
between; then the snapshot is put back.
"""

from __future__ import annotations

import os
from pathlib import Path

from builder.store.meta import LEASE_IMAGE, LEASE_SNAPSHOT
from builder.store.snapshots import directory_identity
from builder.store.store import Store


def take_snapshot(
    store: Store, chain_id: str, destination: Path, *, identity: tuple[int, ...] | None = None
) -> bool:
    """Move snapshot ``chain_id``'s tree to ``destination`` (an empty directory on the
    store's filesystem, which it replaces) and forget the snapshot; false, with nothing
    moved, when it is absent or in use, or (given its ``identity``, as
    :func:`~builder.store.snapshots.directory_identity` gives it) is another directory now."""
    source = store.snapshots.path(chain_id)
    with store.exclusive_now() as held:
        if not held or _in_use(store, chain_id):
            return False
        if identity is not None and directory_identity(source) != identity:
            return False  # removed and unpacked again since the caller looked
        try:
            os.rename(source, destination)
        except OSError:
            return False  # gone meanwhile (taken or pruned), or not on the same filesystem
        if _in_use(store, chain_id):
            _put_back(destination, source)
            return False
        store.meta.delete_snapshot(chain_id)
    return True


def _in_use(store: Store, chain_id: str) -> bool:
    """Whether a live lease holds the snapshot, or an image whose layers it is part of."""
    if chain_id in store.meta.leased(LEASE_SNAPSHOT):
        return True
    from builder.store.gc import image_closure

    return any(chain_id in image_closure(store, digest)[1] for digest in store.meta.leased(LEASE_IMAGE))


def _put_back(moved: Path, snapshot: Path) -> None:
    """Return a taken tree; if the snapshot was unpacked again meanwhile, keep that one
    (the same layer) and leave ``moved`` an empty directory again."""
    try:
        os.rename(moved, snapshot)
    except OSError:
        import shutil

        shutil.rmtree(moved, ignore_errors=True)
    moved.mkdir(exist_ok=True)
