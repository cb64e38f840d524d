"""Whether a process still runs: how kiln tells a live writer's temporary files, step dirs
and containers from the leftovers of one that died."""

from __future__ import annotations

import os


def process_alive(pid: int) -> bool:
    """True while ``pid`` names a running process (one we may not signal counts as running).

    Zero and negative numbers name no single process (``kill`` would signal a process
    group), so they are never alive.
    """
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
