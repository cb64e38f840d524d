"""Build secrets and SSH agents given on the command line (``--secret``, ``--ssh``).

A secret's value is read only when a ``RUN --mount=type=secret`` asks for it, and only into
places that are not part of the step's layer: a private file in a tmpfs outside the rootfs
(bound read-only into the container) or the step's process environment. Nothing here is
hashed into a key or written to the store, which is why the graph carries only the id.
"""

from __future__ import annotations

import os
from pathlib import Path

from builder.errors import UsageError
from builder.lazyclasses import dataclass


@dataclass(frozen=True)
class SecretSource:
    """Where ``kiln build --secret id=X,...`` reads a secret: a file or an env variable."""

    id: str
    file: Path | None = None
    env: str = ""

    def read(self) -> bytes:
        """The secret's value, read at the moment a step needs it."""
        if self.file is not None:
            try:
                return self.file.read_bytes()
            except OSError as err:
                raise UsageError(f"cannot read secret {self.id!r} from {self.file}: {err}") from None
        value = os.environ.get(self.env)
        if value is None:
            raise UsageError(f"secret {self.id!r}: environment variable {self.env} is not set")
        return value.encode()


def _fields(text: str, flag: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in text.split(","):
        key, has_value, value = part.partition("=")
        if not has_value:
            raise UsageError(f"{flag} {text!r}: expected key=value fields")
        fields[key.strip().lower()] = value
    return fields


def parse_secret_flag(text: str) -> SecretSource:
    """One ``--secret`` value, with docker buildx's fields.

    ``id=X,src=FILE`` (also ``source=``), ``id=X,env=VAR``, ``type=file|env``; with no
    ``src`` or ``env`` the secret comes from the variable named like the id, else from the
    file named like it, as buildx does.
    """
    fields = _fields(text, "--secret")
    unknown = set(fields) - {"id", "src", "source", "env", "type"}
    if unknown:
        raise UsageError(f"--secret {text!r}: unknown field {sorted(unknown)[0]!r}")
    secret_id = fields.get("id", "")
    if not secret_id:
        raise UsageError(f"--secret {text!r}: id is required")
    kind = fields.get("type", "")
    if kind not in ("", "file", "env"):
        raise UsageError(f"--secret {text!r}: type must be file or env")
    source = fields.get("src") or fields.get("source") or ""
    env = fields.get("env", "")
    if kind == "env" or (env and not source):
        return SecretSource(secret_id, env=env or source or secret_id)
    if kind == "file" or source:
        return SecretSource(secret_id, file=Path(source or secret_id))
    if secret_id in os.environ:
        return SecretSource(secret_id, env=secret_id)
    return SecretSource(secret_id, file=Path(secret_id))


def parse_ssh_flag(text: str) -> tuple[str, Path]:
    """One ``--ssh`` value: ``default`` (the agent at ``$SSH_AUTH_SOCK``) or ``ID=SOCKET``."""
    ssh_id, has_path, path = text.partition("=")
    if not ssh_id:
        raise UsageError(f"--ssh {text!r}: expected ID[=SOCKET]")
    if has_path and path:
        return ssh_id, Path(path)
    agent = os.environ.get("SSH_AUTH_SOCK", "")
    if not agent:
        raise UsageError(f"--ssh {text}: no socket given and SSH_AUTH_SOCK is not set")
    return ssh_id, Path(agent)
