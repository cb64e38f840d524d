"""Docker archives: what ``docker save`` writes and ``docker load`` reads.

Layout written (the classic one every docker version loads): ``manifest.json`` (a list of
``{"Config", "RepoTags", "Layers"}``), ``repositories`` (name → tag → top layer directory),
the config as ``<config hex>.json`` and each layer uncompressed as ``<diff id hex>/layer.tar``,
shared layers once. Reading also accepts docker 25's layout (paths under ``blobs/sha256``)
and compressed layer files; the config must hash to its name when its name is a digest, and
every layer must unpack to the diff id the config lists, or nothing is loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO, cast

from builder.durable import TEMP_PREFIX
from builder.errors import ImageFormatError
from builder.export._loading import (
    PendingImage,
    StagedBlob,
    file_digest,
    parse_json_object,
    reference_or_none,
)
from builder.export._tarwrite import add_blob, add_bytes, add_directory, add_file, add_stream
from builder.layers.compression import open_decompressed
from builder.oci import mediatypes
from builder.oci.digest import HashingReader
from builder.oci.reference import parse_reference
from builder.store.blobs import digest_hex
from builder.store.store import Store

_CHUNK = 1 << 20
_HEX_NAME = re.compile(r"(?:.*/)?([0-9a-f]{64})(?:\.json)?")


def write_docker_archive(store: Store, names: Sequence[str], out: BinaryIO) -> None:
    """Write the images ``names`` refer to as one ``docker load``-able archive."""
    manifest_entries: list[dict[str, Any]] = []
    repositories: dict[str, dict[str, str]] = {}
    config_files: dict[str, str] = {}
    layer_blobs: dict[str, tuple[str, str]] = {}
    for name, image_ref in _platform_images(store, names):
        manifest, config = store.get_image(image_ref)
        layers = store.layers(manifest, config)
        config_digest = str(manifest["config"]["digest"])
        config_files[f"{digest_hex(config_digest)}.json"] = config_digest
        layer_paths = []
        for layer in layers:
            layer_path = f"{digest_hex(layer.diff_id)}/layer.tar"
            layer_blobs.setdefault(layer_path, (layer.digest, layer.diff_id))
            layer_paths.append(layer_path)
        repo_tags: list[str] = []
        reference = reference_or_none(name) if name else None
        if reference is not None and reference.tag is not None and reference.digest is None:
            repo_tags.append(reference.familiar())
            if layer_paths:
                top = layer_paths[-1].split("/")[0]
                repositories.setdefault(reference.familiar_name(), {})[reference.tag] = top
        manifest_entries.append(
            {"Config": f"{digest_hex(config_digest)}.json", "RepoTags": repo_tags, "Layers": layer_paths}
        )
    scratch = store.root / f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(8)}"
    scratch.mkdir(mode=0o700)
    try:
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as archive:
            for file_name, config_digest in config_files.items():
                add_blob(archive, file_name, store.blobs, config_digest)
            for layer_path, (blob_digest, diff_id) in layer_blobs.items():
                add_directory(archive, layer_path.split("/")[0] + "/")
                if blob_digest == diff_id:  # stored uncompressed (a built layer): it is the tar
                    _add_verified_layer(archive, layer_path, store, blob_digest, diff_id)
                    continue
                uncompressed = _uncompressed_layer(store, blob_digest, diff_id, scratch)
                add_file(archive, layer_path, uncompressed)
                uncompressed.unlink()
            add_bytes(archive, "manifest.json", json.dumps(manifest_entries).encode())
            if repositories:
                add_bytes(archive, "repositories", json.dumps(repositories).encode())
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _add_verified_layer(archive: tarfile.TarFile, name: str, store: Store, digest: str, diff_id: str) -> None:
    """An uncompressed layer copied into the archive, checked against its diff id on the way
    (as a compressed one is, by decompressing it): a damaged blob never leaves the store
    unnoticed. The caller writes the archive beside its destination and renames it only when
    whole, so a failure here leaves nothing."""
    with store.blobs.open(digest) as stream:
        reader = HashingReader(stream)
        add_stream(archive, name, cast(BinaryIO, reader), store.blobs.size(digest))
    if reader.digest() != diff_id:
        raise ImageFormatError(f"stored layer {diff_id} does not match its digest: the store is damaged")


def _platform_images(store: Store, names: Sequence[str]) -> list[tuple[str, str]]:
    """(name, image) pairs: a multi-platform name gives one entry per platform image, the
    name going to this machine's platform only (a docker name holds one image)."""
    pairs: list[tuple[str, str]] = []
    for name in names:
        digest = store.resolve(name)
        children = store.index_entries(digest)
        if children is None:
            pairs.append((name, name))
            continue
        named = store.resolve_for(digest)
        pairs += [(name if child["digest"] == named else "", str(child["digest"])) for child in children]
    return pairs


