"""What a kiln process that died mid-step (SIGKILL, power loss) leaves behind, found cheaply.

Every step's scratch dirs are named ``.kiln-step-<pid>-...`` after the kiln process that made
them, and its containers ``kiln-<pid>-...``. A build starts by listing its store's
``containers/`` dir: the leftovers of dead processes are unmounted, removed and their
containers deleted (:mod:`builder.exec.stale`), while a running build's are never touched.
The listing is all a build pays when there is nothing to clean; the cleanup machinery is
imported only when there is.
"""

from __future__ import annotations

from pathlib import Path

from builder.processes import process_alive

#: The prefix of every step scratch dir (build workspaces and run_step's own).
STEP_DIR_PREFIX = ".kiln-step-"


def remove_dead_workspaces(containers_dir: Path) -> list[Path]:
    """Clean up after dead kiln processes in ``containers_dir``; the dirs removed."""
    if not containers_dir.is_dir():
        return []
    dead = [
        entry
        for entry in containers_dir.iterdir()
        if entry.name.startswith(STEP_DIR_PREFIX) and _dead_owner(entry.name)
    ]
    if not dead:
        return []
    from builder.errors import KilnError
    from builder.exec.runtime import find_runtime
    from builder.exec.stale import remove_stale_containers, remove_stale_step_dirs

    removed = remove_stale_step_dirs(containers_dir)
    for runtime_name in ("crun", "runc"):
        try:
            remove_stale_containers(find_runtime(runtime_name))
        except KilnError:
            continue
    return removed


def _dead_owner(name: str) -> bool:
    """Whether the kiln process a step dir is named after is gone (a name without a pid is
    not ours to judge: it stays)."""
    digits = name[len(STEP_DIR_PREFIX) :].split("-", 1)[0]
    return digits.isdigit() and not process_alive(int(digits))
