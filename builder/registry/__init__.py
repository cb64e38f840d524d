"""The registry client: pull and push over the OCI distribution API.

* :func:`pull_image` / :func:`push_image`: an image between a registry and the store;
* :func:`ensure_image`: what ``FROM`` needs (pull when missing; with ``--pull``, when changed),
  and :class:`PullingResolver`, the frontend's resolver built on it;
* :func:`resolve_digest`: the digest a registry serves for a reference now (``kiln pin``,
  ``--pull``);
* :class:`RegistryClient`: one registry's HTTP session with auth challenges and retries;
* :mod:`~builder.registry.credentials`: kiln's login file and docker's ``config.json``.
"""

from collections.abc import Sequence
from typing import TYPE_CHECKING

from builder.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from builder.registry.client import RegistryClient
    from builder.registry.credentials import Credentials, find_credentials, remove_login, save_login
    from builder.registry.platforms import host_platform, parse_platform
    from builder.registry.pull import ensure_image, pull_image
    from builder.registry.push import push_image
    from builder.registry.resolver import PullingResolver


def resolve_digest(ref: str, *, insecure: Sequence[str] = ()) -> str:
    """The manifest (or index) digest the registry holds for ``ref`` now, without pulling."""
    from builder.oci.reference import parse_reference
    from builder.registry.client import RegistryClient
    from builder.registry.manifests import head_manifest_digest

    reference = parse_reference(ref)
    with RegistryClient(reference.registry, insecure=insecure) as client:
        return head_manifest_digest(client, reference)


__all__ = [
    "Credentials",
    "PullingResolver",
    "RegistryClient",
    "ensure_image",
    "find_credentials",
    "host_platform",
    "parse_platform",
    "pull_image",
    "push_image",
    "remove_login",
    "resolve_digest",
    "save_login",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "RegistryClient": "client",
        "Credentials": "credentials",
        "find_credentials": "credentials",
        "remove_login": "credentials",
        "save_login": "credentials",
        "host_platform": "platforms",
        "parse_platform": "platforms",
        "ensure_image": "pull",
        "pull_image": "pull",
        "push_image": "push",
        "PullingResolver": "resolver",
    },
)
