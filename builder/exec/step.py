"""One RUN step, start to end: mount, prepare, run in a container, clean up, unmount.

The caller gives the parent chain's snapshot dirs (bottom first) and an empty ``upper_dir``;
afterwards ``upper_dir`` holds exactly the step's changes in overlayfs form (whiteouts as
0/0 character devices, opaque dirs by xattr), ready for the layer writer. Nothing else is
left behind: the overlay is unmounted, the container deleted and the step's scratch dir
(overlay work dir, mount point, bundle, generated /etc files) removed, on success, on
failure, on Ctrl-C and on SIGTERM alike.

Before the run, as BuildKit's executor does:

* the user is resolved against the rootfs's /etc/passwd and /etc/group (see ``users``);
* ``HOME`` is added to the environment when absent: the user's home, or ``/``;
* a missing working directory is created, each missing component mode 0755 and owned by the
  step's uid:gid (BuildKit's ``MkdirAllAndChown`` with the step's identity); it is a real
  part of the step's layer;
* mount-point stubs are noted, and after the run removed (see ``stubs``). Making the
  /etc/hosts stub copies /etc up, so an image without /etc/hosts gets an ``etc/`` entry in
  every RUN's upper dir (times as before the stub), as BuildKit's layers have; an image
  that has both files gets no entry from kiln at all.

The scratch dir is made beside ``upper_dir`` (overlayfs wants upper and work dirs on one
filesystem) and named after the kiln pid, so ``stale`` can tell a dead run's leftovers.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import tempfile
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

from builder.errors import BuildError, RuntimeSetupError
from builder.exec.netfiles import hosts_content, read_host_resolv_conf, resolv_conf_content
from builder.exec.overlay import OverlayMount, is_mounted
from builder.exec.runtime import OciRuntime, find_runtime, interrupts_stop_containers, run_container
from builder.exec.spec import NetworkMode, SpecMount, bounded_capabilities, kernel_mounts, runtime_spec
from builder.exec.stubs import missing_mount_points, remove_mount_stubs
from builder.exec.users import ResolvedUser, resolve_user_in_root
from builder.lazyclasses import dataclass
from builder.leftovers import STEP_DIR_PREFIX
from builder.rootpath import resolve_in_root
from builder.source import SourceSpan

DEFAULT_HOSTNAME = "kiln"
# Both carry the pid of the kiln process that made them, so a later kiln can tell a crashed
# run's leftovers from a live one's (see ``stale``).
CONTAINER_ID_PREFIX = "kiln-"
TAIL_BYTES = 65536
TAIL_LINES = 10


@dataclass(frozen=True)
class StepResult:
    """How a step ended: its exit status, its output's last lines, and how long it took."""

    exit_code: int
    output_tail: str
    seconds: float
    removed_stubs: tuple[str, ...] = ()


class _OutputTail:
    """Forwards output chunks and keeps the last :data:`TAIL_BYTES` for an error message."""

    def __init__(self, forward: Callable[[bytes], None]) -> None:
        self.forward = forward
        self.chunks: deque[bytes] = deque()
        self.size = 0

    def __call__(self, chunk: bytes) -> None:
        self.chunks.append(chunk)
        self.size += len(chunk)
        while self.size - len(self.chunks[0]) >= TAIL_BYTES:
            self.size -= len(self.chunks.popleft())
        self.forward(chunk)

    def last_lines(self, count: int) -> str:
        text = b"".join(self.chunks).decode("utf-8", errors="replace")
        return "\n".join(text.splitlines()[-count:])


def _make_cwd(rootfs: Path, cwd: str, user: ResolvedUser) -> None:
    """Create the missing components of ``cwd`` inside ``rootfs``, owned by the step's user."""
    resolved = resolve_in_root(rootfs, cwd)
    current = rootfs
    for part in resolved.relative_to(rootfs).parts:
        current = current / part
        try:
            os.mkdir(current, 0o755)
        except FileExistsError:
            if not current.is_dir() or current.is_symlink():
                raise BuildError(f"cannot use {cwd!r} as working directory: not a directory") from None
            continue
        os.chmod(current, 0o755)
        os.chown(current, user.uid, user.gid)


def _with_home(env: Sequence[str], user: ResolvedUser) -> list[str]:
    if any(entry.startswith("HOME=") for entry in env):
        return list(env)
    return [*env, f"HOME={user.home}"]


def _write_net_files(step_dir: Path, hostname: str, network: NetworkMode) -> tuple[Path, Path]:
    hosts_file = step_dir / "hosts"
    resolv_conf = step_dir / "resolv.conf"
    hosts_file.write_text(hosts_content(hostname), encoding="utf-8")
    resolved_text = resolv_conf_content(read_host_resolv_conf(), host_network=network == "host")
    resolv_conf.write_text(resolved_text, encoding="utf-8")
    return hosts_file, resolv_conf


