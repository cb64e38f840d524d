"""The :class:`~builder.resolver.ImageResolver` the builder gives the Dockerfile frontend:
base images looked up in the local store."""

from __future__ import annotations

from builder.errors import StoreError
from builder.graph import Platform
from builder.resolver import ResolvedImage
from builder.store.store import Store


class StoreResolver:
    """Resolves ``FROM`` references against the images in a store.

    Results are remembered per reference so a name used by several stages resolves to one
    digest for the whole build, even if it is re-tagged meanwhile.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._seen: dict[tuple[str, Platform], ResolvedImage] = {}

    def resolve(self, ref: str, platform: Platform) -> ResolvedImage:
        key = (ref, platform)
        if key not in self._seen:
            try:
                digest = self._store.resolve_for(ref, platform)
            except StoreError as err:
                raise StoreError(
                    f"base image {ref!r} is not in the store: import it (kiln import) or load it (kiln load)"
                ) from err
            image_config = self._store.get_image(digest)[1]
            inner = image_config.get("config") or {}
            self._seen[key] = ResolvedImage(ref=ref, digest=digest, platform=platform, config=dict(inner))
        return self._seen[key]
