"""A registry with a private CA: trusted through a docker-style ``certs.d`` directory.

The real registry is served over TLS with a certificate for ``127.0.0.1`` signed by a CA
made in the test (with ``openssl``); ``KILN_CERTS_DIR`` points at the test's ``certs.d``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from builder.errors import RegistryError
from builder.registry import host_platform, pull_image, push_image
from builder.store import Store
from tests.fixtures.registry_images import import_busybox
from tests.fixtures.registry_servers import RegistryTls, make_registry_tls

if TYPE_CHECKING:
    from tests.fixtures.registry import RunningRegistry

pytest_plugins = ["tests.fixtures.registry"]
pytestmark = pytest.mark.usefixtures("registry_isolation")


@pytest.fixture
def tls_files(tmp_path: Path) -> RegistryTls:
    from tests.fixtures.registry import require_tool

    require_tool("openssl")
    return make_registry_tls(tmp_path / "tls")


@pytest.fixture
def tls_registry(tmp_path: Path, tls_files: RegistryTls) -> Iterator[RunningRegistry]:
    from tests.fixtures.registry import start_registry

    with start_registry(tmp_path / "registry", tls=tls_files) as running:
        yield running


@pytest.fixture
def mutual_tls(tmp_path: Path) -> Iterator[tuple[RunningRegistry, RegistryTls]]:
    """A registry that also wants a client certificate signed by its CA."""
    from tests.fixtures.registry import require_tool, start_registry

    require_tool("openssl")
    files = make_registry_tls(tmp_path / "tls", require_client_cert=True)
    with start_registry(tmp_path / "registry", tls=files) as running:
        yield running, files


def _host_dir(tmp_path: Path, registry: RunningRegistry) -> Path:
    directory = tmp_path / "certs.d" / registry.host
    directory.mkdir(parents=True)
    return directory


def test_push_and_pull_succeed_with_the_ca_in_the_certs_directory(
    tmp_path: Path, tls_registry: RunningRegistry, tls_files: RegistryTls, store: Store, fresh_store: Store
) -> None:
    shutil.copy(tls_files.ca_cert, _host_dir(tmp_path, tls_registry) / "ca.crt")
    ref = f"{tls_registry.host}/kiln/busybox:1"
    local_digest = import_busybox(store, ref)

    assert push_image(store, ref) == local_digest
    assert pull_image(fresh_store, ref, platform=host_platform()) == local_digest
    assert ("PUT", "/v2/kiln/busybox/manifests/1", 201) in tls_registry.requests()


def test_without_the_ca_the_error_names_the_host_and_the_certs_directory(
    tmp_path: Path, tls_registry: RunningRegistry, store: Store
) -> None:
    host_dir = _host_dir(tmp_path, tls_registry)  # there, so loopback is spoken to over TLS
    ref = f"{tls_registry.host}/kiln/busybox:1"
    import_busybox(store, ref)

    with pytest.raises(RegistryError) as raised:
        push_image(store, ref)

    message = str(raised.value)
    assert message.startswith(f"TLS verification failed for {tls_registry.host}: ")
    assert "certificate verify failed" in message
    assert message.endswith(
        f"; a private CA that signed its certificate goes in {host_dir}/ca.crt "
        f"(use --insecure-registry {tls_registry.host} only for a registry you trust)"
    )
    assert tls_registry.requests() == []


def test_a_client_certificate_pair_is_presented(
    tmp_path: Path, mutual_tls: tuple[RunningRegistry, RegistryTls], store: Store
) -> None:
    registry, files = mutual_tls
    host_dir = _host_dir(tmp_path, registry)
    shutil.copy(files.ca_cert, host_dir / "ca.crt")
    ref = f"{registry.host}/kiln/busybox:1"
    local_digest = import_busybox(store, ref)

    with pytest.raises(RegistryError) as raised:
        push_image(store, ref)
    message = str(raised.value)
    assert message.startswith(f"TLS verification failed for {registry.host}: ")
    assert message.endswith(
        f"; a client certificate it accepts goes in {host_dir}/client.cert and client.key "
        f"(use --insecure-registry {registry.host} only for a registry you trust)"
    )

    shutil.copy(files.client_cert, host_dir / "client.cert")
    shutil.copy(files.client_key, host_dir / "client.key")
    assert push_image(store, ref) == local_digest


def test_a_client_certificate_without_its_key_is_an_error(
    tmp_path: Path, tls_registry: RunningRegistry, tls_files: RegistryTls, store: Store
) -> None:
    host_dir = _host_dir(tmp_path, tls_registry)
    shutil.copy(tls_files.client_cert, host_dir / "client.cert")

    with pytest.raises(RegistryError) as raised:
        pull_image(store, f"{tls_registry.host}/kiln/busybox:1", platform=host_platform())
    assert str(raised.value) == (
        f"{host_dir}: missing key client.key for client certificate client.cert "
        "(CA certificates must use the extension .crt)"
    )
