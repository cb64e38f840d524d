"""Names that hold one image per platform: reading and growing the store's OCI indexes.

A multi-platform build names an index. ``kiln import --platform`` grows one too: importing
an arm64 rootfs under a name that holds an amd64 image makes the name an index of both, so
``FROM name`` in a two-platform build finds each platform's base under one name (as a pulled
multi-platform image would). Importing for a platform the name already has replaces it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from builder.errors import StoreError
from builder.graph import Platform
from builder.registry.platforms import normalise
from builder.store.store import Store


def entry_platform(entry: dict[str, Any]) -> Platform:
    """The platform of an index entry (empty fields when it names none)."""
    offered = entry.get("platform") or {}
    return Platform(
        str(offered.get("os", "")), str(offered.get("architecture", "")), str(offered.get("variant", ""))
    )


def image_platform(store: Store, manifest_digest: str) -> Platform:
    """The platform an image's config declares."""
    manifest = store.manifest(manifest_digest)
    config = store.manifest(str(manifest["config"]["digest"]))
    return Platform(
        str(config.get("os", "")), str(config.get("architecture", "")), str(config.get("variant", ""))
    )


def platform_images(store: Store, digest: str) -> list[tuple[str, Platform]]:
    """Every (manifest digest, platform) a stored image or index holds, in index order."""
    entries = store.index_entries(digest)
    if entries is None:
        return [(digest, image_platform(store, digest))]
    return [(str(entry["digest"]), entry_platform(entry)) for entry in entries]


def add_platform_image(store: Store, name: str, manifest_digest: str, platform: Platform) -> str:
    """Name ``manifest_digest`` (an image for ``platform``) under ``name`` beside the images
    of other platforms the name already holds; return what the name now points at."""
    try:
        current = store.resolve(name)
    except StoreError:
        current = ""
    wanted = normalise(platform)
    kept = [
        (digest, offered)
        for digest, offered in (platform_images(store, current) if current else [])
        if normalise(offered) != wanted
    ]
    if not kept:
        store.tag(manifest_digest, name)
        return manifest_digest
    return store.put_index([*kept, (manifest_digest, platform)], name)


def index_document(
    store: Store, digest: str, describe: Callable[[str], Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """One ``describe(manifest_digest)`` document per platform of an index, each with its
    ``Platform`` text added (for ``kiln inspect``)."""
    documents: list[dict[str, Any]] = []
    for manifest_digest, platform in platform_images(store, digest):
        document = dict(describe(manifest_digest))
        document["Platform"] = str(platform)
        documents.append(document)
    return documents