def _uncompressed_layer(store: Store, blob_digest: str, diff_id: str, scratch: Path) -> Path:
    """The layer's tar, decompressed into ``scratch`` and checked against its diff id."""
    target = scratch / digest_hex(diff_id)
    hasher = hashlib.sha256()
    with store.blobs.open(blob_digest) as raw, target.open("wb") as out:
        reader, _compression = open_decompressed(raw)
        while chunk := reader.read(_CHUNK):
            hasher.update(chunk)
            out.write(chunk)
    if "sha256:" + hasher.hexdigest() != diff_id:
        raise ImageFormatError(f"stored layer {blob_digest} does not unpack to diff id {diff_id}")
    return target


def read_docker_archive(staging: Path) -> list[PendingImage]:
    """The images of the docker archive in ``staging``, converted to OCI manifests, verified."""
    entries = _load_manifest_list(staging)
    pending: list[PendingImage] = []
    for entry in entries:
        config_name = _member_name(entry.get("Config"), "Config")
        config_path = _staged(staging, config_name)
        config_digest = file_digest(config_path)
        named = _HEX_NAME.fullmatch(config_name)
        if named and "sha256:" + named.group(1) != config_digest:
            raise ImageFormatError(f"config {config_name} is corrupt: its digest is {config_digest}")
        config = parse_json_object(config_path.read_bytes(), config_name)
        diff_ids = config.get("rootfs", {}).get("diff_ids", [])
        layer_names = entry.get("Layers", [])
        if not isinstance(layer_names, list) or len(layer_names) != len(diff_ids):
            raise ImageFormatError(
                f"{config_name} lists {len(diff_ids)} diff ids for {len(layer_names)} layers"
            )
        blobs = [StagedBlob(config_path, config_digest)]
        descriptors = []
        for layer_name, diff_id in zip(layer_names, diff_ids, strict=True):
            layer_path = _staged(staging, _member_name(layer_name, "Layers"))
            blob_digest, compression = _check_layer(layer_path, str(diff_id), layer_name)
            blobs.append(StagedBlob(layer_path, blob_digest))
            descriptors.append(
                {
                    "mediaType": mediatypes.layer_media_type(compression),
                    "digest": blob_digest,
                    "size": layer_path.stat().st_size,
                }
            )
        manifest = {
            "schemaVersion": 2,
            "mediaType": mediatypes.OCI_MANIFEST,
            "config": {
                "mediaType": mediatypes.OCI_CONFIG,
                "digest": config_digest,
                "size": config_path.stat().st_size,
            },
            "layers": descriptors,
        }
        names = [str(parse_reference(str(tag))) for tag in entry.get("RepoTags") or []]
        pending.append(PendingImage(json.dumps(manifest, separators=(",", ":")).encode(), names, blobs))
    return pending


def _check_layer(path: Path, diff_id: str, name: str) -> tuple[str, str]:
    """The blob digest and compression of a layer file that must unpack to ``diff_id``."""
    blob_hasher = hashlib.sha256()
    diff_hasher = hashlib.sha256()
    with path.open("rb") as raw:
        reader, compression = open_decompressed(raw)
        try:
            while chunk := reader.read(_CHUNK):
                diff_hasher.update(chunk)
        except (OSError, EOFError) as err:
            raise ImageFormatError(f"layer {name} is corrupt: {err}") from err
    with path.open("rb") as raw:
        while chunk := raw.read(_CHUNK):
            blob_hasher.update(chunk)
    unpacked = "sha256:" + diff_hasher.hexdigest()
    if unpacked != diff_id:
        raise ImageFormatError(f"layer {name} is corrupt: it unpacks to {unpacked}, not {diff_id}")
    return "sha256:" + blob_hasher.hexdigest(), compression


def _load_manifest_list(staging: Path) -> list[dict[str, Any]]:
    path = staging / "manifest.json"
    if not path.is_file():
        raise ImageFormatError("the archive lacks manifest.json")
    try:
        document = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError) as err:
        raise ImageFormatError(f"manifest.json is not valid JSON: {err}") from err
    if not isinstance(document, list) or not all(isinstance(item, dict) for item in document):
        raise ImageFormatError("manifest.json is not a list of images")
    if not document:
        raise ImageFormatError("manifest.json lists no images")
    return document


def _member_name(value: object, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise ImageFormatError(f"manifest.json has an entry with a bad {field!r} field")
    return value


def _staged(staging: Path, name: str) -> Path:
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts or name.startswith("/"):
        raise ImageFormatError(f"manifest.json names a path outside the archive: {name!r}")
    path = staging.joinpath(*parts)
    if not path.is_file():
        raise ImageFormatError(f"the archive lacks {name}")
    return path
