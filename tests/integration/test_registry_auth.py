"""Registry auth against real servers: htpasswd basic auth, and the bearer-token flow with a
loopback token server whose JWTs the registry verifies.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from builder.cli.main import main
from builder.errors import RegistryError
from builder.registry import host_platform, pull_image, push_image, save_login
from builder.registry.credentials import Credentials, find_credentials
from builder.store import Store
from tests.fixtures.registry_images import import_busybox

if TYPE_CHECKING:
    from tests.fixtures.registry import RunningRegistry
    from tests.fixtures.registry_servers import TokenServer

pytest_plugins = ["tests.fixtures.registry"]
pytestmark = pytest.mark.usefixtures("registry_isolation")


def test_basic_auth_needs_a_login_and_works_with_one(
    basic_auth_registry: RunningRegistry, store: Store, fresh_store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = f"{basic_auth_registry.host}/kiln/private:1"
    digest = import_busybox(store, ref)
    with pytest.raises(RegistryError) as raised:
        push_image(store, ref)
    message = str(raised.value)
    assert message.startswith(
        f"unauthorized: {basic_auth_registry.host} requires authentication for blob sha256:"
    )
    assert message.endswith(
        f" of {basic_auth_registry.host}/kiln/private (kiln login {basic_auth_registry.host})"
    )

    save_login(basic_auth_registry.host, Credentials(basic_auth_registry.user, "wrong"))
    with pytest.raises(RegistryError) as raised:
        push_image(store, ref)
    assert str(raised.value).startswith(f"unauthorized: {basic_auth_registry.host} refused the credentials")

    status = main(
        [
            "login",
            "-u",
            basic_auth_registry.user,
            "-p",
            basic_auth_registry.password,
            basic_auth_registry.host,
        ]
    )
    assert status == 0
    assert push_image(store, ref) == digest
    assert pull_image(fresh_store, ref, platform=host_platform()) == digest
    output = capsys.readouterr().out
    assert basic_auth_registry.password not in output
    assert main(["logout", basic_auth_registry.host]) == 0
    with Store.open(fresh_store.root.parent / "third") as third, pytest.raises(RegistryError):
        pull_image(third, ref, platform=host_platform())


def test_login_reads_the_password_from_stdin_and_refuses_a_wrong_one(
    basic_auth_registry: RunningRegistry, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    host = basic_auth_registry.host
    monkeypatch.setattr("sys.stdin", io.StringIO("wrong\n"))
    assert main(["login", "-u", basic_auth_registry.user, "--password-stdin", host]) == 1
    assert capsys.readouterr().err == (
        f"error: unauthorized: {host} refused the credentials for the API root of {host}: "
        "UNAUTHORIZED authentication required\n"
    )
    assert find_credentials(host) is None

    monkeypatch.setattr("sys.stdin", io.StringIO(basic_auth_registry.password + "\n"))
    assert main(["login", "-u", basic_auth_registry.user, "--password-stdin", host]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("Login Succeeded")
    assert basic_auth_registry.password not in captured.out + captured.err
    assert find_credentials(host) == Credentials(basic_auth_registry.user, basic_auth_registry.password)


def test_bearer_token_flow_with_docker_config_credentials(
    token_registry: RunningRegistry,
    token_server: TokenServer,
    store: Store,
    fresh_store: Store,
    tmp_path: Path,
) -> None:
    ref = f"{token_registry.host}/kiln/tokened:1"
    digest = import_busybox(store, ref)
    with pytest.raises(RegistryError) as raised:
        push_image(store, ref)
    assert str(raised.value).startswith(f"unauthorized: {token_registry.host} requires authentication for ")
    token_server.refused = 0

    docker_config = tmp_path / "docker-config"
    docker_config.mkdir()
    auth = base64.b64encode(f"{token_server.user}:{token_server.password}".encode()).decode()
    (docker_config / "config.json").write_text(json.dumps({"auths": {token_registry.host: {"auth": auth}}}))
    token_server.scope_requests.clear()

    assert push_image(store, ref) == digest
    assert pull_image(fresh_store, ref, platform=host_platform()) == digest
    assert token_server.scope_requests == [
        ["repository:kiln/tokened:pull", "repository:kiln/tokened:pull,push"],
        ["repository:kiln/tokened:pull"],
    ]
    assert token_server.refused == 0
