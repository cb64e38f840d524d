"""``RUN --mount`` (cache, bind, tmpfs, ssh), ``--network`` and ``--security``: what the step
saw and what the image keeps (the mounts never reach a layer)."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest

from tests.fixtures.kiln_cli import kiln

pytestmark = [pytest.mark.root, pytest.mark.slow]

# Docker's default capability set, as /proc/self/status shows it.
DEFAULT_CAPS = "00000000a80425fb"


def _own_bounding_set() -> str:
    """kiln's own bounding set: everything an insecure step can be given."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapBnd:"):
            return line.split()[1]
    raise AssertionError("no CapBnd in /proc/self/status")


def _build(store: Path, tmp_path: Path, dockerfile: str, *flags: str, name: str = "out") -> tuple[int, Path]:
    context = tmp_path / f"ctx-{name}"
    context.mkdir(exist_ok=True)
    (context / "Dockerfile").write_text(dockerfile)
    (context / "data.txt").write_text("context data\n")
    out = tmp_path / name
    status = kiln(store, "build", *flags, "-o", f"type=local,dest={out}", str(context))
    return status, out


def test_network_modes(busybox_store: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    dockerfile = (
        "FROM busybox\n"
        "RUN --network=none ls /sys/class/net > /net-none\n"
        "RUN --network=host ls /sys/class/net > /net-host\n"
        "RUN --network=default ls /sys/class/net > /net-default\n"
    )
    status, out = _build(busybox_store, tmp_path, dockerfile)
    assert status == 0, capfd.readouterr().err
    host_links = sorted(path.name for path in Path("/sys/class/net").iterdir())
    assert (out / "net-none").read_text() == "lo\n"
    assert (out / "net-host").read_text().split() == host_links
    assert (out / "net-default").read_text().split() == host_links


def test_security_insecure_needs_the_entitlement(
    busybox_store: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    dockerfile = (
        "FROM busybox\n"
        "RUN grep CapEff /proc/self/status | cut -f2 > /caps-sandbox\n"
        "RUN --security=insecure grep CapEff /proc/self/status | cut -f2 > /caps-insecure\n"
    )
    status, _out = _build(busybox_store, tmp_path, dockerfile, name="denied")
    assert status != 0
    assert "pass --allow security.insecure" in capfd.readouterr().err
    status, out = _build(busybox_store, tmp_path, dockerfile, "--allow", "security.insecure", name="allowed")
    assert status == 0, capfd.readouterr().err
    assert (out / "caps-sandbox").read_text() == f"{DEFAULT_CAPS}\n"
    assert (out / "caps-insecure").read_text() == f"{_own_bounding_set()}\n"


def test_cache_mount_survives_between_builds_and_prunes(
    busybox_store: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    first = (
        "FROM busybox\n"
        "RUN --mount=type=cache,target=/root/.cache/pip \\\n"
        "    echo wheel > /root/.cache/pip/pkg-1.0-py3-none-any.whl\n"
    )
    status, out = _build(busybox_store, tmp_path, first, name="first")
    assert status == 0, capfd.readouterr().err
    assert not (out / "root" / ".cache").exists()
    second = (
        "FROM busybox\n"
        "RUN echo a different step > /step\n"
        "RUN --mount=type=cache,target=/root/.cache/pip ls /root/.cache/pip > /seen\n"
    )
    status, out = _build(busybox_store, tmp_path, second, name="second")
    assert status == 0, capfd.readouterr().err
    assert (out / "seen").read_text() == "pkg-1.0-py3-none-any.whl\n"
    assert not (out / "root" / ".cache").exists()

    assert kiln(busybox_store, "prune", "--filter", "type=cache-mount") == 0
    assert "deleted cache mount: " in capfd.readouterr().out
    third = second.replace("ls /root", "ls -A /root").replace("> /seen", "> /seen-after-prune")
    status, out = _build(busybox_store, tmp_path, third, name="third")
    assert status == 0, capfd.readouterr().err
    assert (out / "seen-after-prune").read_text() == ""


def test_cache_mount_sharing_seed_and_owner(
    busybox_store: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    dockerfile = (
        "FROM busybox AS seed\n"
        "RUN mkdir /seed && echo seeded > /seed/x\n"
        "FROM busybox AS left\n"
        "RUN --mount=type=cache,id=p,target=/c,sharing=private \\\n"
        "    touch /c/left && sleep 1 && ls /c > /list\n"
        "FROM busybox AS right\n"
        "RUN --mount=type=cache,id=p,target=/c,sharing=private \\\n"
        "    touch /c/right && sleep 1 && ls /c > /list\n"
        "FROM busybox\n"
        "COPY --from=left /list /left-list\n"
        "COPY --from=right /list /right-list\n"
        "RUN --mount=type=cache,target=/s,from=seed,source=/seed cat /s/x > /seeded\n"
        "RUN --mount=type=cache,target=/o,uid=1000,gid=1000,mode=0700 stat -c '%a %u %g' /o > /owner\n"
    )
    status, out = _build(busybox_store, tmp_path, dockerfile)
    assert status == 0, capfd.readouterr().err
    assert sorted([(out / "left-list").read_text(), (out / "right-list").read_text()]) == [
        "left\n",
        "right\n",
    ]
    assert (out / "seeded").read_text() == "seeded\n"
    assert (out / "owner").read_text() == "700 1000 1000\n"


def test_bind_mounts(busybox_store: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    dockerfile = (
        "FROM busybox AS seed\n"
        "RUN mkdir /seed && echo from-stage > /seed/x\n"
        "FROM busybox\n"
        "RUN --mount=type=bind,target=/ctx cat /ctx/data.txt > /from-context\n"
        "RUN --mount=type=bind,from=seed,source=/seed,target=/b,rw \\\n"
        "    cat /b/x > /from-stage && echo scribble > /b/new && rm /b/x\n"
        "RUN --mount=type=bind,from=seed,source=/seed,target=/b ls /b > /after-rw\n"
        "RUN --mount=type=bind,from=busybox,source=/etc/passwd,target=/pw \\\n"
        "    cmp /pw /etc/passwd && echo same > /from-image\n"
        "RUN --mount=type=bind,target=/ro (echo x > /ro/data.txt) 2> /dev/null || echo refused > /ro-write\n"
        "RUN --mount=type=tmpfs,target=/scratch echo x > /scratch/f \\\n"
        "    && grep ' /scratch ' /proc/mounts | cut -d' ' -f3 > /tmpfs-type\n"
    )
    status, out = _build(busybox_store, tmp_path, dockerfile)
    assert status == 0, capfd.readouterr().err
    assert (out / "from-context").read_text() == "context data\n"
    assert (out / "from-stage").read_text() == "from-stage\n"
    assert (out / "after-rw").read_text() == "x\n"
    assert (out / "from-image").read_text() == "same\n"
    assert (out / "ro-write").read_text() == "refused\n"
    assert (out / "tmpfs-type").read_text() == "tmpfs\n"
    for mount_point in ("ctx", "b", "pw", "ro", "scratch"):
        assert not (out / mount_point).exists(), mount_point


def test_ssh_agent_socket_is_forwarded(
    busybox_store: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    agent_path = tmp_path / "agent.sock"
    agent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    agent.bind(str(agent_path))
    agent.listen(1)
    try:
        dockerfile = (
            "FROM busybox\n"
            'RUN --mount=type=ssh test -S "$SSH_AUTH_SOCK" && echo "$SSH_AUTH_SOCK" > /sock\n'
            "RUN --mount=type=ssh,id=deploy,target=/agent,required test -S /agent && echo ok > /deploy\n"
        )
        flags = ("--ssh", f"default={agent_path}", "--ssh", f"deploy={agent_path}")
        status, out = _build(busybox_store, tmp_path, dockerfile, *flags)
        assert status == 0, capfd.readouterr().err
        assert (out / "sock").read_text() == "/run/buildkit/ssh_agent.0\n"
        assert (out / "deploy").read_text() == "ok\n"
        assert not (out / "agent").exists()
        required_only = "FROM busybox\nRUN --mount=type=ssh,id=deploy,required true\n"
        status, _out = _build(busybox_store, tmp_path, required_only, name="missing")
        assert status != 0
        assert "ssh agent 'deploy' is required but was not provided" in capfd.readouterr().err
    finally:
        agent.close()


def test_python_app_example_reuses_its_pip_cache(
    busybox_store: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "python-app"
    token = "example-token-value"
    secret_file = tmp_path / "token"
    secret_file.write_text(token)

    def build(*flags: str) -> str:
        out = tmp_path / "python-app"
        shutil.rmtree(out, ignore_errors=True)
        secret = f"id=pip_token,src={secret_file}"
        status = kiln(
            busybox_store, "build", "--secret", secret, *flags, "-o", f"type=local,dest={out}", str(example)
        )
        log = capfd.readouterr().err
        assert status == 0, log
        assert token not in log
        return log

    first = build()
    assert "Downloading greeting-1.0.whl" in first
    assert "authenticated to the private index (token of 19 characters)" in first
    installed = tmp_path / "python-app" / "app" / "site-packages"
    assert sorted(path.name for path in installed.iterdir()) == ["colours-2.1.whl", "greeting-1.0.whl"]
    assert not (tmp_path / "python-app" / "root" / ".cache").exists()
    second = build("--no-cache")
    assert "Using cached greeting-1.0.whl" in second
    assert "Downloading" not in second
