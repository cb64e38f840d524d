"""RUN steps in real containers (crun and runc) over a busybox rootfs made from /bin/busybox.

What a step sees and what its upper dir holds; stopping and clean-up are in test_exec_cleanup.
"""

from __future__ import annotations

import os
import resource
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from builder.errors import RuntimeSetupError
from builder.exec import overlay
from builder.exec.overlay import OverlayMount, is_mounted
from builder.exec.runtime import OciRuntime
from builder.exec.step import StepResult, run_step, step_failure
from builder.exec.users import UserLookupError
from builder.source import SourceSpan
from tests.conftest import require_root
from tests.fixtures.busybox import BUSYBOX

pytestmark = pytest.mark.root
pytest_plugins = ["tests.fixtures.busybox_steps"]  # busybox_rootfs, oci_runtime


class Step:
    """Runs steps over the busybox rootfs with one runtime, each into a fresh upper dir."""

    def __init__(self, rootfs: Path, runtime: OciRuntime, work_dir: Path) -> None:
        self.rootfs = rootfs
        self.runtime = runtime
        self.work_dir = work_dir
        self.count = 0

    def __call__(
        self,
        script: str,
        *,
        user: str = "",
        cwd: str = "/",
        env: tuple[str, ...] = ("PATH=/usr/sbin:/usr/bin:/sbin:/bin",),
        network: str = "default",
        lowers: list[Path] | None = None,
    ) -> tuple[StepResult, str, Path]:
        self.count += 1
        upper = self.work_dir / f"upper{self.count}"
        output: list[bytes] = []
        result = run_step(
            lowers if lowers is not None else [self.rootfs],
            upper,
            argv=["/bin/sh", "-c", script],
            env=env,
            cwd=cwd,
            user=user,
            network=network,  # type: ignore[arg-type]
            on_output=output.append,
            runtime=self.runtime,
        )
        return result, b"".join(output).decode(), upper


@pytest.fixture
def step(busybox_rootfs: Path, oci_runtime: OciRuntime, tmp_path: Path) -> Iterator[Step]:
    yield Step(busybox_rootfs, oci_runtime, tmp_path)
    assert not [line for line in Path("/proc/mounts").read_text().splitlines() if str(tmp_path) in line]
    assert not list(tmp_path.glob(".kiln-step-*"))


def upper_entries(upper: Path) -> list[str]:
    return sorted(str(path.relative_to(upper)) for path in upper.rglob("*"))


def test_written_file_lands_in_upper_dir(step: Step) -> None:
    result, output, upper = step("echo hello > /tmp/greeting")
    assert (result.exit_code, output) == (0, "")
    assert (upper / "tmp" / "greeting").read_text() == "hello\n"
    assert upper_entries(upper) == ["etc", "tmp", "tmp/greeting"]


def test_deletion_gives_overlay_whiteout(step: Step) -> None:
    result, _, upper = step("rm /etc/motd")
    assert result.exit_code == 0
    whiteout = os.lstat(upper / "etc" / "motd")
    assert stat.S_ISCHR(whiteout.st_mode)
    assert whiteout.st_rdev == 0


def test_exit_status_and_output_captured(step: Step) -> None:
    result, output, _ = step("echo to-stdout; sleep 0.1; echo to-stderr >&2; exit 3")
    assert result.exit_code == 3
    # crun hands the container kiln's pipe itself; runc copies stdout and stderr through
    # pipes of its own, one goroutine each, so only a pause keeps their order there.
    assert output == "to-stdout\nto-stderr\n"
    assert result.output_tail == "to-stdout\nto-stderr"
    span = SourceSpan("Dockerfile", 4, 4, text="RUN exit 3")
    error = step_failure(result, span, ["/bin/sh", "-c", "exit 3"])
    assert str(error) == (
        'Dockerfile:4: process "/bin/sh -c exit 3" did not complete successfully: exit code: 3\n'
        "  > RUN exit 3\n"
        "to-stdout\nto-stderr"
    )


@pytest.mark.parametrize(
    ("user", "expected_id", "expected_home"),
    [
        ("", "uid=0(root) gid=0(root)", "/root"),
        ("app", "uid=1000(app) gid=1000(app) groups=29(audio),44(video)", "/home/app"),
        ("1000:1000", "uid=1000(app) gid=1000(app)", "/home/app"),
        ("nobody", "uid=65534(nobody) gid=65534(nogroup) groups=44(video)", "/nonexistent"),
        ("4242:4242", "uid=4242 gid=4242", "/"),
    ],
)
def test_user_ids_groups_and_home(step: Step, user: str, expected_id: str, expected_home: str) -> None:
    # busybox's id prints "groups=" only when the process has supplementary groups.
    result, output, _ = step('id; echo "HOME=$HOME"', user=user)
    assert result.exit_code == 0
    assert output == f"{expected_id}\nHOME={expected_home}\n"


def test_unknown_user_name_fails_before_running(step: Step) -> None:
    with pytest.raises(UserLookupError, match="unable to find user ghost"):
        step("true", user="ghost")


def test_environment_is_exactly_the_given_env_plus_home(step: Step) -> None:
    result, output, _ = step("env | sort", env=("PATH=/bin:/usr/bin", "GOPATH=/go", "EMPTY="))
    assert result.exit_code == 0
    # PWD and SHLVL come from the shell, as under BuildKit; no HOSTNAME.
    assert output.splitlines() == [
        "EMPTY=",
        "GOPATH=/go",
        "HOME=/root",
        "PATH=/bin:/usr/bin",
        "PWD=/",
        "SHLVL=1",
    ]


