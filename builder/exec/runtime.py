"""Running a bundle with an OCI runtime (crun, or runc), output streamed as it comes.

Which runtime: the one asked for (``--runtime`` gives a name or a path), else crun when
installed, else runc. crun is the faster: measured with ``bench/exec.py`` on a 2-core VM,
a whole ``run_step`` of ``/bin/true`` takes 18 ms (median) with crun, of which the bare
``crun run`` is 11 ms, and 36 ms with runc (bare ``runc run``: 26 ms).

Which flags depend on the host's cgroup layout, detected once:

* cgroup v2 (``/sys/fs/cgroup`` is ``cgroup2``): the runtimes' defaults work.
* v1 or hybrid (v1 controllers, plus in hybrid a v2 hierarchy at ``/sys/fs/cgroup/unified``):
  crun gets ``--cgroup-manager=disabled``: build steps need no cgroup of their own. crun
  (1.8) also refuses a hybrid layout whose v2 hierarchy has controllers ("cgroups in hybrid
  mode not supported"), whatever the manager: it checks before looking at the manager. So
  there kiln starts crun in a private mount namespace (a slave of the host's) with
  ``/sys/fs/cgroup/unified`` unmounted: crun then sees plain v1. The namespace is made by
  a launcher, ``unshare`` then a shell that unmounts and execs crun (busybox's when
  installed: its ``umount`` is a built-in applet, so no binary is loaded for it). Doing the
  ``unshare(2)`` in a ``preexec_fn`` instead would force Python to fork its whole address
  space rather than vfork: measured in a process holding the build engine, a step's
  runtime start took 11 ms median with ``preexec_fn`` and 6 ms with the busybox launcher.
  The namespace is made per run, not once: ``/`` is usually a private mount, so a long-lived
  namespace would not see the overlay rootfs that each step mounts later.
  runc handles v1 and hybrid with its default cgroupfs driver; ``--systemd-cgroup`` is
  never passed (kiln's steps are not systemd units).

The runtime is started in a session of its own, so a Ctrl-C at the terminal reaches kiln
alone, and kiln kills and deletes the container itself, on any exception or interrupt.
Containers usually run in the solver's worker threads, where no signal arrives: so every
running container is registered, and :func:`interrupts_stop_containers` (entered by the
CLI's main thread, and by :func:`~builder.exec.step.run_step`) makes SIGINT and SIGTERM kill
them all before raising KeyboardInterrupt. Each worker's :func:`run_container` then raises
KeyboardInterrupt too, rather than report the kill as a failed step, and unwinds: unmount,
scratch dirs removed. A container left in the runtime's state dir is always force-deleted.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from functools import cache
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, ClassVar, Literal

from builder.errors import RuntimeSetupError
from builder.lazyclasses import dataclass

if TYPE_CHECKING:
    import ctypes
    import subprocess

KNOWN_RUNTIMES = ("crun", "runc")
DEFAULT_STATE_ROOTS = {"crun": Path("/run/crun"), "runc": Path("/run/runc")}
READ_CHUNK = 65536
KILL_WAIT_SECONDS = 10
KILL_RETRY_SECONDS = 0.2


CgroupLayout = Literal["v2", "hybrid", "v1"]
UNIFIED_IN_HYBRID = "/sys/fs/cgroup/unified"
CLONE_NEWNS = 0x00020000
MS_REC = 0x4000
MS_SLAVE = 0x80000
MNT_DETACH = 2


@cache
def _libc() -> tuple[ctypes.CDLL, Callable[[], int]]:
    """libc with the three calls :func:`_hide_unified_cgroup` makes, and ctypes' errno.

    Loaded on first use, not at import: every kiln command imports this module (for
    :func:`interrupts_stop_containers`) and ctypes costs ~5 ms of start-up, while only a
    runtime start without a launcher on a hybrid cgroup host needs it. ``popen`` loads it
    before forking, so the child only reads the cache and imports nothing.
    """
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.unshare.argtypes = (ctypes.c_int,)
    libc.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p)
    libc.umount2.argtypes = (ctypes.c_char_p, ctypes.c_int)
    return libc, ctypes.get_errno


def layout_from_mountinfo(mountinfo_text: str) -> CgroupLayout:
    """The cgroup layout that a ``/proc/self/mountinfo`` text shows."""
    fs_types: dict[str, str] = {}
    for line in mountinfo_text.splitlines():
        before, _, after = line.partition(" - ")
        fields = before.split()
        if len(fields) > 4 and after:
            fs_types[fields[4]] = after.split()[0]
    if fs_types.get("/sys/fs/cgroup") == "cgroup2":
        return "v2"
    return "hybrid" if fs_types.get(UNIFIED_IN_HYBRID) == "cgroup2" else "v1"


@cache
def cgroup_layout() -> CgroupLayout:
    """``v2`` (unified), ``hybrid`` (v1 plus a v2 mount at .../unified) or ``v1``: read once
    per process (the mount table of a busy machine takes milliseconds to read, each RUN)."""
    try:
        mountinfo_text = Path("/proc/self/mountinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "v1"
    return layout_from_mountinfo(mountinfo_text)


def _hybrid_has_v2_controllers() -> bool:
    try:
        return bool(Path(UNIFIED_IN_HYBRID, "cgroup.controllers").read_text(encoding="ascii").strip())
    except OSError:
        return False


@cache
def unified_hiding_launcher() -> tuple[str, ...]:
    """The argv prefix that runs a program in a new mount namespace without the v2 mount.

    The program's argv follows the prefix; ``exec`` keeps one process (the pid that kiln
    waits for and kills) from ``unshare`` to the runtime. Empty when neither busybox nor
    ``unshare``, ``sh`` and ``umount`` are installed: :meth:`OciRuntime.popen` then falls
    back to :func:`_hide_unified_cgroup` in the child.
    """
    import shutil

    script = f'umount -l {UNIFIED_IN_HYBRID} && exec "$0" "$@"'
    busybox = shutil.which("busybox")
    if busybox is not None:
        return (busybox, "unshare", "--mount", "--propagation", "slave", busybox, "sh", "-c", script)
    unshare, shell = shutil.which("unshare"), shutil.which("sh")
    if unshare is not None and shell is not None and shutil.which("umount") is not None:
        return (unshare, "--mount", "--propagation", "slave", shell, "-c", script)
    return ()


def _hide_unified_cgroup() -> None:
    """In the runtime's child before exec: a private mount namespace without the v2 mount
    (the fallback when no launcher is installed; it costs a full fork of kiln)."""
    libc, get_errno = _libc()
    if libc.unshare(CLONE_NEWNS) != 0:
        raise OSError(get_errno(), "unshare(CLONE_NEWNS) for the OCI runtime")
    if libc.mount(None, b"/", None, MS_REC | MS_SLAVE, None) != 0:
        raise OSError(get_errno(), "making the runtime's mount namespace a slave")
    if libc.umount2(UNIFIED_IN_HYBRID.encode(), MNT_DETACH) != 0:
        raise OSError(get_errno(), f"hiding {UNIFIED_IN_HYBRID} from the runtime")


@dataclass(frozen=True)
class OciRuntime:
    """An OCI runtime binary and the global flags this host needs for it.

    ``state_root`` is the runtime's ``--root`` (where it keeps container state); None uses
    the runtime's own default, so ``crun list`` / ``runc list`` show kiln's containers.
    """

    name: str
    path: str
    global_flags: tuple[str, ...] = ()
    state_root: Path | None = None
    hide_unified_cgroup: bool = False

    def command(self, *args: str) -> list[str]:
        root_flags = ("--root", str(self.state_root)) if self.state_root is not None else ()
        return [self.path, *self.global_flags, *root_flags, *args]

    def popen(self, *args: str, stdout: int, stderr: int) -> subprocess.Popen[bytes]:
        """Start the runtime with ``args`` in a session of its own, stdin closed.

        No ``preexec_fn`` when avoidable, so Python can vfork (see the module docstring).
        """
        import subprocess

        launcher = unified_hiding_launcher() if self.hide_unified_cgroup else ()
        in_child = _hide_unified_cgroup if self.hide_unified_cgroup and not launcher else None
        if in_child is not None:
            _libc()  # load ctypes here: the child must not import after fork
        return subprocess.Popen(
            [*launcher, *self.command(*args)],
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
            # preexec_fn is unsafe in threaded programs when it takes locks another thread may
            # hold at fork; this one only makes three system calls through ctypes.
            preexec_fn=in_child,  # noqa: PLW1509
        )

    def state_dir(self, container_id: str) -> Path:
        """Where the runtime keeps a container's state while it exists."""
        root = self.state_root or DEFAULT_STATE_ROOTS.get(self.name, Path("/run") / self.name)
        return root / container_id


