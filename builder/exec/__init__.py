"""Running a build step in a real container: overlay rootfs, OCI runtime spec, runtime, users.

The public surface: :func:`run_step` (everything a RUN needs, start to end) and the parts it
is made of, for callers that need one alone (``kiln run``, file ops that mount a rootfs).
"""

from builder.exec.overlay import OverlayMount, mount_overlay, overlay_supported, unmount
from builder.exec.runtime import (
    OciRuntime,
    cgroup_layout,
    find_runtime,
    interrupts_stop_containers,
    run_container,
    stop_running_containers,
)
from builder.exec.spec import SpecMount, runtime_spec
from builder.exec.stale import remove_stale_containers, remove_stale_step_dirs
from builder.exec.step import StepResult, run_step, step_failure
from builder.exec.users import ResolvedUser, UserLookupError, resolve_user, resolve_user_in_root

__all__ = [
    "OciRuntime",
    "OverlayMount",
    "ResolvedUser",
    "SpecMount",
    "StepResult",
    "UserLookupError",
    "cgroup_layout",
    "find_runtime",
    "interrupts_stop_containers",
    "mount_overlay",
    "overlay_supported",
    "remove_stale_containers",
    "remove_stale_step_dirs",
    "resolve_user",
    "resolve_user_in_root",
    "run_container",
    "run_step",
    "runtime_spec",
    "step_failure",
    "stop_running_containers",
    "unmount",
]
