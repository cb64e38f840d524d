"""Ctrl-C in the middle of a RUN: kiln stops the container and leaves nothing behind.

``kiln build`` runs in a subprocess on a Dockerfile whose RUN sleeps 30 s; once the step's
progress line (``#N [... ] RUN sleep 30``) is on stderr and its container is running, the
test sends SIGINT (and, in a second case, SIGTERM) and then checks: a non-zero exit, no
mount left under the store, no container left in crun's or runc's list, nothing left in
``<store>/containers/``, and a second build in the same store succeeds.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from builder.exec.runtime import find_runtime
from tests.conftest import REPO_ROOT
from tests.fixtures.busybox import containers_with_bundle_under
from tests.fixtures.context_files import make_tree
from tests.fixtures.kiln_cli import kiln

pytestmark = [pytest.mark.root, pytest.mark.slow]

DOCKERFILE = "FROM busybox\nRUN echo started && sleep 30\nRUN echo never > /never\n"
STEP_LINE = re.compile(rb"^#\d+ \[.*\] RUN echo started && sleep 30$", re.MULTILINE)
STARTUP_TIMEOUT = 30.0


def _mounts_under(directory: Path) -> list[str]:
    with open("/proc/mounts", encoding="utf-8") as mounts:
        targets = [line.split()[1] for line in mounts]
    return [target for target in targets if target.startswith(str(directory))]


def _runtime_containers(store_root: Path) -> list[str]:
    """Containers bundled under the store, in every installed runtime's list."""
    leftovers: list[str] = []
    for name in ("crun", "runc"):
        if shutil.which(name):
            leftovers += containers_with_bundle_under(find_runtime(name), store_root)
    return leftovers


def _start_build(store_root: Path, context: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "builder.cli.main", "--root", str(store_root)]
    command += ["build", "--progress", "plain", "-t", "interrupted", str(context)]
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen(
        command, cwd=REPO_ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def _wait_for_step(process: subprocess.Popen[bytes]) -> bytes:
    """Read stderr until the RUN step's line and its first output; what was read."""
    assert process.stderr is not None
    seen = b""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        chunk = os.read(process.stderr.fileno(), 4096)
        if not chunk:
            break
        seen += chunk
        step = STEP_LINE.search(seen)
        if step is not None and b"started" in seen[step.end() :]:
            return seen
    process.kill()
    pytest.fail(f"the RUN step never started; kiln wrote:\n{seen.decode(errors='replace')}")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupt_mid_run_leaves_nothing_behind(
    tmp_path: Path,
    busybox_store: Path,
    signum: signal.Signals,
) -> None:
    context = make_tree(tmp_path / "context", {"Dockerfile": DOCKERFILE})
    mounts_before = _mounts_under(busybox_store)

    process = _start_build(busybox_store, context)
    _wait_for_step(process)
    started = time.monotonic()
    process.send_signal(signum)
    _stdout, stderr = process.communicate(timeout=20)

    assert process.returncode != 0, stderr.decode(errors="replace")
    assert time.monotonic() - started < 10, "kiln did not stop the 30 s step promptly"
    assert _mounts_under(busybox_store) == mounts_before == []
    assert _runtime_containers(busybox_store) == []
    assert sorted(path.name for path in (busybox_store / "containers").iterdir()) == []

    (context / "Dockerfile").write_text("FROM busybox\nRUN echo again > /again\n")
    assert kiln(busybox_store, "build", "-q", "-t", "again", str(context)) == 0


def test_the_next_build_cleans_up_after_a_killed_one(
    tmp_path: Path,
    busybox_store: Path,
) -> None:
    """SIGKILL gives kiln no chance to clean up: its container keeps running and its overlay
    stays mounted. The next build in the store removes them (and nothing of a live build)."""
    context = make_tree(tmp_path / "context", {"Dockerfile": DOCKERFILE})

    process = _start_build(busybox_store, context)
    _wait_for_step(process)
    process.kill()
    process.communicate(timeout=20)
    assert _mounts_under(busybox_store) != []
    assert _runtime_containers(busybox_store) != []

    (context / "Dockerfile").write_text("FROM busybox\nRUN echo again > /again\n")
    assert kiln(busybox_store, "build", "-q", "-t", "again", str(context)) == 0
    assert _mounts_under(busybox_store) == []
    assert _runtime_containers(busybox_store) == []
    assert sorted(path.name for path in (busybox_store / "containers").iterdir()) == []
