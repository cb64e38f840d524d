"""The registry client against a scripted loopback server: retries, challenges, error messages."""

from __future__ import annotations

import base64
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from builder.errors import RegistryError
from builder.registry.client import (
    RegistryClient,
    api_host,
    configured_insecure_registries,
    system_ca_bundle,
    uses_plain_http,
)
from builder.registry.credentials import Credentials
from tests.fixtures.registry_servers import free_port

Answer = tuple[int, dict[str, str], bytes]


@pytest.fixture(autouse=True)
def no_registries_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "registries.json"
    monkeypatch.setenv("KILN_REGISTRIES_CONFIG", str(path))
    return path


@dataclass
class ScriptedServer:
    """Answers requests in order from ``answers``; records (method, path, Authorization)."""

    answers: list[Answer]
    seen: list[tuple[str, str, str]] = field(default_factory=list)
    host: str = ""


@pytest.fixture
def scripted() -> Iterator[ScriptedServer]:
    script = ScriptedServer([])

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            script.seen.append(("GET", self.path, self.headers.get("Authorization", "")))
            status, headers, body = script.answers.pop(0)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            del format, args

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    script.host = f"127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield script
    server.shutdown()
    server.server_close()
    thread.join()


def _client(host: str, credentials: Credentials | None = None) -> RegistryClient:
    return RegistryClient(
        host, credentials=credentials, look_up_credentials=False, retries=2, backoff_seconds=0.01
    )


def test_5xx_answers_are_retried(scripted: ScriptedServer) -> None:
    scripted.answers = [(503, {}, b""), (502, {}, b""), (200, {}, b"ok")]
    with _client(scripted.host) as client:
        response = client.request("GET", "/v2/", scopes=[], what="x")
    assert response.content == b"ok"
    assert len(scripted.seen) == 3


def test_5xx_after_the_last_retry_names_the_status(scripted: ScriptedServer) -> None:
    scripted.answers = [(500, {}, b"")] * 3
    with _client(scripted.host) as client, pytest.raises(RegistryError) as raised:
        client.request("GET", "/v2/a/manifests/1", scopes=[], what=f"{scripted.host}/a:1")
    assert str(raised.value) == f"GET {scripted.host}/a:1 on {scripted.host} failed with HTTP 500"


def test_connection_refused_is_retried_then_reported() -> None:
    host = f"127.0.0.1:{free_port()}"
    with _client(host) as client, pytest.raises(RegistryError) as raised:
        client.request("GET", "/v2/", scopes=[], what="x")
    assert str(raised.value).startswith(f"cannot reach {host} after 3 attempts: ")


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (
            (429, {"Retry-After": "60"}, b""),
            "rate limit hit: {host} answered 429 Too Many Requests for {host}/app:1; retry after 60 s",
        ),
        (
            (
                403,
                {},
                b'{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}',
            ),
            "denied: {host} forbids access to {host}/app:1 (403): "
            "DENIED requested access to the resource is denied",
        ),
        (
            (404, {}, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}'),
            "not found: {host}/app:1 does not exist on {host} (404): MANIFEST_UNKNOWN manifest unknown",
        ),
        (
            (401, {}, b""),
            "unauthorized: {host} requires authentication for {host}/app:1 (kiln login {host})",
        ),
    ],
)
def test_error_statuses_name_the_reference(scripted: ScriptedServer, answer: Answer, message: str) -> None:
    scripted.answers = [answer]
    with _client(scripted.host) as client, pytest.raises(RegistryError) as raised:
        client.request("GET", "/v2/app/manifests/1", scopes=[], what=f"{scripted.host}/app:1")
    assert str(raised.value) == message.format(host=scripted.host)


def test_basic_challenge_is_answered_with_the_saved_credentials(scripted: ScriptedServer) -> None:
    scripted.answers = [
        (401, {"WWW-Authenticate": 'Basic realm="r"'}, b""),
        (200, {}, b"{}"),
        (200, {}, b"{}"),
    ]
    with _client(scripted.host, Credentials("user", "pass")) as client:
        client.request("GET", "/v2/", scopes=["repository:a:pull"], what="x")
        client.request("GET", "/v2/", scopes=["repository:a:pull"], what="x")
    expected = "Basic " + base64.b64encode(b"user:pass").decode()
    assert [auth for _, _, auth in scripted.seen] == ["", expected, expected]


def test_bearer_challenge_fetches_a_token_for_the_scopes(scripted: ScriptedServer) -> None:
    realm = f"http://{scripted.host}/token"
    scripted.answers = [
        (401, {"WWW-Authenticate": f'Bearer realm="{realm}",service="svc",scope="repository:a:pull"'}, b""),
        (200, {"Content-Type": "application/json"}, b'{"token":"t0k"}'),
        (200, {}, b"{}"),
    ]
    with _client(scripted.host, Credentials("user", "pass")) as client:
        client.request("GET", "/v2/a/tags/list", scopes=["repository:a:pull,push"], what="x")
    basic = "Basic " + base64.b64encode(b"user:pass").decode()
    assert scripted.seen == [
        ("GET", "/v2/a/tags/list", ""),
        ("GET", "/token?service=svc&scope=repository%3Aa%3Apull&scope=repository%3Aa%3Apull%2Cpush", basic),
        ("GET", "/v2/a/tags/list", "Bearer t0k"),
    ]


