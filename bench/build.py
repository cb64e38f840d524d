"""How long a cold ``kiln build`` takes, and how much of it is kiln's own per-step overhead.

Run as root from the repository root: ``python bench/build.py [--runs N] [--profile]``.

Three builds, each cold (a fresh store holding only the busybox base, already unpacked, so
no step is cached and no base layer is unpacked while the clock runs):

* ``hello``: ``examples/hello`` (a COPY and a RUN);
* ``multistage``: ``examples/multistage`` (two stages the target needs, one it skips);
* ``30-step``: a generated Dockerfile of 30 ``RUN echo step N > /stepN``.

Per-step overhead is (build time - the commands' own time) / steps. The commands' own time
is measured by running each RUN's command as a plain host process (``busybox sh -c``) in a
scratch directory, for the 30-step case exactly; for the examples it is estimated as one such
busybox start per RUN, so their overhead figure is slightly high. Two build times are shown:
the wall time of the ``kiln build`` process (interpreter start-up and imports included, as a
user sees it) and the time kiln reports for the build itself.

``docker build --network=host`` and ``buildah bud --runtime=runc`` are timed on the same
Dockerfiles when installed (``not installed`` otherwise). ``--profile`` builds the 30-step
Dockerfile in-process with timers around each stage of a step (overlay mount, runtime
spec, OCI runtime run, layer write, snapshot adoption, SQLite, fsync) and prints where the
time goes.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent

BASE_IMAGE = "busybox:latest"
BUSYBOX = Path("/bin/busybox")
STEP_COUNT = 30
GOAL_MS_PER_STEP = 30.0
_REPORTED = re.compile(r" in ([0-9.]+)s \((\d+)/(\d+) steps cached\)")


@dataclass(frozen=True)
class Scenario:
    """One Dockerfile to build: its context, and the host commands its RUNs amount to."""

    name: str
    context: Path
    run_commands: tuple[str, ...]
    exact_commands: bool


@dataclass(frozen=True)
class Timing:
    """One cold build: wall seconds, kiln's own figure (None for other tools), steps."""

    wall: float
    reported: float | None
    steps: int


def kiln_command(root: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "builder.cli.main", "--root", str(root), *args]


