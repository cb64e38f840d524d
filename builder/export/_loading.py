"""What ``load`` has verified and is about to add, and the one step that adds it.

Readers of both archive formats check every file against its digest while it is still in
staging, and only then hand a list of :class:`PendingImage` to :func:`commit`, so a bad
archive changes nothing in the store.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import field
from pathlib import Path
from typing import Any

from builder.errors import ImageFormatError, UsageError
from builder.lazyclasses import dataclass
from builder.oci.model import Manifest
from builder.oci.reference import Reference, parse_reference
from builder.oci.validate import image_problems
from builder.store.store import Store

_CHUNK = 1 << 20


@dataclass(frozen=True)
class StagedBlob:
    """A verified file in staging and the digest it is stored under."""

    path: Path
    digest: str


@dataclass
class PendingImage:
    """One image of an archive: its manifest, the names to give it, and its blobs."""

    manifest_json: bytes
    names: list[str]
    blobs: list[StagedBlob] = field(default_factory=list)


@dataclass(frozen=True)
class LoadedImage:
    """An image ``load`` added: its manifest digest and the names now pointing at it."""

    manifest_digest: str
    names: tuple[str, ...]


def file_digest(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            hasher.update(chunk)
    return "sha256:" + hasher.hexdigest()


def verify_file(path: Path, digest: str, what: str, size: int | None = None) -> None:
    """Raise :class:`ImageFormatError` unless ``path`` exists and hashes to ``digest``."""
    if not path.is_file():
        raise ImageFormatError(f"the archive lacks {what} ({digest})")
    if size is not None and path.stat().st_size != size:
        raise ImageFormatError(f"{what} is corrupt: it has {path.stat().st_size} bytes, {size} were expected")
    actual = file_digest(path)
    if actual != digest:
        raise ImageFormatError(f"{what} is corrupt: its digest is {actual}, {digest} was expected")


def check_consistent(image: PendingImage) -> None:
    """Refuse an image whose manifest and config disagree (layer count, media types, sizes),
    with every problem :func:`builder.oci.validate.image_problems` finds."""
    manifest = Manifest.from_json(image.manifest_json)
    config_path = next((blob.path for blob in image.blobs if blob.digest == manifest.config.digest), None)
    if config_path is None:
        raise ImageFormatError(f"the archive lacks the config {manifest.config.digest}")
    problems = image_problems(manifest, config_path.read_bytes())
    if problems:
        raise ImageFormatError("inconsistent image in the archive:\n  " + "\n  ".join(problems))


def commit(store: Store, images: Sequence[PendingImage]) -> list[LoadedImage]:
    """Check every image, then copy the verified blobs into the store, record the manifests
    and set their names."""
    for image in images:
        check_consistent(image)
    loaded: list[LoadedImage] = []
    with store.writing():
        for image in images:
            for blob in image.blobs:
                if not store.blobs.has(blob.digest):
                    with blob.path.open("rb") as stream:
                        store.blobs.put_stream(stream, expected_digest=blob.digest)
            digest = store.put_manifest(image.manifest_json)
            for name in image.names:
                store.tag(digest, name)
            loaded.append(LoadedImage(digest, tuple(image.names)))
    return loaded


def parse_json_object(payload: bytes, what: str) -> dict[str, Any]:
    """A JSON object from an archive; anything else is an :class:`ImageFormatError`."""
    try:
        document = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as err:
        raise ImageFormatError(f"{what} is not valid JSON: {err}") from err
    if not isinstance(document, dict):
        raise ImageFormatError(f"{what} is not a JSON object")
    return document


def reference_or_none(text: str) -> Reference | None:
    """The parsed name, or ``None`` when ``text`` is an image id or not a valid name."""
    if not text:
        return None
    try:
        return parse_reference(text)
    except UsageError:
        return None