@interrupts_stop_containers()
def run_step(
    lower_dirs: Sequence[Path],
    upper_dir: Path,
    *,
    argv: Sequence[str],
    env: Sequence[str],
    cwd: str,
    user: str,
    network: Literal["default", "host", "none"],
    extra_mounts: Sequence[SpecMount] = (),
    on_output: Callable[[bytes], None],
    runtime: OciRuntime | None = None,
    hostname: str = DEFAULT_HOSTNAME,
    privileged: bool = False,
    on_started: Callable[[], None] | None = None,
) -> StepResult:
    """Run ``argv`` over ``lower_dirs`` with changes going to ``upper_dir``; see the module doc.

    ``on_started`` is called once the OCI runtime has been started (its container comes up
    from there without kiln).

    ``network="default"`` is the host's network (kiln's default, as BuildKit's with no CNI).
    ``user`` is the unresolved ``user[:group]`` (empty: root). Raises
    :class:`~builder.errors.RuntimeSetupError` when the machine cannot run the step and
    :class:`~builder.exec.users.UserLookupError` for an unknown user; a failing command is not
    an exception: see :attr:`StepResult.exit_code` and :func:`step_failure`. While it runs,
    SIGINT and SIGTERM stop the container (and every other) before unwinding.
    """
    if os.geteuid() != 0:
        raise RuntimeSetupError("running a RUN step needs root (overlay mounts and an OCI runtime)")
    started = time.monotonic()
    network_mode: NetworkMode = "none" if network == "none" else "host"
    chosen_runtime = runtime or find_runtime()
    upper_dir.mkdir(parents=True, exist_ok=True)
    step_dir = Path(tempfile.mkdtemp(prefix=f"{STEP_DIR_PREFIX}{os.getpid()}-", dir=upper_dir.parent))
    tail = _OutputTail(on_output)
    handed_off = False
    try:
        rootfs = step_dir / "rootfs"
        with OverlayMount(lower_dirs, upper_dir, step_dir / "work", rootfs) as mounted:
            resolved_user = resolve_user_in_root(user, rootfs)
            _make_cwd(rootfs, cwd or "/", resolved_user)
            hosts_file, resolv_conf = _write_net_files(step_dir, hostname, network_mode)
            destinations = [
                *(mount.destination for mount in kernel_mounts()),
                "/etc/hosts",
                "/etc/resolv.conf",
                *(mount.destination for mount in extra_mounts),
            ]
            stubs = missing_mount_points(rootfs, destinations)
            spec = runtime_spec(
                rootfs=rootfs,
                argv=argv,
                env=_with_home(env, resolved_user),
                cwd=cwd or "/",
                user=resolved_user,
                network=network_mode,
                hosts_file=hosts_file,
                resolv_conf=resolv_conf,
                hostname=hostname,
                extra_mounts=extra_mounts,
                nofile_limit=resource.getrlimit(resource.RLIMIT_NOFILE),
                privileged=privileged,
                privileged_capabilities=bounded_capabilities(
                    Path("/proc/self/status").read_text(encoding="utf-8")
                ),
            )
            (step_dir / "config.json").write_text(json.dumps(spec), encoding="utf-8")
            container_id = f"{CONTAINER_ID_PREFIX}{os.getpid()}-{os.urandom(6).hex()}"  # (no uuid import)
            try:
                exit_code = run_container(
                    step_dir, container_id, on_output=tail, runtime=chosen_runtime, on_started=on_started
                )
            finally:
                removed = remove_mount_stubs(stubs)
            # The container is gone: the layer can be made while the overlay is unmounted.
            handed_off = mounted.close_later(lambda: _remove_step_dir(step_dir))
    finally:
        if not handed_off:
            _remove_step_dir(step_dir)
    return StepResult(
        exit_code=exit_code,
        output_tail=tail.last_lines(TAIL_LINES),
        seconds=time.monotonic() - started,
        removed_stubs=tuple("/" + str(path.relative_to(rootfs)) for path in removed),
    )


def _remove_step_dir(step_dir: Path) -> None:
    # Never recurse into a rootfs still mounted (its unmount failed): that would delete
    # through the overlay. A stale mount is left for the store's cleanup.
    if not is_mounted(step_dir / "rootfs"):
        shutil.rmtree(step_dir, ignore_errors=True)


def step_failure(result: StepResult, location: SourceSpan, argv: Sequence[str]) -> BuildError:
    """The error for a step that exited non-zero, worded as BuildKit words it."""
    command = " ".join(argv)
    message = f'process "{command}" did not complete successfully: exit code: {result.exit_code}'
    return BuildError(message, span=location, log_tail=result.output_tail)
