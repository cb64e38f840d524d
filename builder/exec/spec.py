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
from pathlib import Path
from typing import Literal

from builder.exec.users import ResolvedUser
from builder.lazyclasses import dataclass

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

# Every capability of a 6.x kernel, in bit order: what ``RUN --security=insecure`` asks for
# (as far as kiln's own bounding set allows, see :func:`bounded_capabilities`).
ALL_CAPABILITIES: tuple[str, ...] = tuple(
    f"CAP_{name}"
    for name in [
        "CHOWN",
        "DAC_OVERRIDE",
        "DAC_READ_SEARCH",
        "FOWNER",
        "FSETID",
        "KILL",
        "SETGID",
        "SETUID",
        "SETPCAP",
        "LINUX_IMMUTABLE",
        "NET_BIND_SERVICE",
        "NET_BROADCAST",
        "NET_ADMIN",
        "NET_RAW",
        "IPC_LOCK",
        "IPC_OWNER",
        "SYS_MODULE",
        "SYS_RAWIO",
        "SYS_CHROOT",
        "SYS_PTRACE",
        "SYS_PACCT",
        "SYS_ADMIN",
        "SYS_BOOT",
        "SYS_NICE",
        "SYS_RESOURCE",
        "SYS_TIME",
        "SYS_TTY_CONFIG",
        "MKNOD",
        "LEASE",
        "AUDIT_WRITE",
        "AUDIT_CONTROL",
        "SETFCAP",
        "MAC_OVERRIDE",
        "MAC_ADMIN",
        "SYSLOG",
        "WAKE_ALARM",
        "BLOCK_SUSPEND",
        "AUDIT_READ",
        "PERFMON",
        "BPF",
        "CHECKPOINT_RESTORE",
    ]
)


def bounded_capabilities(status_text: str) -> tuple[str, ...]:
    """The capabilities in a ``/proc/<pid>/status`` text's bounding set (``CapBnd``).

    A privileged step gets every capability kiln itself may hold: asking the runtime for
    one outside kiln's bounding set makes it fail (``capset: Operation not permitted``),
    as happens when kiln runs in a container without all capabilities.
    """
    for line in status_text.splitlines():
        if line.startswith("CapBnd:"):
            mask = int(line.split()[1], 16)
            return tuple(name for bit, name in enumerate(ALL_CAPABILITIES) if mask >> bit & 1)
    return ALL_CAPABILITIES


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
    privileged_capabilities: Sequence[str] = ALL_CAPABILITIES,
) -> dict[str, object]:
    """The config.json for running ``argv`` in ``rootfs``; depends on nothing but its arguments.

    ``extra_mounts`` (RUN --mount targets) come after the generated files, so a caller's
    mount over /etc is seen as the user asked. The step has its own UTS namespace, so its
    hostname is ``hostname`` whatever the network (BuildKit's is ``buildkitsandbox``).
    ``privileged`` (``RUN --security=insecure``) grants ``privileged_capabilities`` and
    masks nothing.
    """
    capabilities = list(privileged_capabilities if privileged else DEFAULT_CAPABILITIES)
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
