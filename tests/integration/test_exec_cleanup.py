"""Leaving nothing behind: a step stopped by an error, Ctrl-C or SIGTERM, and a dead kiln's leftovers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from builder.exec.overlay import OverlayMount, is_mounted
from builder.exec.runtime import OciRuntime
from builder.exec.spec import runtime_spec
from builder.exec.stale import remove_stale_containers, remove_stale_step_dirs
from builder.exec.step import run_step
from builder.exec.users import ResolvedUser
from tests.conftest import REPO_ROOT
from tests.fixtures.busybox import containers_with_bundle_under

pytestmark = pytest.mark.root
pytest_plugins = ["tests.fixtures.busybox_steps"]  # busybox_rootfs, oci_runtime


class OutputRefusedError(Exception):
    """Raised by an output sink, standing for any error in the caller while a step runs."""


def test_error_in_output_sink_stops_the_container(
    busybox_rootfs: Path, oci_runtime: OciRuntime, tmp_path: Path
) -> None:
    def refuse(chunk: bytes) -> None:
        raise OutputRefusedError(chunk.decode())

    started = time.monotonic()
    with pytest.raises(OutputRefusedError, match="ready"):
        run_step(
            [busybox_rootfs],
            tmp_path / "upper",
            argv=["/bin/sh", "-c", "echo ready; sleep 30"],
            env=("PATH=/bin",),
            cwd="/",
            user="",
            network="default",
            on_output=refuse,
            runtime=oci_runtime,
        )
    assert time.monotonic() - started < 10
    assert str(tmp_path) not in Path("/proc/mounts").read_text()
    assert sorted(os.listdir(tmp_path)) == ["upper"]
    assert containers_with_bundle_under(oci_runtime, tmp_path) == []


INTERRUPTED_STEP = textwrap.dedent(
    """
    import sys
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path
    from builder.exec.runtime import find_runtime, interrupts_stop_containers
    from builder.exec.step import run_step

    rootfs, upper, runtime_name, where = sys.argv[1:]

    def forward(chunk):
        sys.stdout.buffer.write(chunk)
        sys.stdout.flush()

    def step():
        return run_step([Path(rootfs)], Path(upper), argv=["/bin/sh", "-c", "echo ready; sleep 30"],
                        env=["PATH=/bin"], cwd="/", user="", network="default", on_output=forward,
                        runtime=find_runtime(runtime_name))

    if where == "main-thread":
        try:
            step()
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            sys.exit(130)
    else:
        # As the CLI and solver do: steps in worker threads, the main thread waiting.
        try:
            with interrupts_stop_containers(), ThreadPoolExecutor(1) as pool:
                future = pool.submit(step)
                future.result()
        except KeyboardInterrupt:
            print("interrupted;", "worker raised", type(future.exception()).__name__, flush=True)
            sys.exit(130)
    """
)


LAST_WORDS = {
    "main-thread": b"interrupted\n",
    "worker-thread": b"interrupted; worker raised KeyboardInterrupt\n",
}


@pytest.mark.parametrize("where", sorted(LAST_WORDS))
@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_leaves_no_mount_process_or_dir(
    busybox_rootfs: Path, oci_runtime: OciRuntime, tmp_path: Path, signal_number: int, where: str
) -> None:
    upper = tmp_path / "upper"
    child = subprocess.Popen(
        [sys.executable, "-c", INTERRUPTED_STEP, str(busybox_rootfs), str(upper), oci_runtime.name, where],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
    )
    assert child.stdout is not None
    with child.stdout:
        assert child.stdout.readline() == b"ready\n"
        assert len(containers_with_bundle_under(oci_runtime, tmp_path)) == 1
        started = time.monotonic()
        child.send_signal(signal_number)
        remaining_output = child.stdout.read()
    assert child.wait(timeout=20) == 130
    assert time.monotonic() - started < 10
    assert remaining_output == LAST_WORDS[where]
    assert str(tmp_path) not in Path("/proc/mounts").read_text()
    assert sorted(os.listdir(tmp_path)) == ["upper"]
    assert containers_with_bundle_under(oci_runtime, tmp_path) == []
    sleepers = subprocess.run(
        ["pgrep", "-f", "sleep 30"], capture_output=True, text=True, check=False
    ).stdout.split()
    for pid in sleepers:
        root = os.readlink(f"/proc/{pid}/root") if os.path.exists(f"/proc/{pid}/root") else ""
        assert str(tmp_path) not in root


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    probe = subprocess.Popen(["true"])
    probe.wait()
    return probe.pid


def test_stale_step_dir_of_a_dead_kiln_is_unmounted_and_removed(busybox_rootfs: Path, tmp_path: Path) -> None:
    workspace = tmp_path / "containers" / "step-1"
    stale_dir = workspace / f".kiln-step-{dead_pid()}-abc"
    live_dir = workspace / f".kiln-step-{os.getpid()}-def"
    live_dir.mkdir(parents=True)
    stale_mount = OverlayMount(
        [busybox_rootfs], workspace / "upper", stale_dir / "work", stale_dir / "rootfs"
    )
    stale_mount.__enter__()
    assert is_mounted(stale_dir / "rootfs")
    assert remove_stale_step_dirs(tmp_path / "containers") == [stale_dir]
    assert not is_mounted(stale_dir / "rootfs")
    assert not stale_dir.exists()
    assert live_dir.exists()


def test_stale_container_of_a_dead_kiln_is_deleted(
    busybox_rootfs: Path, oci_runtime: OciRuntime, tmp_path: Path
) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n")
    spec = runtime_spec(
        rootfs=busybox_rootfs,
        argv=["/bin/sleep", "30"],
        env=["PATH=/bin"],
        cwd="/",
        user=ResolvedUser(uid=0, gid=0),
        network="host",
        hosts_file=hosts,
        resolv_conf=hosts,
        readonly_rootfs=True,
    )
    (tmp_path / "config.json").write_text(json.dumps(spec))
    stale_id = f"kiln-{dead_pid()}-0123abcd"
    started = oci_runtime.popen(
        "run",
        "--detach",
        "--bundle",
        str(tmp_path),
        stale_id,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    assert started.wait() == 0
    assert containers_with_bundle_under(oci_runtime, tmp_path) == [stale_id]
    assert stale_id in remove_stale_containers(oci_runtime)
    assert containers_with_bundle_under(oci_runtime, tmp_path) == []
