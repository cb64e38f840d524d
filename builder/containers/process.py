"""What a container runs, by docker's rules: the image config, then ``kiln run``'s flags.

* ``Entrypoint`` is kept; arguments after the image replace ``Cmd`` (not the entrypoint).
* ``Env`` comes from the config, ``-e K=V`` overrides by key, ``-e K`` takes the caller's
  ``$K`` (and is dropped when unset); a PATH is put first when none is set, as docker does.
* ``-w`` replaces ``WorkingDir`` (default ``/``), ``-u`` replaces ``User`` (default root).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from builder.errors import UsageError
from builder.lazyclasses import dataclass

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class RunOverrides:
    """``kiln run``'s flags that change what the image would run."""

    cmd: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    working_dir: str = ""
    user: str = ""


@dataclass(frozen=True)
class ContainerProcess:
    """The resolved process: argv split as entrypoint and cmd, env, cwd and user spec."""

    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...]
    env: tuple[str, ...]
    working_dir: str
    user: str


def _strings(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(str(item) for item in value)


def merge_env(
    base: Sequence[str], overrides: Sequence[str], caller_env: Mapping[str, str]
) -> tuple[str, ...]:
    """``base`` with each ``K=V`` of ``overrides`` replacing ``K`` (or appended)."""
    merged: dict[str, str] = {}
    for entry in base:
        key, _, value = entry.partition("=")
        merged[key] = value
    for entry in overrides:
        key, has_value, value = entry.partition("=")
        if not key:
            raise UsageError(f"-e {entry!r}: expected KEY=VALUE")
        if not has_value:
            if key not in caller_env:
                continue
            value = caller_env[key]
        merged[key] = value
    if "PATH" not in merged:
        merged = {"PATH": DEFAULT_PATH, **merged}
    return tuple(f"{key}={value}" for key, value in merged.items())


def resolve_process(
    image_config: Mapping[str, Any], overrides: RunOverrides, caller_env: Mapping[str, str] | None = None
) -> ContainerProcess:
    """The process a container of an image with ``image_config`` (the config's ``config``
    object) runs; raises :class:`UsageError` when there is no command at all."""
    entrypoint = _strings(image_config.get("Entrypoint"))
    cmd = overrides.cmd or _strings(image_config.get("Cmd"))
    if not entrypoint and not cmd:
        raise UsageError("no command specified: the image has no Entrypoint or Cmd, give one")
    env = merge_env(
        _strings(image_config.get("Env")), overrides.env, os.environ if caller_env is None else caller_env
    )
    working_dir = overrides.working_dir or str(image_config.get("WorkingDir") or "/")
    if not working_dir.startswith("/"):
        raise UsageError(f"the working directory {working_dir!r} is not an absolute path")
    user = overrides.user or str(image_config.get("User") or "")
    return ContainerProcess(entrypoint, cmd, env, working_dir, user)