def run(command: Sequence[str], *, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        shown = " ".join(command[:6])
        raise RuntimeError(f"{shown} ... failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return result


def make_base_tar(work: Path) -> Path:
    """The quick start's busybox rootfs tar, made by ``examples/busybox-rootfs.sh``."""
    tar_path = work / "busybox-rootfs.tar"
    run(["sh", str(REPO_ROOT / "examples" / "busybox-rootfs.sh"), str(tar_path)])
    return tar_path


def make_steps_context(directory: Path) -> Scenario:
    directory.mkdir(parents=True)
    commands = tuple(f"echo step {index} > /step{index}" for index in range(1, STEP_COUNT + 1))
    lines = [f"FROM {BASE_IMAGE}", *(f"RUN {command}" for command in commands)]
    (directory / "Dockerfile").write_text("\n".join(lines) + "\n")
    return Scenario("30-step", directory, commands, exact_commands=True)


def scenarios(work: Path) -> list[Scenario]:
    examples = REPO_ROOT / "examples"
    return [
        Scenario("hello", examples / "hello", ("true",), exact_commands=False),
        Scenario("multistage", examples / "multistage", ("true",), exact_commands=False),
        make_steps_context(work / "steps"),
    ]


def commands_seconds(scenario: Scenario, scratch: Path) -> float:
    """The RUN commands' own time as host processes; paths are made relative to ``scratch``."""
    scratch.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    for command in scenario.run_commands:
        subprocess.run([str(BUSYBOX), "sh", "-c", command.replace("> /", "> ./")], cwd=scratch, check=True)
    return time.perf_counter() - started


def kiln_cold_build(scenario: Scenario, base_tar: Path, work: Path) -> Timing:
    root = Path(tempfile.mkdtemp(prefix="store-", dir=work))
    try:
        run(kiln_command(root, "import", "--change", 'CMD ["sh"]', str(base_tar), BASE_IMAGE))
        unpack = (
            "from pathlib import Path; from builder.store import Store; "
            f"Store.open(Path({str(root)!r})).snapshot_for({BASE_IMAGE!r})"
        )
        run([sys.executable, "-c", unpack], cwd=REPO_ROOT)
        started = time.perf_counter()
        result = run(kiln_command(root, "build", "--progress", "plain", str(scenario.context)), cwd=REPO_ROOT)
        wall = time.perf_counter() - started
    finally:
        shutil.rmtree(root, ignore_errors=True)
    reported = _REPORTED.search(result.stderr)
    if reported is None:
        raise RuntimeError(f"kiln build printed no summary line:\n{result.stderr[-2000:]}")
    return Timing(wall, float(reported.group(1)), int(reported.group(3)))


def docker_cold_build(scenario: Scenario, base_tar: Path, steps: int) -> Timing:
    run(["docker", "import", "--change", 'CMD ["sh"]', str(base_tar), BASE_IMAGE])
    started = time.perf_counter()
    run(["docker", "build", "--no-cache", "--network=host", "-q", str(scenario.context)])
    return Timing(time.perf_counter() - started, None, steps)


def buildah_cold_build(scenario: Scenario, base_tar: Path, steps: int) -> Timing:
    container = run(["buildah", "from", "scratch"]).stdout.strip()
    run(["buildah", "add", container, str(base_tar), "/"])
    run(["buildah", "config", "--cmd", "sh", container])
    run(["buildah", "commit", "-q", container, BASE_IMAGE])
    run(["buildah", "rm", container])
    started = time.perf_counter()
    run(["buildah", "bud", "--runtime=runc", "--no-cache", "-q", str(scenario.context)])
    return Timing(time.perf_counter() - started, None, steps)


def _docker_usable() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0


def overhead_ms(build_seconds: float, command_seconds: float, steps: int) -> float:
    return (build_seconds - command_seconds) / max(steps, 1) * 1000


def _median_timing(timings: list[Timing]) -> Timing:
    reported = [t.reported for t in timings if t.reported is not None]
    return Timing(
        statistics.median(t.wall for t in timings),
        statistics.median(reported) if reported else None,
        timings[0].steps,
    )


def report(tool: str, scenario: Scenario, timing: Timing, command_seconds: float) -> None:
    note = "" if scenario.exact_commands else " (commands estimated)"
    line = (
        f"  {tool:<8} {scenario.name:<11} {timing.steps:>2} steps  wall {timing.wall:6.2f} s"
        f"  = {overhead_ms(timing.wall, command_seconds, timing.steps):6.1f} ms/step"
    )
    if timing.reported is not None:
        per_step = overhead_ms(timing.reported, command_seconds, timing.steps)
        line += f"  | build {timing.reported:5.2f} s = {per_step:6.1f} ms/step"
    print(line + note)


OtherBuild = Callable[[Scenario, Path, int], Timing]


def other_tools() -> list[tuple[str, OtherBuild | None]]:
    """docker and buildah, each with its build function, or None when not usable here."""
    return [
        ("docker", docker_cold_build if _docker_usable() else None),
        ("buildah", buildah_cold_build if shutil.which("buildah") else None),
    ]


def bench(runs: int, work: Path, base_tar: Path) -> None:
    print(f"cold builds, median of {runs}; overhead = (time - commands' own time) / steps")
    for scenario in scenarios(work):
        command_seconds = statistics.median(
            commands_seconds(scenario, work / f"commands-{scenario.name}-{attempt}")
            for attempt in range(runs)
        )
        timing = _median_timing([kiln_cold_build(scenario, base_tar, work) for _ in range(runs)])
        print(f"{scenario.name}: commands' own time {command_seconds * 1000:.1f} ms")
        report("kiln", scenario, timing, command_seconds)
        for tool, build in other_tools():
            if build is None:
                print(f"  {tool:<8} {scenario.name:<11} not installed")
                continue
            timings = [build(scenario, base_tar, timing.steps) for _ in range(runs)]
            report(tool, scenario, _median_timing(timings), command_seconds)
    print(f"goal: under {GOAL_MS_PER_STEP:.0f} ms of overhead a step")


class StageTimers:
    """Seconds spent inside wrapped functions, summed over threads. A label already being
    timed in the same thread is not timed again (a method calling its sibling)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self._lock = threading.Lock()
        self._local = threading.local()

    def wrap(self, owner: Any, attribute: str, label: str) -> None:
        original = getattr(owner, attribute)

        def timed(*args: Any, **kwargs: Any) -> Any:
            active: set[str] = self._local.__dict__.setdefault("active", set())
            if label in active:
                return original(*args, **kwargs)
            active.add(label)
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - started
                active.discard(label)
                with self._lock:
                    self.seconds[label] = self.seconds.get(label, 0.0) + elapsed
                    self.calls[label] = self.calls.get(label, 0) + 1

        setattr(owner, attribute, timed)


#: (module, attribute path, label): where a step's time can go. Names are patched where
#: they are looked up: the runner imports ``run_step`` from ``builder.exec.step`` and
#: ``write_layer`` from the ``builder.layers`` package inside its methods, at each call.
PROFILE_POINTS = (
    ("builder.runner", "LocalRunner.run_op", "step total (runner.run_op)"),
    ("builder.exec.step", "run_step", "  RUN: run_step (mount .. unmount)"),
    ("builder.exec.overlay", "OverlayMount.__enter__", "    overlay mount (mkdirs, mount)"),
    ("builder.exec.overlay", "OverlayMount.close", "    overlay unmount, work dir removal"),
    ("builder.exec.step", "resolve_user_in_root", "    user lookup (/etc/passwd, /etc/group)"),
    ("builder.exec.step", "_write_net_files", "    hosts, resolv.conf"),
    ("builder.exec.step", "missing_mount_points", "    mount-point stubs made"),
    ("builder.exec.step", "remove_mount_stubs", "    mount-point stubs removed"),
    ("builder.exec.step", "runtime_spec", "    runtime spec"),
    ("builder.exec.step", "run_container", "    OCI runtime run (start, command, delete)"),
    ("builder.layers", "write_layer", "  layer write (tar, gzip, digests)"),
    ("builder.store.blobs", "BlobStore.put_from_writer", "  blob put (layer write, fsync, rename)"),
    ("builder.store.snapshots", "SnapshotStore.adopt", "  snapshot adopt (size walk, rename)"),
)
_META_METHODS = ("add_snapshot", "snapshot", "touch_snapshot", "add_lease_resource", "put_value", "get_value")


def _install_timers(timers: StageTimers) -> None:
    for module_name, path, label in PROFILE_POINTS:
        owner: Any = importlib.import_module(module_name)
        *parents, attribute = path.split(".")
        for parent in parents:
            owner = getattr(owner, parent)
        timers.wrap(owner, attribute, label)
    from builder.store.meta import MetaStore

    for method in _META_METHODS:
        timers.wrap(MetaStore, method, "  sqlite (snapshots, leases)")
    timers.wrap(os, "fsync", "  fsync (any)")


def profile_build(base_tar: Path, work: Path) -> None:
    """Build the 30-step Dockerfile in this process with timers; print where time went."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    from builder.cli.main import main as kiln_main
    from builder.store import Store

    work.mkdir(parents=True, exist_ok=True)
    scenario = make_steps_context(work / "steps")
    root = work / "store"
    if kiln_main(["--root", str(root), "import", "--change", 'CMD ["sh"]', str(base_tar), BASE_IMAGE]):
        raise RuntimeError("kiln import failed")
    with Store.open(root) as store:
        store.snapshot_for(BASE_IMAGE)
    timers = StageTimers()
    _install_timers(timers)
    started = time.perf_counter()
    if kiln_main(["--root", str(root), "build", "-q", str(scenario.context)]):
        raise RuntimeError("kiln build failed")
    total = time.perf_counter() - started
    print(f"profile of the 30-step build in-process: {total:.3f} s, {total / STEP_COUNT * 1000:.1f} ms/step")
    for _module, _path, label in PROFILE_POINTS:
        _print_timer(timers, label)
    _print_timer(timers, "  sqlite (snapshots, leases)")
    _print_timer(timers, "  fsync (any)")


def _print_timer(timers: StageTimers, label: str) -> None:
    seconds = timers.seconds.get(label, 0.0)
    calls = timers.calls.get(label, 0)
    print(f"  {label:<46} {seconds * 1000 / STEP_COUNT:7.2f} ms/step  ({calls} calls)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3, help="builds per scenario (the median is shown)")
    parser.add_argument("--profile", action="store_true", help="also break the 30-step build down")
    parser.add_argument("--keep", type=Path, default=None, help="work in this directory and keep it")
    args = parser.parse_args(argv)
    work = args.keep or Path(tempfile.mkdtemp(prefix="kiln-bench-build-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        base_tar = make_base_tar(work)
        bench(args.runs, work, base_tar)
        if args.profile:
            profile_build(base_tar, work / "profile")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
