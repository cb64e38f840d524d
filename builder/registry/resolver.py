"""An :class:`~builder.resolver.ImageResolver` that pulls: ``FROM`` a reference missing from
the store fetches it from its registry (and, with ``always_check``, as ``kiln build --pull``,
asks the registry whether the stored one is still current).

References the store already knows by name or id (``kiln import``, ``kiln load``, an earlier
build) resolve without any network access; only a reference that is not in the store, or
every reference under ``always_check``, goes to a registry. Each (reference, platform) is
resolved once per build, so every stage that names it sees one digest.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from builder.errors import StoreError, UsageError
from builder.events import EventSink, discard
from builder.graph import Platform
from builder.oci.reference import is_digest, parse_reference
from builder.registry.platforms import normalise
from builder.resolver import ResolvedImage
from builder.store import Store


class PullingResolver:
    """Resolves ``FROM`` references from the store, pulling what is missing."""

    def __init__(
        self,
        store: Store,
        *,
        always_check: bool = False,
        sink: EventSink = discard,
        insecure: Sequence[str] = (),
    ) -> None:
        self._store = store
        self._always_check = always_check
        self._sink = sink
        self._insecure = tuple(insecure)
        self._seen: dict[tuple[str, Platform], ResolvedImage] = {}
        self._lock = threading.Lock()

    def resolve(self, ref: str, platform: Platform) -> ResolvedImage:
        key = (ref, platform)
        with self._lock:
            if key not in self._seen:
                digest = self._digest(ref, platform)
                config = self._store.get_image(digest)[1].get("config") or {}
                self._seen[key] = ResolvedImage(
                    ref=ref, digest=digest, platform=platform, config=dict(config)
                )
            return self._seen[key]

    def _stored_for(self, ref: str, platform: Platform) -> bool:
        """Whether the stored name serves ``platform``: a name pulled for another platform
        (its ref records the platform) is pulled again for this one; imported and built
        names record none and are used as they are."""
        try:
            record = self._store.meta.ref(str(parse_reference(ref)))
        except UsageError:
            return True
        return record is None or record.platform in ("", str(normalise(platform)))

    def _digest(self, ref: str, platform: Platform) -> str:
        if is_digest(ref):
            return self._store.resolve_for(ref, platform)  # an image id names nothing a registry serves
        if not self._always_check:
            try:
                digest = self._store.resolve_for(ref, platform)
            except StoreError:
                digest = ""
            if digest and self._stored_for(ref, platform):
                return digest
        try:
            parse_reference(ref)
        except UsageError as err:
            raise StoreError(f"base image {ref!r} is not in the store and is not a valid reference") from err
        # The puller (HTTP client, manifest handling) loads only when a reference is missing
        # or must be checked: a build from stored images never needs it.
        from builder.registry.pull import ensure_image

        return ensure_image(
            self._store,
            ref,
            platform=platform,
            always_check=self._always_check,
            sink=self._sink,
            insecure=self._insecure,
        )
