"""Hashing a large COPY re-run's layer ahead: from while the step is still being probed.

When a ``COPY`` of one context path misses the cache because some files changed, its layer
is spliced from the previous one (:mod:`builder.stepcommit`). Up to the first changed file,
the new tar is the previous one, where the item's directory keeps its time unless the copy
gives it other entries (:meth:`DonorLayer.restamp_items`). Kept, the previous tar's own
saved states serve and nothing needs hashing ahead. Restamped, the header moves at byte 145
and every byte must be hashed again, but they can be foretold and hashed on the other core
(:mod:`builder.layers.prehash`). Started once the step was known to miss, that hashing still
had 0.2 s to go when the copy of a 300 MB context was done. So for a large previous layer it
starts as soon as the probe's context walk meets a directory that changed since the last
walk (``on_change``, :mod:`cache.treewalk`), when that is the copy's source directory with
other entries than before: the rest of the probe runs beside it, and a fully cached build,
whose walk meets no change, pays nothing.

It is a guess twice over: the step may be cached after all (the work is dropped), and the
previous snapshot may not be taken in place (then it is not used either). The foretold time
of the restamped directory is the copy's time: the donor is given it (:attr:`now_ns`).
"""

from __future__ import annotations

import os
import posixpath
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from builder.lazyclasses import dataclass

if TYPE_CHECKING:
    from builder.stepcommit import IndexedLayer, OpenedLayer
    from builder.store.store import Lease, Store
    from cache.records import CacheRecord

#: Only a previous layer at least this large is worth hashing ahead.
AHEAD_MIN_SIZE = 64 << 20


@dataclass
class HashAhead:
    """The previous layer of a step, opened, with its foretold bytes being hashed."""

    indexed: IndexedLayer
    opened: OpenedLayer
    #: The time the foretold directory headers hold, which the copy must give them.
    now_ns: int

    def close(self) -> None:
        self.opened.close()


def hash_ahead(
    store: Store,
    lease: Lease,
    previous: CacheRecord,
    *,
    destination: str,
    lower_dirs: Sequence[Path],
    containers_dir: Path,
    source_date_epoch: int | None,
) -> HashAhead | None:
    """Start hashing the likely new layer of a re-run of the step ``previous`` was recorded
    for, a copy to ``destination`` over the snapshots ``lower_dirs``; ``None`` when that
    layer cannot be foretold (too small, not indexed, its snapshot or a lower one gone).
    Nothing may need hashing ahead: the copy's time can be the previous copy's, to the
    second, and then the previous tar's own saved states serve."""
    if previous.size < AHEAD_MIN_SIZE or not all(os.path.isdir(directory) for directory in lower_dirs):
        return None  # (before any import: a cached build of small layers loads nothing more)
    from builder.stepcommit import indexed_layer, open_layer
    from builder.workspace import rootfs_view

    indexed = indexed_layer(store, previous)
    if indexed is None:
        return None
    opened = open_layer(store, lease, indexed)
    if opened is None:
        return None
    now_ns = time.time_ns()
    try:
        with rootfs_view(lower_dirs, containers_dir) as lower:
            foretell_copy(
                opened,
                tree=store.snapshots.path(previous.chain_id),
                destination=destination,
                lower=lower,
                now_ns=now_ns,
                source_date_epoch=source_date_epoch,
            )
    except BaseException:
        opened.close()
        raise
    # Even with nothing to hash ahead (the copy's time is the previous one's to the second,
    # so the previous tar's saved states serve), the copy must take this time.
    return HashAhead(indexed, opened, now_ns)


def foretell_copy(
    opened: OpenedLayer,
    *,
    tree: Path,
    destination: str,
    lower: Path,
    now_ns: int,
    source_date_epoch: int | None,
) -> None:
    """Start hashing the likely layer of a copy to ``destination`` re-run over ``tree`` (its
    previous tree, over the layers below shown at ``lower``) at ``now_ns``: the previous
    tar, with the directories the copy restamps (:meth:`DonorLayer.restamp_items`) given the
    time their headers will hold (:func:`builder.stepcommit.foretell`). Called when the
    walk found the item's own directory with other entries than the last walk did: only it
    is likely to be restamped, as the ones above it keep their entries, and so their times."""
    from builder.fileops.donor import stale_times
    from builder.stepcommit import foretell

    item = posixpath.normpath("/" + destination).lstrip("/")
    restamped = stale_times(tree, [item], lower) if item else []
    mtime = now_ns // 10**9
    foretell(opened, restamped, mtime if source_date_epoch is None else min(mtime, source_date_epoch))
