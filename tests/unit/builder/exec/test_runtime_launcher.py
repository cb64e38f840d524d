"""How crun is started on a hybrid cgroup host: through a launcher, so kiln can vfork.

The launcher makes the private mount namespace that hides ``/sys/fs/cgroup/unified``; only
when none is installed does kiln fall back to doing it in a ``preexec_fn``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from builder.exec import runtime
from builder.exec.runtime import OciRuntime, unified_hiding_launcher

SCRIPT = 'umount -l /sys/fs/cgroup/unified && exec "$0" "$@"'
UTIL_LINUX_LAUNCHER = ("/usr/bin/unshare", "--mount", "--propagation", "slave", "/usr/bin/sh", "-c", SCRIPT)
"""The launcher made of util-linux's unshare and a plain sh, where busybox is not installed."""
HIDING_CRUN = OciRuntime(
    name="crun", path="/usr/bin/crun", global_flags=("--cgroup-manager=disabled",), hide_unified_cgroup=True
)


@pytest.fixture(autouse=True)
def fresh_launcher() -> Iterator[None]:
    unified_hiding_launcher.cache_clear()
    yield
    unified_hiding_launcher.cache_clear()


def host_with(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    paths = {name: f"/usr/bin/{name}" for name in names}
    monkeypatch.setattr("shutil.which", paths.get)


def test_busybox_is_the_launcher_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    host_with(monkeypatch, "busybox", "unshare", "sh", "umount")
    assert unified_hiding_launcher() == (
        "/usr/bin/busybox",
        "unshare",
        "--mount",
        "--propagation",
        "slave",
        "/usr/bin/busybox",
        "sh",
        "-c",
        SCRIPT,
    )


def test_util_linux_and_sh_without_busybox(monkeypatch: pytest.MonkeyPatch) -> None:
    host_with(monkeypatch, "unshare", "sh", "umount")
    assert unified_hiding_launcher() == UTIL_LINUX_LAUNCHER


def test_no_launcher_without_umount(monkeypatch: pytest.MonkeyPatch) -> None:
    host_with(monkeypatch, "unshare", "sh")
    assert unified_hiding_launcher() == ()


class RecordedPopen:
    """Stands in for subprocess.Popen: keeps the argv and the preexec_fn it was given."""

    calls: ClassVar[list[tuple[list[str], Any]]] = []

    def __init__(self, argv: list[str], **options: Any) -> None:
        RecordedPopen.calls.append((argv, options["preexec_fn"]))


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[str], Any]]:
    RecordedPopen.calls = []
    monkeypatch.setattr("subprocess.Popen", RecordedPopen)
    return RecordedPopen.calls


def test_hiding_runtime_starts_through_the_launcher_without_preexec_fn(
    monkeypatch: pytest.MonkeyPatch, recorded: list[tuple[list[str], Any]]
) -> None:
    host_with(monkeypatch, "unshare", "sh", "umount")
    HIDING_CRUN.popen("run", "c1", stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert recorded == [
        (
            [*UTIL_LINUX_LAUNCHER, "/usr/bin/crun", "--cgroup-manager=disabled", "run", "c1"],
            None,
        )
    ]


def test_without_a_launcher_the_child_hides_the_mount_itself(
    monkeypatch: pytest.MonkeyPatch, recorded: list[tuple[list[str], Any]]
) -> None:
    host_with(monkeypatch)
    HIDING_CRUN.popen("delete", "c1", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert recorded == [
        (["/usr/bin/crun", "--cgroup-manager=disabled", "delete", "c1"], runtime._hide_unified_cgroup)
    ]


def test_a_runtime_that_needs_no_hiding_is_started_directly(
    monkeypatch: pytest.MonkeyPatch, recorded: list[tuple[list[str], Any]]
) -> None:
    host_with(monkeypatch, "busybox")
    OciRuntime(name="runc", path="/usr/bin/runc").popen(
        "list", stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert recorded == [(["/usr/bin/runc", "list"], None)]