def test_a_second_401_is_not_answered_again(scripted: ScriptedServer) -> None:
    scripted.answers = [(401, {"WWW-Authenticate": 'Basic realm="r"'}, b""), (401, {}, b"")]
    with (
        _client(scripted.host, Credentials("user", "wrong")) as client,
        pytest.raises(RegistryError) as raised,
    ):
        client.request("GET", "/v2/", scopes=[], what="the image")
    assert str(raised.value) == f"unauthorized: {scripted.host} refused the credentials for the image"
    assert len(scripted.seen) == 2


@pytest.mark.parametrize(
    ("registry", "insecure", "plain"),
    [
        ("localhost:5000", (), True),
        ("127.0.0.1:5000", (), True),
        ("localhost", (), True),
        ("[::1]:5000", (), True),
        ("registry.lan:5000", (), False),
        ("registry.lan:5000", ("registry.lan:5000",), True),
        ("registry.lan:5000", ("registry.lan",), True),
        ("ghcr.io", ("registry.lan",), False),
    ],
)
def test_plain_http_only_for_loopback_and_named_registries(
    registry: str, insecure: tuple[str, ...], plain: bool
) -> None:
    assert uses_plain_http(registry, insecure) is plain


def test_docker_hub_is_served_by_registry_1_over_https() -> None:
    assert api_host("docker.io") == "registry-1.docker.io"
    with RegistryClient("docker.io", look_up_credentials=False) as client:
        assert client.base_url == "https://registry-1.docker.io"
        assert client.session.verify == system_ca_bundle()


def test_ca_bundle_comes_from_the_environment_then_the_system(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.setenv("SSL_CERT_FILE", "/custom/ca.pem")
    assert system_ca_bundle() == "/custom/ca.pem"
    monkeypatch.delenv("SSL_CERT_FILE")
    expected = (
        "/etc/ssl/certs/ca-certificates.crt" if Path("/etc/ssl/certs/ca-certificates.crt").is_file() else None
    )
    if expected is not None:
        assert system_ca_bundle() == expected


def test_a_certificate_the_system_does_not_trust_is_refused(tmp_path: Path) -> None:
    """TLS is verified by default: a self-signed registry fails with a message that says so."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=registry.test", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    host = f"127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        client = RegistryClient(host, look_up_credentials=False, retries=0)
        client.base_url = f"https://{host}"  # loopback would be plain http; force TLS to test it
        with client, pytest.raises(RegistryError) as raised:
            client.request("GET", "/v2/", scopes=[], what="x")
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    message = str(raised.value)
    assert message.startswith(f"TLS verification failed for {host}: ")
    assert message.endswith(f"(use --insecure-registry {host} only for a registry you trust)")


def test_registries_file_names_insecure_registries(no_registries_file: Path) -> None:
    assert configured_insecure_registries() == ()
    no_registries_file.write_text('{"insecure-registries": ["registry.lan:5000"]}')
    assert configured_insecure_registries() == ("registry.lan:5000",)
    with RegistryClient("registry.lan:5000", look_up_credentials=False) as client:
        assert client.base_url == "http://registry.lan:5000"
    no_registries_file.write_text('{"insecure-registries": "registry.lan"}')
    with pytest.raises(RegistryError) as raised:
        configured_insecure_registries()
    assert (
        str(raised.value) == f"{no_registries_file}: insecure-registries must be a list of host[:port] names"
    )


def test_ping_answers_the_challenge(scripted: ScriptedServer) -> None:
    scripted.answers = [
        (401, {"WWW-Authenticate": 'Basic realm="r"'}, b""),
        (200, {"Docker-Distribution-API-Version": "registry/2.0"}, b"{}"),
    ]
    with _client(scripted.host, Credentials("user", "pass")) as client:
        client.ping()
    assert [path for _, path, _ in scripted.seen] == ["/v2/", "/v2/"]


def test_ping_refuses_a_server_that_is_no_registry(scripted: ScriptedServer) -> None:
    scripted.answers = [(200, {"Content-Type": "text/html"}, b"<html>hello</html>")]
    with _client(scripted.host) as client, pytest.raises(RegistryError) as raised:
        client.ping()
    assert str(raised.value) == f"http://{scripted.host} does not answer like an OCI distribution registry"


def test_tokens_are_not_sent_to_another_host(scripted: ScriptedServer) -> None:
    scripted.answers = [
        (401, {"WWW-Authenticate": 'Basic realm="r"'}, b""),
        (200, {}, b"{}"),
        (200, {}, b"{}"),
    ]
    other_host_url = f"http://localhost:{scripted.host.rsplit(':', 1)[1]}/upload/1"
    with _client(scripted.host, Credentials("user", "pass")) as client:
        client.request("GET", "/v2/", scopes=[], what="x")
        client.request("GET", other_host_url, scopes=[], what="x")
    assert [(path, bool(auth)) for _, path, auth in scripted.seen] == [
        ("/v2/", False),
        ("/v2/", True),
        ("/upload/1", False),
    ]