def test_open_files_limit_is_the_builders_own(step: Step) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    _, output, _ = step("ulimit -n; ulimit -Hn")
    assert output.split() == [str(soft), str(hard)]


def test_given_home_is_kept(step: Step) -> None:
    _, output, _ = step('echo "$HOME"', env=("PATH=/bin", "HOME=/custom"))
    assert output == "/custom\n"


def test_missing_cwd_is_created_owned_by_the_user(step: Step) -> None:
    result, output, upper = step("pwd; touch mine", user="app", cwd="/srv/app")
    assert (result.exit_code, output) == (0, "/srv/app\n")
    for created in (upper / "srv", upper / "srv" / "app"):
        status = os.lstat(created)
        assert (status.st_uid, status.st_gid, stat.S_IMODE(status.st_mode)) == (1000, 1000, 0o755)
    assert (upper / "srv" / "app" / "mine").exists()


def test_network_none_sees_only_loopback(step: Step) -> None:
    result, output, _ = step("ls /sys/class/net; cat /sys/class/net/lo/flags; hostname", network="none")
    assert result.exit_code == 0
    # 0x9: IFF_UP | IFF_LOOPBACK, the runtime brings lo up.
    assert output == "lo\n0x9\nkiln\n"


def test_generated_hosts_and_resolv_conf_stay_out_of_the_layer(
    step: Step, busybox_rootfs: Path, tmp_path: Path
) -> None:
    assert not (busybox_rootfs / "etc" / "hosts").exists()
    result, output, upper = step("cat /etc/hosts | head -1; test -s /etc/resolv.conf && echo resolv")
    assert result.exit_code == 0
    assert output == "127.0.0.1\tlocalhost kiln\nresolv\n"
    assert upper_entries(upper) == ["etc"]
    assert sorted(result.removed_stubs) == ["/dev", "/etc/hosts", "/etc/resolv.conf", "/proc", "/sys"]


def test_bare_image_gets_no_mount_point_dirs(step: Step, tmp_path: Path) -> None:
    # FROM scratch + COPY of a static binary: /dev /etc /proc /sys exist only as mount
    # points during the run, and current BuildKit leaves them out of the layer.
    bare = tmp_path / "bare"
    (bare / "bin").mkdir(parents=True)
    shutil.copy2(BUSYBOX, bare / "bin" / "busybox")
    upper = tmp_path / "bare-upper"
    output: list[bytes] = []
    result = run_step(
        [bare],
        upper,
        argv=["/bin/busybox", "ls", "/"],
        env=("PATH=/bin",),
        cwd="/",
        user="",
        network="default",
        on_output=output.append,
        runtime=step.runtime,
    )
    assert result.exit_code == 0
    assert b"".join(output).split() == [b"bin", b"dev", b"etc", b"proc", b"sys"]
    assert upper_entries(upper) == []
    assert sorted(result.removed_stubs) == ["/dev", "/etc", "/etc/hosts", "/etc/resolv.conf", "/proc", "/sys"]


def test_hosts_written_by_the_step_is_not_seen_in_the_layer(step: Step) -> None:
    result, output, upper = step("echo extra >> /etc/hosts 2>&1 || echo refused")
    assert result.exit_code == 0
    assert "refused" in output or "Read-only" in output
    assert upper_entries(upper) == ["etc"]


def test_deep_image_of_120_lower_dirs(step: Step, busybox_rootfs: Path, tmp_path: Path) -> None:
    snapshots = tmp_path / "snapshots"
    lowers = [busybox_rootfs]
    for index in range(119):
        layer = snapshots / f"sha256-{index:064d}"
        (layer / "layers").mkdir(parents=True)
        (layer / "layers" / f"{index:03d}").write_text(f"{index}\n")
        lowers.append(layer)
    # Too long as absolute paths: mounted by descriptor names.
    result, output, upper = step("ls /layers | wc -l; cat /layers/118", lowers=lowers)
    assert result.exit_code == 0
    assert output.split() == ["119", "118"]
    assert upper_entries(upper) == ["etc"]


def test_300_lower_dirs_mount_beyond_descriptor_names(tmp_path: Path) -> None:
    require_root("mounts overlayfs")
    lowers = []
    for index in range(300):
        layer = tmp_path / "snapshots" / f"sha256-{index:064d}"
        layer.mkdir(parents=True)
        (layer / f"{index:03d}").write_text(f"{index}\n")
        (layer / "top").write_text(f"{index}\n")
        lowers.append(layer)
    target = tmp_path / "merged"
    with OverlayMount(lowers, tmp_path / "upper", tmp_path / "work", target):
        assert len(os.listdir(target)) == 301
        assert (target / "top").read_text() == "299\n"
    assert not is_mounted(target)
    assert sorted(os.listdir(tmp_path)) == ["merged", "snapshots", "upper"]


def test_scratch_overlay_needs_no_lower(tmp_path: Path) -> None:
    require_root("mounts overlayfs")
    target = tmp_path / "merged"
    with OverlayMount([], tmp_path / "upper", tmp_path / "work", target):
        assert is_mounted(target)
        (target / "new").write_text("x")
    assert not is_mounted(target)
    assert not (tmp_path / "work").exists()
    assert (tmp_path / "upper" / "new").read_text() == "x"


def test_overlay_failure_explains_missing_overlayfs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require_root("mounts overlayfs")
    monkeypatch.setattr(overlay, "overlay_supported", lambda: False)
    with pytest.raises(RuntimeSetupError, match=r"this kernel has no overlayfs .*modprobe overlay"):
        overlay.mount_overlay([tmp_path / "absent"], tmp_path / "upper", tmp_path / "work", tmp_path)
