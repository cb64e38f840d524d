"""``--cache-to type=registry,ref=REG/REPO:TAG`` and ``--cache-from type=registry,ref=…``.

The cache image of :mod:`cache.cacheimage` pushed as an ordinary OCI manifest under a tag:
its layer blobs (the records' layers) and its config (the records) are uploaded when the
repository lacks them, then the manifest is put last, so the registry never names a blob it
does not hold. Importing fetches the manifest and the config, then the layer blobs the store
lacks, each verified against its digest while written, and adds the records the store does
not have. A second machine with an empty store then reuses every layer without running a
step, as with the local kind.

The registry is reached through :class:`RegistryRequests`, the request method of
``builder.registry.client.RegistryClient`` (which answers auth challenges and retries), so
this module needs nothing of the registry package but that one call.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from functools import partial
from typing import Any, BinaryIO, Protocol

from builder.errors import KilnError, RegistryError, StoreError
from builder.oci import mediatypes
from builder.oci.reference import Reference, parse_reference
from cache.cacheimage import (
    cache_documents,
    config_digest_of,
    inputs_of_records,
    parse_cache_config,
)
from cache.records import CacheRecord
from cache.transfer import CacheMode, RecordExporter, TransferStore, import_records

_CHUNK = 1 << 20
#: A cache manifest lists one descriptor per layer; 16 MiB is far beyond any real one.
MAX_DOCUMENT_BYTES = 16 << 20


class RegistryRequests(Protocol):
    """What this module asks of a registry client."""

    def request(
        self,
        method: str,
        path: str,
        *,
        scopes: Sequence[str],
        what: str,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        stream: bool = False,
        ok: Iterable[int] = (200,),
        retry: bool = True,
    ) -> Any: ...


def export_registry(
    store: TransferStore,
    client: RegistryRequests,
    ref: str,
    records: Sequence[CacheRecord],
    mode: CacheMode = "max",
    *,
    final_chain_ids: Collection[str] = (),
    exported: RecordExporter | None = None,
) -> str:
    """Push ``records`` (each as ``exported`` gives it) and their layers as the cache image
    ``ref``; return its digest."""
    if mode not in ("min", "max"):
        raise StoreError(f"unknown cache export mode {mode!r}: expected min or max")
    remote = _Remote(client, _cache_reference(ref), push=True)
    selected = [record for record in records if mode == "max" or record.chain_id in final_chain_ids]
    chosen = selected if exported is None else [exported(record) for record in selected]
    documents = cache_documents(chosen, inputs_of_records(store.meta, chosen))
    for blob in dict.fromkeys(record.blob_digest for record in chosen):
        remote.push_blob(blob, store.blobs.size(blob), partial(store.blobs.open, blob))
    config = documents.config
    remote.push_blob(documents.config_digest, len(config), partial(io.BytesIO, config))
    remote.put_manifest(documents.manifest)
    return documents.manifest_digest


def import_registry(store: TransferStore, client: RegistryRequests, ref: str) -> list[CacheRecord]:
    """Make the records of the cache image ``ref`` usable by ``store``; return those added."""
    remote = _Remote(client, _cache_reference(ref), push=False)
    manifest = remote.get_small(f"manifests/{remote.reference.tag}")
    config_digest = config_digest_of(manifest)
    if config_digest is None:
        raise RegistryError(f"{remote.reference} is not a kiln cache")
    config = remote.get_small(f"blobs/{config_digest}")
    if "sha256:" + hashlib.sha256(config).hexdigest() != config_digest:
        raise RegistryError(f"the cache config of {remote.reference} does not match its digest")
    records, inputs = parse_cache_config(config)
    return import_records(
        store, records, inputs, lambda record: remote.fetch_blob(store, record.blob_digest, record.size)
    )


def _cache_reference(ref: str) -> Reference:
    try:
        reference = parse_reference(ref)
    except KilnError as err:
        raise RegistryError(f"invalid cache reference {ref!r}: {err}") from err
    if reference.tag is None:
        raise RegistryError(f"cache reference {ref!r} needs a tag")
    return reference


class _Remote:
    """One repository of one registry, with the scope every request asks for."""

    def __init__(self, client: RegistryRequests, reference: Reference, *, push: bool) -> None:
        self.client = client
        self.reference = reference
        self.base = f"/v2/{reference.repository}"
        self.scopes = [f"repository:{reference.repository}:{'pull,push' if push else 'pull'}"]

    def push_blob(self, digest: str, size: int, opener: Callable[[], BinaryIO]) -> None:
        """Upload one blob in a single PUT, unless the repository has it already."""
        what = f"blob {digest} of {self.reference.name}"
        head = self._request("HEAD", f"{self.base}/blobs/{digest}", what, ok=(200, 404))
        if head.status_code == 200:
            return
        start = self._request("POST", f"{self.base}/blobs/uploads/", what, ok=(202,))
        location = start.headers.get("Location", "")
        if not location:
            raise RegistryError(f"{self.reference.registry} started an upload of {what} without a Location")
        self._request(
            "PUT",
            location,
            what,
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
            params={"digest": digest},
            body=opener,
            ok=(201, 204),
            retry=False,
        )

    def put_manifest(self, manifest: bytes) -> None:
        self._request(
            "PUT",
            f"{self.base}/manifests/{self.reference.tag}",
            f"cache {self.reference}",
            headers={"Content-Type": mediatypes.OCI_MANIFEST},
            body=manifest,
            ok=(200, 201),
        )

    def get_small(self, path: str) -> bytes:
        """A manifest or config, refused beyond :data:`MAX_DOCUMENT_BYTES`."""
        headers = {"Accept": mediatypes.OCI_MANIFEST} if path.startswith("manifests/") else None
        response = self.client.request(
            "GET",
            f"{self.base}/{path}",
            scopes=self.scopes,
            what=f"cache {self.reference}",
            headers=headers,
            stream=True,
        )
        try:
            content = bytearray()
            for chunk in response.iter_content(_CHUNK):
                content += chunk
                if len(content) > MAX_DOCUMENT_BYTES:
                    raise RegistryError(
                        f"a cache document of {self.reference} exceeds {MAX_DOCUMENT_BYTES} bytes"
                    )
            return bytes(content)
        finally:
            response.close()

    def fetch_blob(self, store: TransferStore, digest: str, size: int) -> None:
        """Stream a layer into the store, verified against its digest and size."""
        what = f"blob {digest} of {self.reference.name}"
        response = self.client.request(
            "GET", f"{self.base}/blobs/{digest}", scopes=self.scopes, what=what, stream=True
        )
        try:
            reader = _ChunkReader(response.iter_content(_CHUNK))
            store.blobs.put_stream(reader, expected_digest=digest, expected_size=size)  # type: ignore[arg-type]
        except StoreError as err:
            raise RegistryError(f"{self.reference.registry} sent a corrupt {what}: {err}") from err
        finally:
            response.close()

    def _request(self, method: str, path: str, what: str, **options: Any) -> Any:
        response = self.client.request(method, path, scopes=self.scopes, what=what, **options)
        response.close()
        return response


class _ChunkReader:
    """A ``read``-able view of a response body's chunks, for ``put_stream``."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._pending) < size:
            chunk = next(self._chunks, b"")
            if not chunk:
                break
            self._pending += chunk
        if size < 0:
            size = len(self._pending)
        chunk, self._pending = self._pending[:size], self._pending[size:]
        return chunk
