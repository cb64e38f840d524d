"""``kiln commit``: a container's writable layer becomes the top layer of a new image.

As ``docker commit`` does: the new image is the container's image plus one layer holding
the writable layer's changes (deletions as OCI whiteouts, an opaque directory as its
marker), even when nothing changed; its config is the image's with the container's own
settings (Cmd, Env, WorkingDir, User as the container ran) and then the ``--change``
lines applied; one history entry records the container's command, the comment and the
author. The container itself is left as it was.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, BinaryIO

from builder.containers.lifecycle import image_documents, upper_dir
from builder.containers.records import ContainerRecord
from builder.errors import StoreError
from builder.export.config_changes import apply_change
from builder.imagestate import utc_timestamp
from builder.layers import LayerDescriptor, write_layer
from builder.lazyclasses import dataclass
from builder.store.store import Store, StoredLayer


@dataclass(frozen=True)
class CommitOptions:
    """``kiln commit``'s flags: the history comment, the author, ``--change`` lines."""

    message: str = ""
    author: str = ""
    changes: Sequence[str] = ()


def committed_config(
    base_config: dict[str, Any], record: ContainerRecord, options: CommitOptions, created: str
) -> dict[str, Any]:
    """The new image's config (without ``rootfs``, which the store fills in)."""
    config: dict[str, Any] = json.loads(json.dumps(base_config))
    inner: dict[str, Any] = dict(config.get("config") or {})
    inner["Cmd"] = list(record.cmd) if record.cmd else None
    if not inner["Cmd"]:
        inner.pop("Cmd")
    inner["Env"] = list(record.env)
    if record.working_dir != "/" or inner.get("WorkingDir"):
        inner["WorkingDir"] = record.working_dir
    if record.user or inner.get("User"):
        inner["User"] = record.user
    for line in options.changes:
        apply_change(inner, line)
    config["config"] = inner
    config["created"] = created
    if options.author:
        config["author"] = options.author
    entry: dict[str, Any] = {"created": created, "created_by": " ".join(record.argv)}
    if options.author:
        entry["author"] = options.author
    if options.message:
        entry["comment"] = options.message
    config["history"] = [*(config.get("history") or []), entry]
    config.pop("rootfs", None)
    return config


def commit_container(store: Store, record: ContainerRecord, name: str | None, options: CommitOptions) -> str:
    """Write the container's changes as a layer, record the new image; its manifest digest."""
    upper = upper_dir(store, record.id)
    if not upper.is_dir():
        raise StoreError(f"container {record.name} has no writable layer at {upper}")
    manifest, base_config = image_documents(store, record.image_digest)
    layers = store.layers(manifest, base_config)
    with store.lease() as lease:
        described: list[LayerDescriptor] = []

        def fill(out: BinaryIO) -> None:
            # Stored uncompressed, like a built layer: compressed only where it leaves the store.
            described.append(write_layer(upper, out, compression="none"))

        with store.writing():
            info = store.blobs.put_from_writer(fill)
            lease.add_blob(info.digest)
        layer = StoredLayer(info.digest, described[0].diff_id, info.size, described[0].media_type)
        config = committed_config(base_config, record, options, utc_timestamp())
        return store.put_image(config, [*layers, layer], name)
