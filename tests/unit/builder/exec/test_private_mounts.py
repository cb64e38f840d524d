"""Secret, ssh and inline-file mounts as spec mounts, and the privileged spec of
``RUN --security=insecure``: pure checks, no container."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from builder.errors import BuildError
from builder.exec.spec import (
    ALL_CAPABILITIES,
    DEFAULT_CAPABILITIES,
    MASKED_PATHS,
    bounded_capabilities,
    runtime_spec,
)
from builder.exec.users import ResolvedUser
from builder.graph import Exec, InlineFile, SecretMount, SshMount
from builder.private_mounts import private_mounts
from builder.secrets import SecretSource
from builder.source import SourceSpan

SPAN = SourceSpan("Dockerfile", 2, 2)


def _exec(**fields: object) -> Exec:
    return Exec(location=SPAN, created_by="RUN x", argv=("sh",), env=("PATH=/bin",), cwd="/", **fields)  # type: ignore[arg-type]


def test_bounded_capabilities_follow_the_bounding_mask() -> None:
    assert bounded_capabilities("Name:\tx\nCapBnd:\t0000000000000003\n") == ("CAP_CHOWN", "CAP_DAC_OVERRIDE")
    everything_but_sys_resource = f"CapBnd:\t{((1 << 41) - 1) & ~(1 << 24):016x}\n"
    granted = bounded_capabilities(everything_but_sys_resource)
    assert len(granted) == 40
    assert "CAP_SYS_RESOURCE" not in granted
    assert bounded_capabilities("no such line") == ALL_CAPABILITIES


def test_privileged_spec_has_the_given_capabilities_and_masks_nothing(tmp_path: Path) -> None:
    def spec(privileged: bool) -> dict[str, object]:
        return runtime_spec(
            rootfs=tmp_path,
            argv=("true",),
            env=(),
            cwd="/",
            user=ResolvedUser(0, 0, (), "/root"),
            network="host",
            hosts_file=tmp_path / "hosts",
            resolv_conf=tmp_path / "resolv.conf",
            privileged=privileged,
            privileged_capabilities=("CAP_SYS_ADMIN",),
        )

    sandbox, insecure = spec(False), spec(True)
    assert sandbox["process"]["capabilities"]["bounding"] == list(DEFAULT_CAPABILITIES)  # type: ignore[index]
    assert sandbox["linux"]["maskedPaths"] == list(MASKED_PATHS)  # type: ignore[index]
    assert insecure["process"]["capabilities"]["effective"] == ["CAP_SYS_ADMIN"]  # type: ignore[index]
    assert insecure["linux"]["maskedPaths"] == []  # type: ignore[index]
    assert insecure["linux"]["readonlyPaths"] == []  # type: ignore[index]


@pytest.mark.skipif(os.geteuid() != 0, reason="chown of the secret file needs root")
def test_secret_file_env_and_inline_file(tmp_path: Path) -> None:
    secret_file = tmp_path / "token"
    secret_file.write_text("value")
    op = _exec(
        mounts=(
            SecretMount(id="tok", target="/run/secrets/tok", mode=0o440, uid=7, gid=8),
            SecretMount(id="tok", env="TOKEN"),
        ),
        inline_files=(InlineFile("EOF", "#!/bin/sh\necho hi\n", 0o755),),
    )
    with private_mounts(op, {"tok": SecretSource("tok", file=secret_file)}, {}) as private:
        destinations = [mount.destination for mount in private.mounts]
        assert destinations == ["/dev/pipes/EOF", "/run/secrets/tok"]
        inline_path, secret_path = (Path(mount.source) for mount in private.mounts)
        assert inline_path.read_text() == "#!/bin/sh\necho hi\n"
        assert inline_path.stat().st_mode & 0o777 == 0o755
        status = secret_path.stat()
        assert (status.st_mode & 0o777, status.st_uid, status.st_gid) == (0o440, 7, 8)
        assert secret_path.read_text() == "value"
        assert private.env == ["TOKEN=value"]
        assert all(mount.options[:2] == ("rbind", "ro") for mount in private.mounts)
    assert not secret_path.exists()
    assert not secret_path.parent.exists()


def test_missing_secret_is_skipped_unless_required() -> None:
    with private_mounts(_exec(mounts=(SecretMount(id="absent"),)), {}, {}) as private:
        assert private.mounts == []
        assert private.env == []
    with (
        pytest.raises(BuildError, match="secret 'absent' is required but was not provided"),
        private_mounts(_exec(mounts=(SecretMount(id="absent", required=True),)), {}, {}),
    ):
        pass


def test_ssh_socket_and_auth_sock(tmp_path: Path) -> None:
    socket_path = tmp_path / "agent.sock"
    op = _exec(mounts=(SshMount(id="default", target="/run/buildkit/ssh_agent.0"),))
    with private_mounts(op, {}, {"default": socket_path}) as private:
        assert [(mount.destination, mount.source) for mount in private.mounts] == [
            ("/run/buildkit/ssh_agent.0", str(socket_path))
        ]
        assert private.env == ["SSH_AUTH_SOCK=/run/buildkit/ssh_agent.0"]


def test_a_dead_kiln_s_private_dir_is_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import builder.private_mounts as private_module

    monkeypatch.setattr(private_module, "SHM", tmp_path)
    child = subprocess.Popen(["true"])
    child.wait()
    leftover = tmp_path / f"kiln-private-{child.pid}-abc"
    leftover.mkdir()
    (leftover / "secret-0").write_text("value")
    live = tmp_path / f"kiln-private-{os.getpid()}-def"
    live.mkdir()
    op = _exec(inline_files=(InlineFile("EOF", "#!/bin/sh\n", 0o755),))
    with private_mounts(op, {}, {}) as private:
        assert Path(private.mounts[0].source).parent.parent == tmp_path
        assert not leftover.exists()
        assert live.exists()
