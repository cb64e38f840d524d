"""Spliced layers written out whole after a build, by a background process.

A COPY re-run keeps its layer as a splice of the previous one (:mod:`builder.store.splices`),
which is what makes the rebuild fast: the 300 MB the layer shares with its previous
version are neither written nor synced again. kiln reads a splice as one blob, but the
store is also an OCI image layout that outside tools (skopeo, umoci) read, and they need
``blobs/sha256/<hex>`` itself. So once a build has stored its images, the spliced layers it
made are written out whole by a detached, lower-priority process: the build returns at
once, and the layout is complete a moment later. ``KILN_KEEP_SPLICES=1`` leaves them as
splices (less disk and I/O, when nothing outside kiln reads the store).

The writer holds the store's gc lock shared, as a build's writes do, so a prune waits for
it; a splice a prune removed before it started is skipped. Each blob is checked against
its digest as it is written, and lands whole or not at all.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence

from builder.store.store import Store

#: Set to 1 (or true/yes) to keep spliced layers as they are.
KEEP_SPLICES = "KILN_KEEP_SPLICES"


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
    """Write each spliced blob of ``digests`` out whole; return how many were written."""
    written = 0
    with store.writing():
        for digest in digests:
            if store.blobs.write_out(digest):
                written += 1
    return written


def main(argv: Sequence[str]) -> int:
    """``python -m builder.store.write_out ROOT DIGEST...``, as :func:`write_out_later` runs it."""
    from pathlib import Path

    os.nice(10)
    root, *digests = argv
    with Store.open(Path(root)) as store:
        write_out(store, digests)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
