"""The OCI runtime config (``config.json``) for one RUN step, as a pure function.

What goes in follows containerd's default Linux spec as BuildKit uses it (runtime-spec 1.0):
the kernel filesystems a program expects (proc, a tmpfs /dev with devpts, shm and mqueue, a
read-only sysfs), Docker's default capability set, the masked and read-only /proc and /sys
paths, and mount, pid, ipc and uts namespaces. BuildKit leaves out containerd's /run tmpfs
and the cgroup mount, and so does kiln. The network is the host's (no network namespace,
the default for builds here) or ``none``: a fresh network namespace holding only ``lo``.

/etc/hosts and /etc/resolv.conf are read-only bind mounts of files kept outside the rootfs,
so that what the step writes there never reaches the upper dir (and so the layer).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from builder.exec.users import ResolvedUser

OCI_VERSION = "1.0.2"

NetworkMode = Literal["host", "none"]

# Docker's (and containerd's, and BuildKit's) default capability set.
DEFAULT_CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
)

# Every capability the kernel knows (5.x/6.x): what ``RUN --security=insecure`` gets.
ALL_CAPABILITIES: tuple[str, ...] = (
    *DEFAULT_CAPABILITIES,
    "CAP_DAC_READ_SEARCH",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_LEASE",
    "CAP_AUDIT_CONTROL",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)

# Kernel interfaces a build has no business reading (containerd's defaults).
MASKED_PATHS: tuple[str, ...] = (
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
)

READONLY_PATHS: tuple[str, ...] = (
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
)

# containerd's default open-files limit (soft, hard). BuildKit drops rlimits from its spec,
# so a step inherits the builder's own limits; run_step passes kiln's to match. Raising a
# limit past the host's hard limit needs CAP_SYS_RESOURCE, and the runtime then refuses.
DEFAULT_NOFILE_LIMIT = (1024, 1024)


@dataclass(frozen=True)
class SpecMount:
    """One entry of the spec's ``mounts``: a bind mount given by the caller, a tmpfs, ..."""

    destination: str
    source: str
    type: str = "bind"
    options: tuple[str, ...] = ("rbind", "ro")

    def as_json(self) -> dict[str, object]:
        return {
            "destination": self.destination,
            "type": self.type,
            "source": self.source,
            "options": list(self.options),
        }


def kernel_mounts() -> list[SpecMount]:
    """The filesystems every container gets, in mount order (/dev before its children)."""
    return [
        SpecMount("/proc", "proc", "proc", ("nosuid", "noexec", "nodev")),
        SpecMount("/dev", "tmpfs", "tmpfs", ("nosuid", "strictatime", "mode=755", "size=65536k")),
        SpecMount(
            "/dev/pts",
            "devpts",
            "devpts",
            ("nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"),
        ),
        SpecMount("/dev/shm", "shm", "tmpfs", ("nosuid", "noexec", "nodev", "mode=1777", "size=65536k")),
        SpecMount("/dev/mqueue", "mqueue", "mqueue", ("nosuid", "noexec", "nodev")),
        SpecMount("/sys", "sysfs", "sysfs", ("nosuid", "noexec", "nodev", "ro")),
    ]


def runtime_spec(
    *,
    rootfs: Path,
    argv: Sequence[str],
    env: Sequence[str],
    cwd: str,
    user: ResolvedUser,
    network: NetworkMode,
    hosts_file: Path,
    resolv_conf: Path,
    hostname: str = "kiln",
    extra_mounts: Sequence[SpecMount] = (),
    readonly_rootfs: bool = False,
    nofile_limit: tuple[int, int] = DEFAULT_NOFILE_LIMIT,
    privileged: bool = False,
) -> dict[str, object]:
    """The config.json for running ``argv`` in ``rootfs``; depends on nothing but its arguments.

    ``extra_mounts`` (RUN --mount targets) come after the generated files, so a caller's
    mount over /etc is seen as the user asked. The step has its own UTS namespace, so its
    hostname is ``hostname`` whatever the network (BuildKit's is ``buildkitsandbox``).
    ``privileged`` (``RUN --security=insecure``) grants every capability and masks nothing.
    """
    capabilities = list(ALL_CAPABILITIES if privileged else DEFAULT_CAPABILITIES)
    namespaces: list[dict[str, str]] = [{"type": kind} for kind in ("pid", "ipc", "uts", "mount")]
    if network == "none":
        namespaces.append({"type": "network"})
    mounts = [
        *kernel_mounts(),
        SpecMount("/etc/hosts", str(hosts_file)),
        SpecMount("/etc/resolv.conf", str(resolv_conf)),
        *extra_mounts,
    ]
    process: dict[str, object] = {
        "terminal": False,
        "user": {
            "uid": user.uid,
            "gid": user.gid,
            "additionalGids": list(user.additional_gids),
        },
        "args": list(argv),
        "env": list(env),
        "cwd": cwd or "/",
        "capabilities": {
            "bounding": capabilities,
            "effective": capabilities,
            "permitted": capabilities,
        },
        "rlimits": [{"type": "RLIMIT_NOFILE", "soft": nofile_limit[0], "hard": nofile_limit[1]}],
        "noNewPrivileges": False,
    }
    spec: dict[str, object] = {
        "ociVersion": OCI_VERSION,
        "process": process,
        "root": {"path": str(rootfs), "readonly": readonly_rootfs},
        "hostname": hostname,
        "mounts": [mount.as_json() for mount in mounts],
        "linux": {
            "namespaces": namespaces,
            "maskedPaths": [] if privileged else list(MASKED_PATHS),
            "readonlyPaths": [] if privileged else list(READONLY_PATHS),
        },
    }
    return spec
