"""OCI archives: a tar of an OCI image layout (``oci-layout``, ``index.json``, ``blobs/sha256``).

Written as ``docker save --format oci`` and BuildKit's OCI exporter write them: each image is
one entry of ``index.json`` annotated with ``io.containerd.image.name`` (the full name) and
``org.opencontainers.image.ref.name`` (the tag), which is what ``skopeo``'s
``oci-archive:FILE:TAG`` and ``umoci --image DIR:TAG`` look up. Blobs shared by several
images are written once. Layers the store keeps uncompressed (built ones) leave compressed,
gzip unless asked otherwise, so the archive's manifests may name other layer blobs than the
store's (the image ids stay). Reading accepts any OCI layout: nested indexes are followed to the
manifest for this machine's platform, and every blob is checked against its digest.
"""

from __future__ import annotations

import json
import platform
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from builder.errors import ImageFormatError, StoreError
from builder.export._loading import (
    PendingImage,
    StagedBlob,
    parse_json_object,
    reference_or_none,
    verify_file,
)
from builder.export._tarwrite import add_blob, add_bytes, add_directory
from builder.export.outgoing import OutgoingImages
from builder.oci import mediatypes
from builder.store.blobs import digest_hex
from builder.store.store import ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, Store

if TYPE_CHECKING:
    from builder.layers.compression import Compression

_MAX_INDEX_DEPTH = 4
_GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}


def write_oci_archive(
    store: Store, names: Sequence[str], out: BinaryIO, *, compression: Compression = "gzip"
) -> None:
    """Write the images ``names`` refer to (names, ids or digests) as one OCI archive, their
    uncompressed layers compressed with ``compression`` (see :mod:`builder.export.outgoing`)."""
    outgoing = OutgoingImages(store, compression)
    entries: list[dict[str, Any]] = []
    blob_digests: list[str] = []
    for name in names:
        manifest_digest = outgoing.digest(store.resolve(name))
        manifest = outgoing.json(manifest_digest)
        entry: dict[str, Any] = {
            "mediaType": str(manifest.get("mediaType", mediatypes.OCI_MANIFEST)),
            "digest": manifest_digest,
            "size": outgoing.size(manifest_digest),
        }
        reference = reference_or_none(name)
        if reference is not None and reference.tag is not None:
            entry["annotations"] = {
                ANNOTATION_IMAGE_NAME: str(reference),
                ANNOTATION_REF_NAME: reference.tag,
            }
        entries.append(entry)
        needed = [manifest_digest]
        # A multi-platform image: the index, then each platform's manifest, config, layers.
        is_index = manifest.get("mediaType") in mediatypes.INDEX_TYPES or "manifests" in manifest
        children = manifest.get("manifests", []) if is_index else None
        for image in [manifest] if children is None else [outgoing.json(c["digest"]) for c in children]:
            needed += [image["config"]["digest"]] + [layer["digest"] for layer in image.get("layers", [])]
        needed += [str(child["digest"]) for child in children or []]
        blob_digests += [digest for digest in needed if digest not in blob_digests]
    index = {"schemaVersion": 2, "mediaType": mediatypes.OCI_INDEX, "manifests": entries}
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as archive:
        add_bytes(archive, "oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
        add_bytes(archive, "index.json", json.dumps(index, indent=2).encode())
        add_directory(archive, "blobs/")
        add_directory(archive, "blobs/sha256/")
        for digest in blob_digests:
            member = f"blobs/sha256/{digest_hex(digest)}"
            rewritten = outgoing.documents.get(digest)
            if rewritten is not None:
                add_bytes(archive, member, rewritten)
            else:
                add_blob(archive, member, store.blobs, digest)


def read_oci_layout(staging: Path) -> list[PendingImage]:
    """The images of the OCI layout in ``staging``, every blob verified."""
    index = _load_json(staging / "index.json", "index.json")
    pending: list[PendingImage] = []
    for entry in index.get("manifests", []):
        name = _name_of(entry)
        manifest_json, blobs = _resolve_manifest(staging, entry, depth=0)
        pending.append(PendingImage(manifest_json, [name] if name else [], blobs))
    if not pending:
        raise ImageFormatError("the archive's index.json lists no images")
    return pending


def _resolve_manifest(staging: Path, descriptor: Any, depth: int) -> tuple[bytes, list[StagedBlob]]:
    if not isinstance(descriptor, dict) or not isinstance(descriptor.get("digest"), str):
        raise ImageFormatError("index.json has an entry without a digest")
    digest = descriptor["digest"]
    path = _blob_path(staging, digest)
    verify_file(path, digest, f"manifest {digest}", descriptor.get("size"))
    payload = path.read_bytes()
    document = parse_json_object(payload, f"manifest {digest}")
    media_type = document.get("mediaType", descriptor.get("mediaType", ""))
    blobs = [StagedBlob(path, digest)]
    if media_type in mediatypes.INDEX_TYPES or "manifests" in document:
        if depth >= _MAX_INDEX_DEPTH:
            raise ImageFormatError("image indexes nest too deeply")
        child = _pick_platform(document.get("manifests", []))
        child_json, child_blobs = _resolve_manifest(staging, child, depth + 1)
        return child_json, child_blobs
    config = document.get("config")
    if not isinstance(config, dict):
        raise ImageFormatError(f"manifest {digest} has no config")
    described = [config, *document.get("layers", [])]
    for item in described:
        item_digest = str(item.get("digest", ""))
        item_path = _blob_path(staging, item_digest)
        verify_file(item_path, item_digest, f"blob {item_digest}", item.get("size"))
        blobs.append(StagedBlob(item_path, item_digest))
    return payload, blobs


def _pick_platform(manifests: list[Any]) -> Any:
    """This machine's linux manifest from an index, else the first one."""
    if not manifests:
        raise ImageFormatError("an image index in the archive lists no manifests")
    architecture = _GO_ARCH.get(platform.machine(), platform.machine())
    for candidate in manifests:
        wanted = candidate.get("platform", {}) if isinstance(candidate, dict) else {}
        if wanted.get("os") == "linux" and wanted.get("architecture") == architecture:
            return candidate
    return manifests[0]


def _name_of(entry: Any) -> str | None:
    annotations = entry.get("annotations", {}) if isinstance(entry, dict) else {}
    for key in (ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME):
        reference = reference_or_none(str(annotations.get(key, "")))
        if reference is not None and (key == ANNOTATION_IMAGE_NAME or ":" in annotations[key]):
            return str(reference)
    return None


def _blob_path(staging: Path, digest: str) -> Path:
    try:
        return staging / "blobs" / "sha256" / digest_hex(digest)
    except StoreError as err:
        raise ImageFormatError(f"the archive names a malformed digest {digest!r}") from err


def _load_json(path: Path, what: str) -> dict[str, Any]:
    if not path.is_file():
        raise ImageFormatError(f"the archive lacks {what}")
    return parse_json_object(path.read_bytes(), what)
