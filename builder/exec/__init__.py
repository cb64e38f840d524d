"""Running a build step in a real container: overlay rootfs, OCI runtime spec, runtime, users.

The public surface: :func:`run_step` (everything a RUN needs, start to end) and the parts it
is made of, for callers that need one alone (``kiln run``, file ops that mount a rootfs).
Each name is imported from its submodule on first use (:mod:`builder.lazy_exports`), so
``import builder.exec.runtime`` does not load the rest.
"""

from typing import TYPE_CHECKING

from builder.lazy_exports import lazy_exports

if TYPE_CHECKING:
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

__getattr__ = lazy_exports(
    __name__,
    {
        "OverlayMount": "overlay",
        "mount_overlay": "overlay",
        "overlay_supported": "overlay",
        "unmount": "overlay",
        "OciRuntime": "runtime",
        "cgroup_layout": "runtime",
        "find_runtime": "runtime",
        "interrupts_stop_containers": "runtime",
        "run_container": "runtime",
        "stop_running_containers": "runtime",
        "SpecMount": "spec",
        "runtime_spec": "spec",
        "remove_stale_containers": "stale",
        "remove_stale_step_dirs": "stale",
        "StepResult": "step",
        "run_step": "step",
        "step_failure": "step",
        "ResolvedUser": "users",
        "UserLookupError": "users",
        "resolve_user": "users",
        "resolve_user_in_root": "users",
    },
)
