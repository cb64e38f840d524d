"""How a frontend learns about base images without knowing where they come from.

The Dockerfile frontend needs a base image's config to expand ``WORKDIR $HOME`` or to find
ONBUILD triggers. The builder implements this protocol over its store (and a registry);
unit tests give the frontend a resolver of their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field
from typing import Protocol

from builder.graph import Platform
from builder.lazyclasses import dataclass


@dataclass(frozen=True)
class ResolvedImage:
    """A base image as the frontend sees it.

    ``config`` is the OCI image config's ``config`` object (Env, Cmd, WorkingDir, User,
    OnBuild, ...); ``digest`` the manifest digest that the cache keys on.
    """

    ref: str
    digest: str
    platform: Platform
    config: Mapping[str, object] = field(default_factory=dict)


class ImageResolver(Protocol):
    """Reference + platform → image config. Raises ``KilnError`` when the image is unknown."""

    def resolve(self, ref: str, platform: Platform) -> ResolvedImage: ...


class EmptyResolver:
    """Every image has an empty config: for parsing without a store (``kiln debug``)."""

    def resolve(self, ref: str, platform: Platform) -> ResolvedImage:
        return ResolvedImage(ref=ref, digest="", platform=platform, config={})
