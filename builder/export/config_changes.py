"""``--change`` lines for ``kiln import``: Dockerfile config instructions applied to a config.

Accepts what ``docker import --change`` accepts: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER,
VOLUME, WORKDIR, STOPSIGNAL, ONBUILD. CMD and ENTRYPOINT take the JSON form or the shell form
(wrapped in ``/bin/sh -c`` as in a Dockerfile). This is a small parser for one line at a time;
the Dockerfile frontend owns the full grammar, with quoting and variable expansion.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from builder.errors import UsageError

_SHELL = ["/bin/sh", "-c"]


def apply_change(container_config: dict[str, Any], line: str) -> None:
    """Apply one ``INSTRUCTION args`` line to the config's ``config`` object in place."""
    keyword, _, rest = line.strip().partition(" ")
    instruction = keyword.upper()
    rest = rest.strip()
    if not rest:
        raise UsageError(f"--change {line!r}: {instruction or 'instruction'} needs an argument")
    if instruction in ("CMD", "ENTRYPOINT"):
        container_config["Cmd" if instruction == "CMD" else "Entrypoint"] = _command(rest)
    elif instruction == "ENV":
        env = [item for item in container_config.get("Env", [])]
        for key, value in _pairs(rest, line):
            env = [item for item in env if item.split("=", 1)[0] != key] + [f"{key}={value}"]
        container_config["Env"] = env
    elif instruction == "LABEL":
        labels = dict(container_config.get("Labels") or {})
        labels.update(_pairs(rest, line))
        container_config["Labels"] = labels
    elif instruction == "EXPOSE":
        ports = dict(container_config.get("ExposedPorts") or {})
        for port in rest.split():
            ports[port if "/" in port else f"{port}/tcp"] = {}
        container_config["ExposedPorts"] = ports
    elif instruction == "VOLUME":
        volumes = dict(container_config.get("Volumes") or {})
        paths = json.loads(rest) if rest.startswith("[") else rest.split()
        volumes.update({str(path): {} for path in paths})
        container_config["Volumes"] = volumes
    elif instruction in ("USER", "WORKDIR", "STOPSIGNAL"):
        field = {"USER": "User", "WORKDIR": "WorkingDir", "STOPSIGNAL": "StopSignal"}[instruction]
        container_config[field] = rest
    elif instruction == "ONBUILD":
        container_config["OnBuild"] = [*(container_config.get("OnBuild") or []), rest]
    else:
        raise UsageError(f"--change {line!r}: {keyword!r} is not a config instruction")


def _command(rest: str) -> list[str]:
    if rest.startswith("["):
        try:
            words = json.loads(rest)
        except ValueError:
            words = None
        if isinstance(words, list) and all(isinstance(word, str) for word in words):
            return words
    return [*_SHELL, rest]


def _pairs(rest: str, line: str) -> list[tuple[str, str]]:
    try:
        words = shlex.split(rest)
    except ValueError as err:
        raise UsageError(f"--change {line!r}: {err}") from err
    if words and "=" not in words[0]:
        key, _, value = rest.partition(" ")
        return [(key, value.strip())]
    pairs: list[tuple[str, str]] = []
    for word in words:
        key, equals, value = word.partition("=")
        if not equals or not key:
            raise UsageError(f"--change {line!r}: expected KEY=VALUE, got {word!r}")
        pairs.append((key, value))
    return pairs
