"""Per-registry TLS material from a docker-style ``certs.d`` directory.

docker reads ``/etc/docker/certs.d/<host[:port]>/`` for each registry, the directory named
exactly as the registry is in references (``registry.lan:5000``, not ``registry.lan`` for
port 5000). kiln follows the same rules, so one directory serves both:

- every ``*.crt`` file holds CA certificates trusted for that registry, in addition to the
  system's CAs (as docker does on Linux);
- every ``NAME.cert`` is a client certificate whose key is ``NAME.key``; one without the
  other is an error, as in docker. Files are read in name order; requests presents one
  client certificate, so the first pair is the one used.

The directory is ``$KILN_CERTS_DIR`` when set (tests, or a user without access to
``/etc/docker``), else ``/etc/docker/certs.d``. A registry with a directory there is spoken
to over TLS even on loopback, where kiln otherwise uses plain http: whoever made the
directory runs that registry with TLS.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import Any

from requests.adapters import HTTPAdapter

from builder.errors import RegistryError
from builder.lazyclasses import dataclass

CERTS_DIR_VARIABLE = "KILN_CERTS_DIR"
DEFAULT_CERTS_DIR = "/etc/docker/certs.d"


@dataclass(frozen=True)
class HostCerts:
    """What a registry's ``certs.d`` directory holds: extra CAs and a client certificate."""

    directory: Path
    ca_files: tuple[Path, ...]
    client_pair: tuple[Path, Path] | None


def certs_dir() -> Path:
    """``$KILN_CERTS_DIR``, else docker's ``/etc/docker/certs.d``."""
    return Path(os.environ.get(CERTS_DIR_VARIABLE) or DEFAULT_CERTS_DIR)


def host_certs(registry: str) -> HostCerts | None:
    """The TLS material for ``registry`` (``host[:port]``), or None when it has no directory."""
    directory = certs_dir() / registry
    try:
        names = sorted(entry.name for entry in os.scandir(directory) if entry.is_file())
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as err:
        raise RegistryError(f"cannot read the certificates for {registry} in {directory}: {err}") from err
    ca_files = tuple(directory / name for name in names if name.endswith(".crt"))
    pairs: list[tuple[Path, Path]] = []
    for name in names:
        if name.endswith(".cert"):
            key = name.removesuffix(".cert") + ".key"
            if key not in names:
                raise RegistryError(
                    f"{directory}: missing key {key} for client certificate {name} "
                    "(CA certificates must use the extension .crt)"
                )
            pairs.append((directory / name, directory / key))
        elif name.endswith(".key") and name.removesuffix(".key") + ".cert" not in names:
            raise RegistryError(
                f"{directory}: missing client certificate {name.removesuffix('.key')}.cert for key {name}"
            )
    return HostCerts(directory, ca_files, pairs[0] if pairs else None)


def tls_context(certs: HostCerts, system_bundle: str | bool) -> ssl.SSLContext:
    """A verifying context trusting the system's CAs and the directory's, presenting its
    client certificate when it has one."""
    context = ssl.create_default_context(cafile=context_bundle(system_bundle))
    try:
        for ca_file in certs.ca_files:
            context.load_verify_locations(cafile=str(ca_file))
        if certs.client_pair is not None:
            certificate, key = certs.client_pair
            context.load_cert_chain(str(certificate), str(key))
    except (OSError, ssl.SSLError) as err:
        raise RegistryError(f"cannot use the certificates in {certs.directory}: {err}") from err
    return context


class ContextAdapter(HTTPAdapter):
    """An adapter whose https connections use one ``SSLContext`` (requests itself takes only
    a single CA bundle file, and would need the CAs merged into one)."""

    def __init__(self, context: ssl.SSLContext, **kwargs: Any) -> None:
        self._context = context
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = self._context
        super().init_poolmanager(*args, **kwargs)


def context_bundle(system_bundle: str | bool) -> str:
    """The CA bundle path ``session.verify`` holds beside a :class:`ContextAdapter`: the
    context already trusts it, and a path (unlike True) keeps requests from replacing the
    adapter's context with its own."""
    return system_bundle if isinstance(system_bundle, str) else _certifi_bundle()


def tls_failure_message(registry: str, reason: str) -> str:
    """What a failed TLS handshake with ``registry`` says: where its CA (when its
    certificate was not trusted) or a client certificate (when the registry refused ours,
    or that none was presented) goes, and the insecure way out for a registry one trusts."""
    directory = certs_dir() / registry
    if "certificate verify failed" in reason.lower():
        hint = f"a private CA that signed its certificate goes in {directory}/ca.crt"
    else:
        hint = f"a client certificate it accepts goes in {directory}/client.cert and client.key"
    return (
        f"TLS verification failed for {registry}: {reason}; {hint} "
        f"(use --insecure-registry {registry} only for a registry you trust)"
    )


def _certifi_bundle() -> str:
    from requests.utils import DEFAULT_CA_BUNDLE_PATH

    return str(DEFAULT_CA_BUNDLE_PATH)
