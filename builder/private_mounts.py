"""Mounts whose content must never reach a layer: secrets, SSH agents, RUN heredoc files.

Each is materialised in a private directory on a tmpfs outside the rootfs (``/dev/shm``
when the host has it, so a secret never touches a disk) and bound into the container for
that one RUN; the directory is deleted as soon as the step ends. Env secrets
(``--mount=type=secret,env=VAR``) go only into the step's process environment, which is
not recorded anywhere: the graph, the keys and the history keep the RUN's own env.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import field
from pathlib import Path

from builder.errors import BuildError
from builder.exec.spec import SpecMount
from builder.graph import Exec, SecretMount, SshMount
from builder.lazyclasses import dataclass
from builder.processes import process_alive
from builder.secrets import SecretSource

SECRETS_DIR = "/run/secrets"
SSH_AGENT_PREFIX = "/run/buildkit/ssh_agent"
SHM = Path("/dev/shm")


@dataclass
class PrivateMounts:
    """What one RUN gets on top of its ``--mount`` flags: bind mounts and env entries."""

    mounts: list[SpecMount] = field(default_factory=list)
    env: list[str] = field(default_factory=list)


PRIVATE_PREFIX = "kiln-private-"


def _private_dir() -> Path:
    """A fresh 0700 dir named after this kiln's pid, after removing those of dead kilns (a
    kiln killed with SIGKILL could not delete its secrets itself)."""
    parent = SHM if SHM.is_dir() and os.access(SHM, os.W_OK) else Path(tempfile.gettempdir())
    for leftover in parent.glob(f"{PRIVATE_PREFIX}*"):
        pid_text = leftover.name.removeprefix(PRIVATE_PREFIX).partition("-")[0]
        if pid_text.isdigit() and not process_alive(int(pid_text)):
            shutil.rmtree(leftover, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{PRIVATE_PREFIX}{os.getpid()}-", dir=parent))


def _write_private(path: Path, content: bytes, mode: int, uid: int, gid: int) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(descriptor, content)
    finally:
        os.close(descriptor)
    os.chown(path, uid, gid)
    os.chmod(path, mode)


@contextmanager
def private_mounts(
    op: Exec,
    secrets: Mapping[str, SecretSource],
    ssh_sockets: Mapping[str, Path],
) -> Iterator[PrivateMounts]:
    """The secret, ssh and inline-file mounts of ``op``, valid while the block runs.

    A missing secret or agent is skipped unless the mount is ``required``, as in BuildKit;
    then the error names the id.
    """
    result = PrivateMounts()
    if not op.inline_files and not any(isinstance(m, (SecretMount, SshMount)) for m in op.mounts):
        yield result  # the common RUN: nothing private, no scratch dir
        return
    scratch = _private_dir()
    try:
        os.chmod(scratch, 0o711)
        for index, inline in enumerate(op.inline_files):
            host_path = scratch / f"inline-{index}"
            _write_private(host_path, inline.content.encode(), inline.mode, 0, 0)
            destination = f"/dev/pipes/{inline.name}"
            result.mounts.append(SpecMount(destination, str(host_path), "bind", ("rbind", "ro")))
        ssh_count = 0
        for number, mount in enumerate(op.mounts):
            if isinstance(mount, SecretMount):
                _add_secret(op, mount, secrets, scratch / f"secret-{number}", result)
            elif isinstance(mount, SshMount):
                _add_ssh(op, mount, ssh_sockets, ssh_count, result)
                ssh_count += 1
        yield result
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _add_secret(
    op: Exec,
    mount: SecretMount,
    secrets: Mapping[str, SecretSource],
    host_path: Path,
    result: PrivateMounts,
) -> None:
    source = secrets.get(mount.id)
    if source is None:
        if mount.required:
            raise BuildError(f"secret {mount.id!r} is required but was not provided", op.location)
        return
    value = source.read()
    if mount.env:
        result.env.append(f"{mount.env}={value.decode('utf-8', errors='replace')}")
    if mount.target or not mount.env:
        _write_private(host_path, value, mount.mode, mount.uid, mount.gid)
        target = mount.target or f"{SECRETS_DIR}/{mount.id}"
        result.mounts.append(SpecMount(target, str(host_path), "bind", ("rbind", "ro", "nosuid", "nodev")))


def _add_ssh(
    op: Exec, mount: SshMount, ssh_sockets: Mapping[str, Path], count: int, result: PrivateMounts
) -> None:
    socket = ssh_sockets.get(mount.id)
    if socket is None:
        if mount.required:
            raise BuildError(f"ssh agent {mount.id!r} is required but was not provided", op.location)
        return
    target = mount.target or f"{SSH_AGENT_PREFIX}.{count}"
    result.mounts.append(SpecMount(target, str(socket), "bind", ("rbind", "rw")))
    if not any(entry.startswith("SSH_AUTH_SOCK=") for entry in op.env):
        result.env.append(f"SSH_AUTH_SOCK={target}")
