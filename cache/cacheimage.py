"""The documents of an exported cache: one OCI manifest and a config blob of records.

A cache travels as an ordinary OCI image manifest so registries and layout tools carry it
without knowing what it is: its layers are the records' layer blobs, its config (media type
:data:`CACHE_CONFIG_MEDIA_TYPE`, also its ``artifactType``) holds the records themselves and
the per-file input digests their explanations need. The local kind (:mod:`cache.transfer`)
writes these into an OCI layout; the registry kind pushes the same bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence

from builder.errors import StoreError
from builder.lazyclasses import dataclass
from builder.oci import mediatypes
from cache.records import CacheRecord, KeyValueTable, input_files

CACHE_CONFIG_MEDIA_TYPE = "application/vnd.kiln.cache.config.v1+json"

#: Input digest → {path: short digest}, as :func:`cache.records.input_files` gives them.
InputFiles = dict[str, dict[str, str]]


@dataclass(frozen=True)
class CacheDocuments:
    """The config and manifest bytes of a cache, with their digests."""

    config: bytes
    manifest: bytes

    @property
    def config_digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.config).hexdigest()

    @property
    def manifest_digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.manifest).hexdigest()


def inputs_of_records(meta: KeyValueTable, records: Sequence[CacheRecord]) -> InputFiles:
    """The per-file input digests the store keeps for ``records``, by input digest."""
    found: InputFiles = {}
    for record in records:
        digests = record.preimage.get("inputs", {})
        if not isinstance(digests, Mapping):
            continue
        for name, files in input_files(meta, record.preimage).items():
            found[str(digests[name])] = dict(files)
    return found


def cache_documents(
    records: Sequence[CacheRecord], inputs: Mapping[str, Mapping[str, str]]
) -> CacheDocuments:
    """The documents holding ``records`` (in key order) and ``inputs``; each layer blob is
    listed once, however many records share it."""
    kept = sorted(records, key=lambda record: record.key)
    payload = {
        "records": [record.to_json() for record in kept],
        "inputs": {k: dict(v) for k, v in inputs.items()},
    }
    config = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    layers: dict[str, dict[str, object]] = {}
    for record in kept:
        layers.setdefault(
            record.blob_digest,
            {"mediaType": record.media_type, "digest": record.blob_digest, "size": record.size},
        )
    manifest = {
        "schemaVersion": 2,
        "mediaType": mediatypes.OCI_MANIFEST,
        "artifactType": CACHE_CONFIG_MEDIA_TYPE,
        "config": {
            "mediaType": CACHE_CONFIG_MEDIA_TYPE,
            "digest": "sha256:" + hashlib.sha256(config).hexdigest(),
            "size": len(config),
        },
        "layers": list(layers.values()),
    }
    return CacheDocuments(config, json.dumps(manifest, separators=(",", ":")).encode())


def config_digest_of(manifest: bytes) -> str | None:
    """The config digest of a cache manifest; ``None`` for any other manifest."""
    document = parse_json_object(manifest, "cache manifest")
    config = document.get("config")
    if not isinstance(config, Mapping) or config.get("mediaType") != CACHE_CONFIG_MEDIA_TYPE:
        return None
    return str(config.get("digest", ""))


def parse_cache_config(payload: bytes) -> tuple[list[CacheRecord], InputFiles]:
    """The records and input file digests of a cache config blob."""
    document = parse_json_object(payload, "cache config")
    raw_records = document.get("records")
    if not isinstance(raw_records, list):
        raise StoreError("malformed cache config: records is not a list")
    records = [CacheRecord.from_json(value) for value in raw_records]
    inputs: InputFiles = {}
    raw_inputs = document.get("inputs", {})
    if isinstance(raw_inputs, Mapping):
        for digest, files in raw_inputs.items():
            if isinstance(files, Mapping):
                inputs[str(digest)] = {str(path): str(value) for path, value in files.items()}
    return records, inputs


def parse_json_object(payload: bytes, what: str) -> dict[str, object]:
    try:
        value = json.loads(payload)
    except ValueError as err:
        raise StoreError(f"malformed {what}: {err}") from err
    if not isinstance(value, dict):
        raise StoreError(f"malformed {what}: not a JSON object")
    return value
