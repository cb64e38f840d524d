"""Moving cache records between stores: ``--cache-to type=local`` and ``--cache-from``.

A local cache is an OCI image layout directory, so ordinary tools can copy or push it:
``index.json`` names the one cache manifest of :mod:`cache.cacheimage`, whose layers are the
records' layer blobs and whose config holds the records. Exporting again into the same
directory merges: records already there stay unless this build has a newer one for the
same key. Importing copies the blobs in (each verified against its digest, as everything
read from outside is) and adds the records a store lacks; snapshots are unpacked later, on
first use, by ``SnapshotStore.ensure``. The registry kind reuses this shape.

``mode="max"`` exports every record given (intermediate stages too); ``mode="min"`` only
those whose layer is in the final image (``final_chain_ids``), as BuildKit's modes do.
An ``exported`` function may swap each record for the one that leaves (the command line
passes one that names an uncompressed layer's compressed variant), so an importing store
holds that layer compressed, as it would a pulled one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO, Literal, Protocol

from builder.durable import write_durably
from builder.errors import StoreError
from builder.oci import mediatypes
from cache.cacheimage import (
    InputFiles,
    cache_documents,
    config_digest_of,
    inputs_of_records,
    parse_cache_config,
    parse_json_object,
)
from cache.records import CacheRecord, KeyValueTable, save

#: ``org.opencontainers.image.ref.name`` of the cache manifest in ``index.json``.
CACHE_REF_NAME = "kiln-cache"
_REF_ANNOTATION = "org.opencontainers.image.ref.name"

CacheMode = Literal["min", "max"]
#: A record as it leaves the store (naming the blob that is sent); see the module docstring.
RecordExporter = Callable[[CacheRecord], CacheRecord]


class _BlobInfoLike(Protocol):
    @property
    def digest(self) -> str: ...


class TransferBlobs(Protocol):
    def has(self, digest: str) -> bool: ...
    def open(self, digest: str) -> BinaryIO: ...
    def size(self, digest: str) -> int: ...
    def put_stream(
        self, stream: BinaryIO, *, expected_digest: str | None = None, expected_size: int | None = None
    ) -> _BlobInfoLike: ...


class TransferStore(Protocol):
    """The part of :class:`builder.store.store.Store` a transfer uses."""

    @property
    def meta(self) -> KeyValueTable: ...
    @property
    def blobs(self) -> TransferBlobs: ...
    def writing(self) -> AbstractContextManager[None]: ...


def export_local(
    store: TransferStore,
    records: Sequence[CacheRecord],
    dest: Path,
    mode: CacheMode = "max",
    *,
    final_chain_ids: Collection[str] = (),
    exported: RecordExporter | None = None,
) -> list[CacheRecord]:
    """Write ``records`` (each as ``exported`` gives it) and their layer blobs to the layout
    at ``dest``; return what the directory now holds."""
    if mode not in ("min", "max"):
        raise StoreError(f"unknown cache export mode {mode!r}: expected min or max")
    selected = [record for record in records if mode == "max" or record.chain_id in final_chain_ids]
    chosen = selected if exported is None else [exported(record) for record in selected]
    existing, existing_inputs = _read_cache(dest) if (dest / "index.json").exists() else ([], {})
    merged = {record.key: record for record in existing}
    for record in chosen:
        if record.key not in merged or merged[record.key].last_used <= record.last_used:
            merged[record.key] = record
    inputs = {**existing_inputs, **inputs_of_records(store.meta, chosen)}
    blob_dir = dest / "blobs" / "sha256"
    blob_dir.mkdir(parents=True, exist_ok=True)
    for record in chosen:
        target = blob_dir / _hex(record.blob_digest)
        if not target.exists():
            with store.blobs.open(record.blob_digest) as stream:
                write_durably(target, stream)
    kept = sorted(merged.values(), key=lambda record: record.key)
    documents = cache_documents(kept, inputs)
    _write_blob(blob_dir, documents.config)
    manifest_digest = _write_blob(blob_dir, documents.manifest)
    index = {
        "schemaVersion": 2,
        "mediaType": mediatypes.OCI_INDEX,
        "manifests": [
            {
                "mediaType": mediatypes.OCI_MANIFEST,
                "digest": manifest_digest,
                "size": len(documents.manifest),
                "annotations": {_REF_ANNOTATION: CACHE_REF_NAME},
            }
        ],
    }
    write_durably(dest / "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    write_durably(dest / "index.json", json.dumps(index, indent=2).encode())
    return kept


def import_local(store: TransferStore, src: Path) -> list[CacheRecord]:
    """Make the records of the cache at ``src`` usable by ``store``; return those added (see
    :func:`import_records`: records the store has are left alone)."""
    records, inputs = _read_cache(src)
    blob_dir = src / "blobs" / "sha256"

    def copy_layer(record: CacheRecord) -> None:
        try:
            with (blob_dir / _hex(record.blob_digest)).open("rb") as stream:
                store.blobs.put_stream(stream, expected_digest=record.blob_digest, expected_size=record.size)
        except FileNotFoundError as err:
            raise StoreError(f"cache at {src} lacks layer blob {record.blob_digest}") from err

    return import_records(store, records, inputs, copy_layer)


def import_records(
    store: TransferStore,
    records: Sequence[CacheRecord],
    inputs: InputFiles,
    fetch_layer: Callable[[CacheRecord], None],
) -> list[CacheRecord]:
    """Save in ``store`` each of ``records`` whose key it lacks, with its input file digests
    from ``inputs``; ``fetch_layer`` puts a record's layer blob into the store when it is
    missing. The records added, in order; one write transaction for them all.

    Records whose key the store already has are left alone (the local layer is the one its
    snapshots were made from). An imported record is not indexed under a step: the step
    identity names a Dockerfile on the other machine, and the local index should keep
    pointing at local builds.
    """
    added: list[CacheRecord] = []
    with store.writing():
        for record in records:
            if store.meta.get_value("cache", record.key) is not None:
                continue
            if not store.blobs.has(record.blob_digest):
                fetch_layer(record)
            save(store.meta, replace(record, step=""), input_files=_inputs_of(record, inputs))
            added.append(record)
    return added


def _inputs_of(record: CacheRecord, inputs: Mapping[str, Mapping[str, str]]) -> dict[str, Mapping[str, str]]:
    names = record.preimage.get("inputs", {})
    if not isinstance(names, Mapping):
        return {}
    return {str(name): inputs[digest] for name, digest in names.items() if digest in inputs}


def _read_cache(src: Path) -> tuple[list[CacheRecord], InputFiles]:
    """The records and input file digests of the cache layout at ``src``, each blob read
    verified against its digest."""
    index = parse_json_object(_read_file(src / "index.json"), "cache index.json")
    manifests = index.get("manifests")
    if not isinstance(manifests, list):
        raise StoreError(f"{src}/index.json lists no manifests")
    for descriptor in manifests:
        if not isinstance(descriptor, Mapping):
            continue
        config_digest = config_digest_of(_read_blob(src, str(descriptor.get("digest", ""))))
        if config_digest is not None:
            return parse_cache_config(_read_blob(src, config_digest))
    raise StoreError(f"{src} holds no kiln cache manifest")


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise StoreError(f"cannot read {path}: {err.strerror}") from err


def _read_blob(src: Path, digest: str) -> bytes:
    payload = _read_file(src / "blobs" / "sha256" / _hex(digest))
    if "sha256:" + hashlib.sha256(payload).hexdigest() != digest:
        raise StoreError(f"cache blob {digest} at {src} does not match its digest")
    return payload


def _hex(digest: str) -> str:
    algorithm, _, hex_part = digest.partition(":")
    if algorithm != "sha256" or len(hex_part) != 64 or not all(c in "0123456789abcdef" for c in hex_part):
        raise StoreError(f"malformed digest {digest!r} in cache")
    return hex_part


def _write_blob(blob_dir: Path, payload: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(payload).hexdigest()
    target = blob_dir / _hex(digest)
    if not target.exists():
        write_durably(target, payload)
    return digest
