"""Where registry credentials come from: kiln's login file, then docker's ``config.json``.

Lookup order for a registry host:

1. kiln's own login file (``kiln login``): ``$KILN_AUTH_FILE``, else
   ``$XDG_CONFIG_HOME/kiln/auth.json`` (``~/.config/kiln/auth.json``). It has docker's
   ``{"auths": {server: {"auth": base64("user:password")}}}`` shape, mode 0600.
2. docker's ``config.json`` (``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``):
   ``credHelpers[server]``, then ``auths[server]``, then the ``credsStore`` helper, as the
   docker CLI does. A helper is run as ``docker-credential-<name> get`` with the server on
   standard input and answers ``{"Username": ..., "Secret": ...}``.

Docker Hub is keyed ``https://index.docker.io/v1/`` in both files, whatever name the user
typed. Secrets are never logged: :class:`Credentials` hides them from ``repr``.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
from dataclasses import field
from pathlib import Path
from typing import Any

from builder.errors import RegistryError
from builder.lazyclasses import dataclass

DOCKER_HUB_KEY = "https://index.docker.io/v1/"
_DOCKER_HUB_NAMES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io", DOCKER_HUB_KEY})
_HELPER_TIMEOUT_SECONDS = 30.0
_TOKEN_USERNAME = "<token>"


@dataclass(frozen=True)
class Credentials:
    """A user name and password, or an identity token (an OAuth refresh token)."""

    username: str
    password: str = field(repr=False)
    identity_token: str = field(default="", repr=False)


def server_key(registry: str) -> str:
    """The key a config file uses for ``registry``: Docker Hub's legacy URL, else the host."""
    if registry in _DOCKER_HUB_NAMES:
        return DOCKER_HUB_KEY
    for prefix in ("https://", "http://"):
        registry = registry.removeprefix(prefix)
    return registry.rstrip("/").split("/", 1)[0]


def kiln_auth_file() -> Path:
    from_env = os.environ.get("KILN_AUTH_FILE")
    if from_env:
        return Path(from_env)
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config_home) / "kiln" / "auth.json"


def docker_config_file() -> Path:
    directory = os.environ.get("DOCKER_CONFIG") or str(Path.home() / ".docker")
    return Path(directory) / "config.json"


def find_credentials(registry: str) -> Credentials | None:
    """The credentials for ``registry``, or ``None`` for anonymous access."""
    key = server_key(registry)
    found = _from_auths(_read_config(kiln_auth_file()), key)
    if found is not None:
        return found
    docker_config = _read_config(docker_config_file())
    helpers = docker_config.get("credHelpers")
    if isinstance(helpers, dict) and isinstance(helpers.get(key), str):
        return run_credential_helper(helpers[key], key)
    found = _from_auths(docker_config, key)
    if found is not None:
        return found
    store_name = docker_config.get("credsStore")
    if isinstance(store_name, str) and store_name:
        return run_credential_helper(store_name, key)
    return None


def run_credential_helper(helper: str, key: str) -> Credentials | None:
    """Ask ``docker-credential-<helper>`` for ``key``; ``None`` when it knows none."""
    program = f"docker-credential-{helper}"
    try:
        completed = subprocess.run(
            [program, "get"],
            input=key.encode(),
            capture_output=True,
            timeout=_HELPER_TIMEOUT_SECONDS,
            check=False,
        )
    except FileNotFoundError as err:
        raise RegistryError(
            f"credential helper {program} named in docker's config.json is not installed"
        ) from err
    except subprocess.TimeoutExpired as err:
        raise RegistryError(f"credential helper {program} did not answer for {key}") from err
    if completed.returncode != 0:
        # Helpers say "credentials not found in native keychain" on stdout and exit 1.
        return None
    try:
        answer = json.loads(completed.stdout)
        username, secret = str(answer["Username"]), str(answer["Secret"])
    except (ValueError, KeyError, TypeError) as err:
        raise RegistryError(f"credential helper {program} gave an unreadable answer for {key}") from err
    if username == _TOKEN_USERNAME:
        return Credentials(username="", password="", identity_token=secret)
    return Credentials(username=username, password=secret)


def save_login(registry: str, credentials: Credentials) -> Path:
    """Record credentials in kiln's login file (created 0600); return its path."""
    path = kiln_auth_file()
    config = _read_config(path)
    auths = config.setdefault("auths", {})
    token = f"{credentials.username}:{credentials.password}".encode()
    auths[server_key(registry)] = {"auth": base64.b64encode(token).decode()}
    _write_private(path, config)
    return path


def remove_login(registry: str) -> bool:
    """Forget the credentials kiln's login file holds for ``registry``; whether any were."""
    path = kiln_auth_file()
    config = _read_config(path)
    auths = config.get("auths")
    if not isinstance(auths, dict) or server_key(registry) not in auths:
        return False
    del auths[server_key(registry)]
    _write_private(path, config)
    return True


def _from_auths(config: dict[str, Any], key: str) -> Credentials | None:
    auths = config.get("auths")
    if not isinstance(auths, dict):
        return None
    entry = auths.get(key)
    if entry is None:
        # docker writes "https://host" or "http://host/v2/" keys for some registries
        entry = next((value for name, value in auths.items() if server_key(name) == key), None)
    if not isinstance(entry, dict):
        return None
    identity_token = str(entry.get("identitytoken", ""))
    if entry.get("auth"):
        try:
            decoded = base64.b64decode(str(entry["auth"])).decode()
        except (ValueError, UnicodeDecodeError) as err:
            raise RegistryError(f"the saved login for {key} is not valid base64") from err
        username, _, password = decoded.partition(":")
        return Credentials(username, password, identity_token)
    if entry.get("username"):
        return Credentials(str(entry["username"]), str(entry.get("password", "")), identity_token)
    if identity_token:
        return Credentials("", "", identity_token)
    return None


def _read_config(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:
        raise RegistryError(f"cannot read credentials file {path}: {err}") from err
    if not isinstance(document, dict):
        raise RegistryError(f"credentials file {path} is not a JSON object")
    return document


def _write_private(path: Path, config: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temp_path = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}")
    descriptor = os.open(temp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as out:
            json.dump(config, out, indent=2)
        os.replace(temp_path, path)
    finally:
        temp_path.unlink(missing_ok=True)
