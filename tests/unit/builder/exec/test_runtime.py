"""Runtime choice and the flags each cgroup layout needs (no container is run here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.errors import RuntimeSetupError
from builder.exec import runtime
from builder.exec.runtime import CgroupLayout, OciRuntime, find_runtime, layout_from_mountinfo

V2 = "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw\n"
HYBRID = (
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
    "40 31 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
)
V1 = (
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
)


@pytest.mark.parametrize(("mountinfo", "expected"), [(V2, "v2"), (HYBRID, "hybrid"), (V1, "v1"), ("", "v1")])
def test_layout_from_mountinfo(mountinfo: str, expected: CgroupLayout) -> None:
    assert layout_from_mountinfo(mountinfo) == expected


def installed(*names: str) -> dict[str, str]:
    return {name: f"/usr/bin/{name}" for name in names}


@pytest.fixture
def host(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Choose what the fake host has: set ``which``, ``layout`` and ``controllers``."""
    monkeypatch.setattr("shutil.which", lambda name: installed("crun", "runc").get(name))
    monkeypatch.setattr(runtime, "cgroup_layout", lambda: "v2")
    monkeypatch.setattr(runtime, "_hybrid_has_v2_controllers", lambda: True)
    return monkeypatch


def test_crun_preferred_with_default_flags_on_v2(host: pytest.MonkeyPatch) -> None:
    assert find_runtime() == OciRuntime(name="crun", path="/usr/bin/crun")


def test_crun_on_hybrid_with_v2_controllers_disables_cgroups_and_hides_unified(
    host: pytest.MonkeyPatch,
) -> None:
    host.setattr(runtime, "cgroup_layout", lambda: "hybrid")
    chosen = find_runtime()
    assert chosen.global_flags == ("--cgroup-manager=disabled",)
    assert chosen.hide_unified_cgroup is True


def test_crun_on_hybrid_without_v2_controllers_needs_no_hiding(host: pytest.MonkeyPatch) -> None:
    host.setattr(runtime, "cgroup_layout", lambda: "hybrid")
    host.setattr(runtime, "_hybrid_has_v2_controllers", lambda: False)
    chosen = find_runtime()
    assert (chosen.global_flags, chosen.hide_unified_cgroup) == (("--cgroup-manager=disabled",), False)


def test_crun_on_v1_disables_cgroups(host: pytest.MonkeyPatch) -> None:
    host.setattr(runtime, "cgroup_layout", lambda: "v1")
    chosen = find_runtime()
    assert (chosen.global_flags, chosen.hide_unified_cgroup) == (("--cgroup-manager=disabled",), False)


def test_runc_gets_no_flags_on_any_layout(host: pytest.MonkeyPatch) -> None:
    host.setattr(runtime, "cgroup_layout", lambda: "hybrid")
    assert find_runtime("runc") == OciRuntime(name="runc", path="/usr/bin/runc")


def test_runc_when_crun_is_missing(host: pytest.MonkeyPatch) -> None:
    host.setattr("shutil.which", lambda name: installed("runc").get(name))
    assert find_runtime().name == "runc"


def test_no_runtime_is_a_setup_error(host: pytest.MonkeyPatch) -> None:
    host.setattr("shutil.which", lambda name: None)
    with pytest.raises(RuntimeSetupError, match="no OCI runtime found: install crun or runc"):
        find_runtime()
    with pytest.raises(RuntimeSetupError, match="install 'youki'"):
        find_runtime("youki")


def test_command_and_state_dir() -> None:
    chosen = OciRuntime(name="crun", path="/usr/bin/crun", global_flags=("--cgroup-manager=disabled",))
    assert chosen.command("delete", "--force", "c1") == [
        "/usr/bin/crun",
        "--cgroup-manager=disabled",
        "delete",
        "--force",
        "c1",
    ]
    assert chosen.state_dir("c1") == Path("/run/crun/c1")
    private = OciRuntime(name="runc", path="/sbin/runc", state_root=Path("/var/lib/kiln/runc"))
    assert private.command("list") == ["/sbin/runc", "--root", "/var/lib/kiln/runc", "list"]
    assert private.state_dir("c1") == Path("/var/lib/kiln/runc/c1")
