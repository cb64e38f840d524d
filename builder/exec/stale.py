"""Leftovers of a kiln process that died mid-step (SIGKILL, power loss), found and removed.

Every step names its scratch dir ``.kiln-step-<pid>-*`` and its container ``kiln-<pid>-*``
after the kiln process running it. A leftover whose process is gone is stale: its container
is force-deleted, its overlay unmounted and its scratch dir removed. A live process's steps
are never touched, so a starting kiln can clean up while other builds run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

from builder.exec.overlay import unmount
from builder.exec.runtime import OciRuntime
from builder.exec.step import CONTAINER_ID_PREFIX
from builder.leftovers import STEP_DIR_PREFIX
from builder.processes import process_alive

_CONTAINER_ID = re.compile(re.escape(CONTAINER_ID_PREFIX) + r"(\d+)-[0-9a-f]+")
_STEP_DIR = re.compile(re.escape(STEP_DIR_PREFIX) + r"(\d+)-")


def remove_stale_containers(runtime: OciRuntime) -> list[str]:
    """Force-delete the runtime's kiln containers whose kiln process is gone; their ids."""
    listing = subprocess.run(
        runtime.command("list", "--format", "json"), capture_output=True, text=True, check=False
    )
    if listing.returncode != 0:
        return []
    removed: list[str] = []
    for container in json.loads(listing.stdout or "null") or []:
        container_id = str(container.get("id", ""))
        match = _CONTAINER_ID.fullmatch(container_id)
        if match is None or process_alive(int(match.group(1))):
            continue
        process = runtime.popen(
            "delete", "--force", container_id, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        if process.wait() == 0:
            removed.append(container_id)
    return removed


def _mount_points_under(directory: Path) -> list[Path]:
    """Mount points at or below ``directory``, deepest first."""
    prefix = os.path.realpath(directory).rstrip("/") + "/"
    found: list[Path] = []
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as mountinfo:
        for line in mountinfo:
            mount_point = line.split()[4].replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\")
            if mount_point.startswith(prefix):
                found.append(Path(mount_point))
    return sorted(found, key=lambda path: len(path.parts), reverse=True)


def remove_stale_step_dirs(parent: Path) -> list[Path]:
    """Unmount and remove the step scratch dirs of dead kilns in ``parent`` or its subdirs.

    Only two levels are searched (a step dir sits beside the upper dir it was given), so a
    live step's mounted rootfs is never walked.
    """
    removed: list[Path] = []
    candidates = [*parent.glob(f"{STEP_DIR_PREFIX}*"), *parent.glob(f"*/{STEP_DIR_PREFIX}*")]
    for step_dir in sorted(candidates):
        match = _STEP_DIR.match(step_dir.name)
        if match is None or not step_dir.is_dir() or process_alive(int(match.group(1))):
            continue
        for mount_point in _mount_points_under(step_dir):
            unmount(mount_point)
        shutil.rmtree(step_dir)
        removed.append(step_dir)
    return removed
