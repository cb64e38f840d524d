"""Fetching manifests and indexes by tag or digest, verified against what was asked for.

A manifest fetched by digest must hash to that digest; one fetched by tag must hash to the
``Docker-Content-Digest`` the registry announces, when it announces one. Manifests larger
than 4 MiB are refused, as containerd does, so a hostile registry cannot exhaust memory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from builder.errors import ImageFormatError, RegistryError
from builder.lazyclasses import dataclass
from builder.oci import mediatypes
from builder.oci.digest import sha256_digest
from builder.oci.reference import Reference

if TYPE_CHECKING:
    # requests loads only when a registry is talked to (a cached build never does).
    from builder.registry.client import RegistryClient

MANIFEST_ACCEPT = ", ".join(
    (
        mediatypes.OCI_INDEX,
        mediatypes.DOCKER_MANIFEST_LIST,
        mediatypes.OCI_MANIFEST,
        mediatypes.DOCKER_MANIFEST,
    )
)
MAX_MANIFEST_BYTES = 4 << 20
_SCHEMA1_TYPES = frozenset(
    {
        "application/vnd.docker.distribution.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
    }
)


@dataclass(frozen=True)
class FetchedManifest:
    """A manifest or index exactly as the registry sent it, with its verified digest."""

    content: bytes
    media_type: str
    digest: str


def manifest_path(reference: Reference, tag_or_digest: str | None = None) -> str:
    """``/v2/<repo>/manifests/<tag or digest>``; a digest wins over the tag, as docker does."""
    target = tag_or_digest or reference.digest or reference.tag or "latest"
    return f"/v2/{reference.repository}/manifests/{target}"


def fetch_manifest(
    client: RegistryClient, reference: Reference, digest: str | None = None
) -> FetchedManifest:
    """GET the manifest of ``reference`` (or of ``digest`` in its repository), verified."""
    from builder.registry.client import pull_scope

    wanted_digest = digest or reference.digest
    what = f"{reference.name}@{digest}" if digest else str(reference)
    response = client.request(
        "GET",
        manifest_path(reference, digest),
        scopes=[pull_scope(reference.repository)],
        what=what,
        headers={"Accept": MANIFEST_ACCEPT},
        stream=True,
    )
    with response:
        content = response.raw.read(MAX_MANIFEST_BYTES + 1, decode_content=True)
        announced = response.headers.get("Docker-Content-Digest", "")
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip()
    if len(content) > MAX_MANIFEST_BYTES:
        raise RegistryError(f"the manifest of {what} is larger than {MAX_MANIFEST_BYTES} bytes")
    actual = sha256_digest(content)
    if wanted_digest is not None and actual != wanted_digest:
        raise RegistryError(f"the manifest {client.registry} sent for {what} has digest {actual}; refused")
    if wanted_digest is None and announced and announced != actual:
        raise RegistryError(
            f"the manifest {client.registry} sent for {what} hashes to {actual}, "
            f"not to the {announced} it announced; refused"
        )
    if content_type in _SCHEMA1_TYPES:
        raise RegistryError(f"{what} has a Docker schema 1 manifest, which kiln does not support")
    return FetchedManifest(content, content_type, actual)


def head_manifest_digest(client: RegistryClient, reference: Reference) -> str:
    """The digest the registry holds for ``reference`` now (HEAD, falling back to GET)."""
    from builder.registry.client import pull_scope

    response = client.request(
        "HEAD",
        manifest_path(reference),
        scopes=[pull_scope(reference.repository)],
        what=str(reference),
        headers={"Accept": MANIFEST_ACCEPT},
    )
    with response:
        announced = response.headers.get("Docker-Content-Digest", "")
    if announced.startswith("sha256:"):
        return announced
    return fetch_manifest(client, reference).digest


def check_media_type(fetched: FetchedManifest, what: str) -> None:
    """Refuse documents that are neither an image manifest nor an index."""
    known = mediatypes.MANIFEST_TYPES | mediatypes.INDEX_TYPES
    if fetched.media_type and fetched.media_type not in known and fetched.media_type != "application/json":
        raise ImageFormatError(f"{what}: unsupported manifest media type {fetched.media_type}")
