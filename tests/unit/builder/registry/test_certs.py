"""docker's certs.d rules: which files of a registry's directory count, and how."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.errors import RegistryError
from builder.registry.certs import DEFAULT_CERTS_DIR, certs_dir, host_certs
from builder.registry.client import uses_plain_http


@pytest.fixture
def certs_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "certs.d"
    monkeypatch.setenv("KILN_CERTS_DIR", str(root))
    return root


def test_the_directory_is_dockers_unless_the_variable_names_another(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KILN_CERTS_DIR", raising=False)
    assert certs_dir() == Path(DEFAULT_CERTS_DIR) == Path("/etc/docker/certs.d")
    monkeypatch.setenv("KILN_CERTS_DIR", "/elsewhere")
    assert certs_dir() == Path("/elsewhere")


def test_a_registry_without_a_directory_has_no_certs(certs_root: Path) -> None:
    (certs_root / "registry.lan").mkdir(parents=True)
    assert host_certs("registry.lan:5000") is None  # the port is part of the name


def test_crt_files_are_cas_and_the_first_cert_key_pair_is_the_client_certificate(certs_root: Path) -> None:
    directory = certs_root / "registry.lan:5000"
    directory.mkdir(parents=True)
    for name in ("b.crt", "a.crt", "z.cert", "z.key", "m.cert", "m.key", "notes.txt"):
        (directory / name).write_text("x")

    certs = host_certs("registry.lan:5000")

    assert certs is not None
    assert certs.directory == directory
    assert certs.ca_files == (directory / "a.crt", directory / "b.crt")
    assert certs.client_pair == (directory / "m.cert", directory / "m.key")


def test_a_key_without_its_certificate_is_an_error(certs_root: Path) -> None:
    directory = certs_root / "registry.lan"
    directory.mkdir(parents=True)
    (directory / "client.key").write_text("x")
    with pytest.raises(RegistryError) as raised:
        host_certs("registry.lan")
    assert str(raised.value) == f"{directory}: missing client certificate client.cert for key client.key"


def test_loopback_with_a_certs_directory_speaks_tls() -> None:
    assert uses_plain_http("127.0.0.1:5000", ()) is True
    assert uses_plain_http("127.0.0.1:5000", (), has_certs=True) is False
    assert uses_plain_http("127.0.0.1:5000", ("127.0.0.1:5000",), has_certs=True) is True


def test_a_registrys_certificates_serve_its_own_host_only(certs_root: Path) -> None:
    """Its token server and the places it redirects downloads to keep the system's trust."""
    from builder.registry.certs import ContextAdapter
    from builder.registry.client import RegistryClient, system_ca_bundle

    bundle = system_ca_bundle()
    if not isinstance(bundle, str):
        pytest.skip("no system CA bundle file to stand in for a registry's CA")
    directory = certs_root / "registry.lan:5000"
    directory.mkdir(parents=True)
    (directory / "ca.crt").write_bytes(Path(bundle).read_bytes())
    client = RegistryClient("registry.lan:5000", look_up_credentials=False)
    try:
        assert isinstance(client.session.get_adapter("https://registry.lan:5000/v2/"), ContextAdapter)
        for elsewhere in ("https://auth.example.com/token", "https://cdn.example.com/blob"):
            assert not isinstance(client.session.get_adapter(elsewhere), ContextAdapter)
    finally:
        client.session.close()