def find_runtime(choice: str = "", *, state_root: Path | None = None) -> OciRuntime:
    """The runtime to use: ``choice`` (name or path), else crun, else runc.

    Raises :class:`RuntimeSetupError` when none is installed.
    """
    import shutil  # here, not at import: every kiln command imports this module

    candidates = [choice] if choice else list(KNOWN_RUNTIMES)
    for candidate in candidates:
        path = shutil.which(candidate)
        if path is None:
            continue
        name = Path(path).name
        flags: tuple[str, ...] = ()
        hide_unified = False
        layout = cgroup_layout()
        if "crun" in name and layout != "v2":
            flags = ("--cgroup-manager=disabled",)
            hide_unified = layout == "hybrid" and _hybrid_has_v2_controllers()
        return OciRuntime(
            name=name,
            path=path,
            global_flags=flags,
            state_root=state_root,
            hide_unified_cgroup=hide_unified,
        )
    wanted = repr(choice) if choice else "crun or runc"
    raise RuntimeSetupError(f"no OCI runtime found: install {wanted} (looked in PATH)")


def _quiet(runtime: OciRuntime, *args: str) -> None:
    """Run a runtime housekeeping command, ignoring its failure (the container may be gone)."""
    import subprocess

    with suppress(OSError, subprocess.SubprocessError):
        process = runtime.popen(*args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            process.wait(timeout=KILL_WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _stop(runtime: OciRuntime, container_id: str, process: subprocess.Popen[bytes]) -> None:
    """Kill the container (all its processes) and reap the runtime process.

    The kill is repeated until the runtime exits: an interrupt can come before the runtime
    has created the container, when there is nothing to kill yet.
    """
    import subprocess

    deadline = time.monotonic() + KILL_WAIT_SECONDS
    while process.poll() is None and time.monotonic() < deadline:
        # The container's pid 1 is its pid namespace's init: killing it kills the rest.
        _quiet(runtime, "kill", container_id, "KILL")
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=KILL_RETRY_SECONDS)
    if process.poll() is None:
        process.kill()
        process.wait()


class _RunningContainers:
    """The containers this process runs now, in any thread, for an interrupt to stop.

    The lock is re-entrant: the signal handler runs in the main thread, possibly while the
    main thread itself holds the lock.
    """

    lock = threading.RLock()
    running: ClassVar[dict[str, tuple[OciRuntime, subprocess.Popen[bytes]]]] = {}
    stopped: ClassVar[set[str]] = set()


def stop_running_containers() -> list[str]:
    """Kill every container this process is running; the ids, each marked as interrupted."""
    with _RunningContainers.lock:
        running = list(_RunningContainers.running.items())
        _RunningContainers.stopped.update(container_id for container_id, _ in running)
    for container_id, (runtime, process) in running:
        _stop(runtime, container_id, process)
    return [container_id for container_id, _ in running]


@contextmanager
def interrupts_stop_containers() -> Iterator[None]:
    """While inside, SIGINT and SIGTERM stop all running containers, then raise KeyboardInterrupt.

    Python lets only the main thread set signal handlers; elsewhere this does nothing. So a
    ``kill`` of kiln unwinds like a Ctrl-C: every ``finally`` runs.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        stop_running_containers()
        raise KeyboardInterrupt(f"signal {signum}")

    previous = {number: signal.signal(number, interrupt) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def run_container(
    bundle_dir: Path,
    container_id: str,
    *,
    on_output: Callable[[bytes], None],
    runtime: OciRuntime | None = None,
    on_started: Callable[[], None] | None = None,
) -> int:
    """Run the bundle's config.json to completion; its exit status (128+n for signal n).
    ``on_started`` is called once the runtime's process is started.

    stdout and stderr arrive together through ``on_output`` as raw chunks. With crun they
    share kiln's pipe, so their order is kept; runc copies each through a pipe of its own,
    so lines written to both close together may arrive swapped (as under BuildKit with runc).
    """
    import subprocess

    chosen = runtime or find_runtime()
    try:
        process = chosen.popen(
            "run", "--bundle", str(bundle_dir), container_id, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
    except (OSError, subprocess.SubprocessError) as err:
        raise RuntimeSetupError(f"cannot start {chosen.path}: {err}") from err
    assert process.stdout is not None  # stdout=PIPE
    with _RunningContainers.lock:
        _RunningContainers.running[container_id] = (chosen, process)
    completed = False
    try:
        if on_started is not None:
            on_started()
        with interrupts_stop_containers():
            output_fd = process.stdout.fileno()
            while chunk := os.read(output_fd, READ_CHUNK):
                on_output(chunk)
            status = process.wait()
            completed = True
    finally:
        with _RunningContainers.lock:
            del _RunningContainers.running[container_id]
            interrupted = container_id in _RunningContainers.stopped
            _RunningContainers.stopped.discard(container_id)
        if not completed:
            _stop(chosen, container_id, process)
        process.stdout.close()
        if chosen.state_dir(container_id).exists():
            _quiet(chosen, "delete", "--force", container_id)
    if interrupted:
        raise KeyboardInterrupt(f"container {container_id} stopped by an interrupt")
    return status if status >= 0 else 128 - status
