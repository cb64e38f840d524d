"""The OCI runtime spec is a pure function of its arguments."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from builder.exec.spec import DEFAULT_CAPABILITIES, SpecMount, runtime_spec
from builder.exec.users import ResolvedUser


def make_spec(**overrides: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "rootfs": Path("/store/containers/c1/rootfs"),
        "argv": ["/bin/sh", "-c", "echo hi"],
        "env": ["PATH=/bin", "HOME=/root"],
        "cwd": "/src",
        "user": ResolvedUser(uid=1000, gid=1000, additional_gids=(29, 44), home="/home/app"),
        "network": "host",
        "hosts_file": Path("/store/containers/c1/hosts"),
        "resolv_conf": Path("/store/containers/c1/resolv.conf"),
    }
    arguments.update(overrides)
    return runtime_spec(**arguments)


def test_process_section() -> None:
    process = make_spec()["process"]
    assert process["args"] == ["/bin/sh", "-c", "echo hi"]
    assert process["env"] == ["PATH=/bin", "HOME=/root"]
    assert process["cwd"] == "/src"
    assert process["terminal"] is False
    assert process["user"] == {"uid": 1000, "gid": 1000, "additionalGids": [29, 44]}
    assert process["rlimits"] == [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1024}]


def test_nofile_limit_given() -> None:
    process = make_spec(nofile_limit=(4096, 20000))["process"]
    assert process["rlimits"] == [{"type": "RLIMIT_NOFILE", "soft": 4096, "hard": 20000}]


def test_docker_default_capabilities_in_every_set() -> None:
    capabilities = make_spec()["process"]["capabilities"]
    assert set(capabilities) == {"bounding", "effective", "permitted"}
    for granted in capabilities.values():
        assert granted == list(DEFAULT_CAPABILITIES)
    assert len(DEFAULT_CAPABILITIES) == 14
    assert "CAP_SYS_ADMIN" not in DEFAULT_CAPABILITIES


def test_root_and_hostname() -> None:
    spec = make_spec(hostname="sandbox")
    assert spec["root"] == {"path": "/store/containers/c1/rootfs", "readonly": False}
    assert spec["hostname"] == "sandbox"
    assert spec["ociVersion"] == "1.0.2"


def test_host_network_has_no_network_namespace() -> None:
    namespaces = [ns["type"] for ns in make_spec(network="host")["linux"]["namespaces"]]
    assert namespaces == ["pid", "ipc", "uts", "mount"]


def test_no_network_gets_its_own_namespace() -> None:
    namespaces = [ns["type"] for ns in make_spec(network="none")["linux"]["namespaces"]]
    assert namespaces == ["pid", "ipc", "uts", "mount", "network"]


def test_mounts_in_order_with_generated_files_read_only() -> None:
    extra = SpecMount("/cache", "/store/cache/go", options=("rbind", "rw"))
    mounts = make_spec(extra_mounts=[extra])["mounts"]
    assert [(m["destination"], m["type"]) for m in mounts] == [
        ("/proc", "proc"),
        ("/dev", "tmpfs"),
        ("/dev/pts", "devpts"),
        ("/dev/shm", "tmpfs"),
        ("/dev/mqueue", "mqueue"),
        ("/sys", "sysfs"),
        ("/etc/hosts", "bind"),
        ("/etc/resolv.conf", "bind"),
        ("/cache", "bind"),
    ]
    assert mounts[5]["options"] == ["nosuid", "noexec", "nodev", "ro"]
    assert mounts[6] == {
        "destination": "/etc/hosts",
        "type": "bind",
        "source": "/store/containers/c1/hosts",
        "options": ["rbind", "ro"],
    }
    assert mounts[7]["source"] == "/store/containers/c1/resolv.conf"
    assert mounts[8]["options"] == ["rbind", "rw"]


def test_masked_and_readonly_paths() -> None:
    linux = make_spec()["linux"]
    assert "/proc/kcore" in linux["maskedPaths"]
    assert "/sys/firmware" in linux["maskedPaths"]
    assert linux["readonlyPaths"] == [
        "/proc/bus",
        "/proc/fs",
        "/proc/irq",
        "/proc/sys",
        "/proc/sysrq-trigger",
    ]


def test_empty_cwd_means_root_dir() -> None:
    assert make_spec(cwd="")["process"]["cwd"] == "/"


def test_same_arguments_same_spec() -> None:
    assert make_spec() == make_spec()
