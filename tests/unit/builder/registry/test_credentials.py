"""Credential lookup: kiln's login file, docker's auths, credHelpers and credsStore helpers."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest

from builder.errors import RegistryError
from builder.registry.credentials import (
    Credentials,
    find_credentials,
    remove_login,
    save_login,
    server_key,
)


@pytest.fixture(autouse=True)
def config_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KILN_AUTH_FILE", str(tmp_path / "kiln" / "auth.json"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    (tmp_path / "docker").mkdir()


def _docker_config(tmp_path: Path, document: dict[str, object]) -> None:
    (tmp_path / "docker" / "config.json").write_text(json.dumps(document))


def _auth(user: str, password: str) -> dict[str, str]:
    return {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}


def _helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, script: str) -> Path:
    """A fake ``docker-credential-<name>`` on PATH that logs the server it was asked for."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    helper = bin_dir / f"docker-credential-{name}"
    helper.write_text(f'#!/bin/sh\nread server\necho "$1 $server" >> {tmp_path}/helper.log\n{script}\n')
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    return tmp_path / "helper.log"


@pytest.mark.parametrize(
    ("registry", "key"),
    [
        ("docker.io", "https://index.docker.io/v1/"),
        ("index.docker.io", "https://index.docker.io/v1/"),
        ("registry-1.docker.io", "https://index.docker.io/v1/"),
        ("ghcr.io", "ghcr.io"),
        ("https://ghcr.io/v2/", "ghcr.io"),
        ("localhost:5000", "localhost:5000"),
    ],
)
def test_server_key(registry: str, key: str) -> None:
    assert server_key(registry) == key


def test_nothing_configured_means_anonymous() -> None:
    assert find_credentials("ghcr.io") is None


def test_docker_auths_by_host_and_by_url_key(tmp_path: Path) -> None:
    _docker_config(
        tmp_path,
        {
            "auths": {
                "https://index.docker.io/v1/": _auth("hubuser", "hubpass"),
                "https://quay.io": _auth("quser", "qpass:with:colons"),
                "ghcr.io": {"username": "guser", "password": "gpass"},
                "tok.example": {"identitytoken": "refresh-me"},
            }
        },
    )
    assert find_credentials("docker.io") == Credentials("hubuser", "hubpass")
    assert find_credentials("quay.io") == Credentials("quser", "qpass:with:colons")
    assert find_credentials("ghcr.io") == Credentials("guser", "gpass")
    assert find_credentials("tok.example") == Credentials("", "", "refresh-me")


def test_kiln_login_file_wins_and_logout_forgets(tmp_path: Path) -> None:
    _docker_config(tmp_path, {"auths": {"ghcr.io": _auth("docker-user", "docker-pass")}})
    path = save_login("ghcr.io", Credentials("kiln-user", "kiln-pass"))

    assert path == tmp_path / "kiln" / "auth.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {"auths": {"ghcr.io": _auth("kiln-user", "kiln-pass")}}
    assert find_credentials("ghcr.io") == Credentials("kiln-user", "kiln-pass")
    assert remove_login("ghcr.io") is True
    assert remove_login("ghcr.io") is False
    assert find_credentials("ghcr.io") == Credentials("docker-user", "docker-pass")


def test_cred_helper_for_the_registry_comes_before_auths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = _helper(
        tmp_path, monkeypatch, "fake", 'echo \'{"ServerURL":"x","Username":"helped","Secret":"s3"}\''
    )
    _docker_config(tmp_path, {"credHelpers": {"ghcr.io": "fake"}, "auths": {"ghcr.io": _auth("a", "b")}})

    assert find_credentials("ghcr.io") == Credentials("helped", "s3")
    assert log.read_text() == "get ghcr.io\n"


def test_creds_store_is_the_fallback_and_token_user_means_identity_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _helper(tmp_path, monkeypatch, "desktop", 'echo \'{"Username":"<token>","Secret":"refresh"}\'')
    _docker_config(tmp_path, {"credsStore": "desktop", "auths": {"quay.io": _auth("q", "p")}})

    assert find_credentials("quay.io") == Credentials("q", "p")
    assert find_credentials("docker.io") == Credentials("", "", "refresh")


def test_helper_that_knows_nothing_means_anonymous(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _helper(tmp_path, monkeypatch, "empty", "echo 'credentials not found in native keychain'; exit 1")
    _docker_config(tmp_path, {"credsStore": "empty"})
    assert find_credentials("ghcr.io") is None


def test_missing_helper_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    _docker_config(tmp_path, {"credHelpers": {"ghcr.io": "nosuch"}})
    with pytest.raises(RegistryError) as raised:
        find_credentials("ghcr.io")
    assert str(raised.value) == (
        "credential helper docker-credential-nosuch named in docker's config.json is not installed"
    )


def test_unreadable_config_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "docker" / "config.json").write_text("{not json")
    with pytest.raises(RegistryError) as raised:
        find_credentials("ghcr.io")
    assert str(raised.value).startswith(f"cannot read credentials file {tmp_path}/docker/config.json: ")


def test_secrets_stay_out_of_repr() -> None:
    text = repr(Credentials("user", "hunter2", "tok-123"))
    assert text == "Credentials(username='user')"
