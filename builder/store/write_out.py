"""Spliced layers written out whole after a build, by a background process.

A COPY re-run keeps its layer as a splice of the previous one (:mod:`builder.store.splices`),
which is what makes the rebuild fast: the 300 MB the layer shares with its previous
version are neither written nor synced again. kiln reads a splice as one blob, but the
store is also an OCI image layout that outside tools (skopeo, umoci) read, and they need
``blobs/sha256/<hex>`` itself. So once a build has stored its images, the spliced layers it
made are written out whole by a detached, lower-priority process: the build returns at
once, and the layout is complete a moment later. ``KILN_KEEP_SPLICES=1`` leaves them as
splices (less disk and I/O, when nothing outside kiln reads the store).

The writer holds the store's gc lock shared while it opens a splice's parts, so a prune
does not remove them under it (a splice a prune removed before is skipped); it copies them
without the lock. A prune meanwhile that finds the splice unused leaves at worst the whole
blob landing after it, unused, for the next prune. Each blob is checked against its digest
as it is written, and lands whole or not at all.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Sequence

from builder.store.store import Store

#: Set to 1 (or true/yes) to keep spliced layers as they are.
KEEP_SPLICES = "KILN_KEEP_SPLICES"
#: The writer waits for running builds this many seconds at most, polling every _POLL.
PATIENCE = 120.0
_POLL = 0.1
#: Before it starts, and after waiting for a build, the writer waits until no build has run
#: for this long: a rebuild typed right after the last one (an edit-and-build loop) finds
#: the disk idle, not behind hundreds of MB being written out.
QUIET = 1.0


def write_out_later(store: Store) -> bool:
    """Start writing out the splices this process stored, unless asked not to; whether a
    writer was started. Call after the build's images are stored."""
    digests = sorted(store.blobs.spliced)
    if not digests or os.environ.get(KEEP_SPLICES, "").lower() in ("1", "true", "yes"):
        return False
    store.blobs.spliced.clear()
    # Through a shell that puts it in the background and exits: the writer is nobody's
    # child to wait for, outlives the build, and (its own session) a ^C to the build does
    # not reach it.
    command = [sys.executable, "-m", "builder.store.write_out", str(store.root), *digests]
    subprocess.run(
        ["/bin/sh", "-c", '"$@" </dev/null >/dev/null 2>&1 &', "sh", *command],
        check=True,
        start_new_session=True,
        close_fds=True,
    )
    return True


def write_out(store: Store, digests: Sequence[str]) -> int:
    """Write each spliced blob of ``digests`` out whole; return how many were written.

    The gc lock is held (shared) only while each one's parts are opened, not while hundreds
    of MB are copied: held, it keeps a prune waiting, and a re-run of a ``COPY`` from taking
    its previous snapshot in place (:mod:`builder.store.takeover` wants it exclusively, and
    links every file instead when it cannot have it at once)."""
    pause = _YieldToBuilds(store)
    return sum(1 for digest in digests if store.blobs.write_out(digest, opening=store.writing, pause=pause))


class _YieldToBuilds:
    """Waits while a build runs: a rebuild started right after the last one would otherwise
    share the disk with hundreds of MB being written out (ext4 makes a small fsync wait for
    the dirty data of others) and a core with their hashing. Before the first chunk, and
    after a build, it waits for :data:`QUIET` seconds without one, since a build is seen
    only once it has opened the store, and what was written by then is still going to
    disk. Waits :data:`PATIENCE` seconds at most for builds in all, since a build that died
    leaves its lease until it expires."""

    def __init__(self, store: Store) -> None:
        self._leases = store.meta.build_leases
        self._waited = 0.0
        self._settled = False

    def __call__(self) -> None:
        if self._settled and not self._live():
            return
        quiet = 0.0
        while quiet < QUIET:
            time.sleep(_POLL)
            if self._live():
                self._waited += _POLL
                quiet = 0.0
            else:
                quiet += _POLL
        self._settled = True

    def _live(self) -> bool:
        return self._waited < PATIENCE and self._leases.any_live()


def main(argv: Sequence[str]) -> int:
    """``python -m builder.store.write_out ROOT DIGEST...``, as :func:`write_out_later` runs it."""
    from pathlib import Path

    os.nice(10)
    with contextlib.suppress(AttributeError, OSError):  # the CPU only when nothing else wants it
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    root, *digests = argv
    with Store.open(Path(root)) as store:
        write_out(store, digests)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
