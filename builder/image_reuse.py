"""A rebuild that makes the same image as before gets that image back, not a copy of it
that differs only in timestamps.

Every build stamps the image config's ``created`` and the history entries of its
config-only steps with the time it ran, so without this a fully cached rebuild would make a
new image id every second, and write a new config, manifest and name (eight ``fsync``\\ s)
for nothing. Docker's classic builder hands back the cached image itself (its "Created"
stays the first build's); kiln does the same: the image is remembered under the digest of
its config with every timestamp left out, and when a build's config has the same digest and
that image is still stored, the build names it instead of writing another.

``--no-cache`` always makes a new image. With ``SOURCE_DATE_EPOCH`` nothing is reused: the
timestamps are then the epoch the build was asked for, and two epochs are two images (one
epoch gives the same image anyway).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from builder.store.store import Store

#: The store's key/value namespace: timeless config digest → manifest digest.
NAMESPACE = "build-image"


def timeless_digest(config: Mapping[str, Any]) -> str:
    """The digest of an image config without its ``created`` times (image and history)."""
    shape = dict(config)
    shape.pop("created", None)
    shape["history"] = [
        {key: value for key, value in entry.items() if key != "created"}
        for entry in config.get("history", [])
    ]
    text = json.dumps(shape, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def stored_image(store: Store, timeless: str) -> str | None:
    """The manifest digest of the stored image remembered under ``timeless``, if it is still
    whole in the store (a prune may have taken it: the memory is dropped then)."""
    remembered = store.meta.get_value(NAMESPACE, timeless)
    if not isinstance(remembered, str):
        return None
    if store.meta.image(remembered) is not None and store.blobs.has(remembered):
        manifest = store.manifest(remembered)
        if store.blobs.has(str(manifest["config"]["digest"])):
            return remembered
    store.meta.delete_value(NAMESPACE, timeless)
    return None


def remember_image(store: Store, timeless: str, manifest_digest: str) -> None:
    store.meta.put_value(NAMESPACE, timeless, manifest_digest)
