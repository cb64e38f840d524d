"""``kiln push``: an image from the store to a registry, sending only what it lacks.

For each blob (config and layers, in parallel): ``HEAD`` first and skip it when the
repository has it; else try a cross-repository mount from another repository of the same
registry that a stored image came from (``POST …/uploads/?mount=<digest>&from=<repo>``,
201 when the registry mounted it); else upload it, in one ``PUT`` when it is at most
``chunk_size`` bytes, otherwise as ``PATCH`` chunks with ``Content-Range`` and a closing
``PUT ?digest=``. The manifest goes last (child manifests before their index), so the
registry never holds a manifest whose blobs it lacks. Layers the store keeps uncompressed
leave compressed (:mod:`builder.export.outgoing`): the pushed manifest names those blobs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING

import requests

from builder.errors import KilnError, RegistryError
from builder.events import EventSink, Notice, discard
from builder.export.outgoing import OutgoingImages
from builder.lazyclasses import dataclass
from builder.oci import mediatypes
from builder.oci.digest import sha256_digest
from builder.oci.model import Index, Manifest, parse_manifest_or_index
from builder.oci.reference import Reference, parse_reference
from builder.registry._transfer import ProgressCounter, ProgressFile
from builder.registry.client import (
    Body,
    RegistryClient,
    TransientRegistryError,
    pull_scope,
    push_scope,
)
from builder.store import Store

if TYPE_CHECKING:
    from builder.layers.compression import Compression

DEFAULT_CHUNK_SIZE = 32 << 20
PARALLEL_UPLOADS = 4
UPLOAD_ATTEMPTS = 3


@dataclass(frozen=True)
class _Blob:
    digest: str
    size: int


def push_image(
    store: Store,
    ref: str,
    *,
    source: str | None = None,
    sink: EventSink = discard,
    insecure: Sequence[str] = (),
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    client: RegistryClient | None = None,
    compression: Compression = "gzip",
) -> str:
    """Push the stored image ``source`` (default: ``ref`` itself) to ``ref``; return the
    digest of the manifest (or index) the registry now holds under that tag.

    Layers the store keeps uncompressed go out compressed with ``compression``, so that
    digest differs from the stored one for a built image; the image id does not. A pulled
    index leaves unchanged when all its platforms were pulled, else reduced to those that
    were (:class:`OutgoingImages`), with a notice naming the others."""
    reference = parse_reference(ref)
    local_digest = store.resolve(source if source is not None else ref)
    outgoing = OutgoingImages(store, compression)
    outgoing.digest(local_digest)  # a pulled index loses the platforms that were not pulled
    if outgoing.left_out:
        sink(Notice(f"{reference}: pushing without {', '.join(outgoing.left_out)}, which were not pulled"))
    own_client = client is None
    active = client if client is not None else RegistryClient(reference.registry, insecure=insecure)
    try:
        pusher = _Pusher(store, active, reference, sink, chunk_size, outgoing=outgoing)
        return pusher.push_document(local_digest, tagged=True)
    finally:
        if own_client:
            active.close()


class _Pusher:
    """One push: the destination, where blobs could be mounted from, and the sink."""

    def __init__(
        self,
        store: Store,
        client: RegistryClient,
        reference: Reference,
        sink: EventSink,
        chunk_size: int,
        *,
        outgoing: OutgoingImages,
    ) -> None:
        if chunk_size <= 0:
            raise RegistryError(f"chunk size must be positive, not {chunk_size}")
        self.store = store
        self.client = client
        self.reference = reference
        self.repository = reference.repository
        self.sink = sink
        self.chunk_size = chunk_size
        self.outgoing = outgoing
        self.mount_sources = _mount_sources(store, reference)

    def push_document(self, stored_digest: str, *, tagged: bool) -> str:
        """Push a stored manifest or index, in its outgoing form, and the blobs it names."""
        digest = self.outgoing.digest(stored_digest)
        return self._push_outgoing(digest, self._manifest_target(digest) if tagged else digest)

    def _push_outgoing(self, digest: str, target: str) -> str:
        """A manifest or index already in its outgoing form, children (an index's platform
        manifests, by digest) and blobs first, then itself as ``target``."""
        content = self.outgoing.read_bytes(digest)
        document = parse_manifest_or_index(content)
        if isinstance(document, Index):
            for entry in document.manifests:
                self._push_outgoing(entry.digest, entry.digest)
        else:
            self._push_blobs(document)
        return self._put_manifest(content, _media_type(document), target)

    # blobs -------------------------------------------------------------------------------

    def _push_blobs(self, manifest: Manifest) -> None:
        """The config alone first (its requests answer the auth challenge once, so the
        parallel layer uploads start with a token), then the layers side by side."""
        self._push_blob(_Blob(manifest.config.digest, manifest.config.size))
        wanted = {
            layer.digest: layer.size for layer in manifest.layers if layer.digest != manifest.config.digest
        }
        blobs = [_Blob(digest, size) for digest, size in wanted.items()]
        if not blobs:
            return
        with ThreadPoolExecutor(max_workers=min(PARALLEL_UPLOADS, len(blobs))) as pool:
            for future in [pool.submit(self._push_blob, blob) for blob in blobs]:
                future.result()

    def _push_blob(self, blob: _Blob) -> None:
        counter = ProgressCounter(self.sink, str(self.reference), blob.digest, blob.size, "push")
        if self._registry_has(blob):
            counter.report_skipped()
            return
        for attempt in range(UPLOAD_ATTEMPTS):
            counter.done_bytes = 0
            try:
                location = self._mount_or_start_upload(blob)
                if location is None:
                    counter.report_skipped()
                elif blob.size <= self.chunk_size:
                    self._finish_upload(location, blob, partial(self._body, blob, 0, blob.size, counter))
                else:
                    self._upload_chunks(location, blob, counter)
                return
            except TransientRegistryError:
                # A broken upload cannot be resumed safely without asking the registry
                # how much it kept; a new upload session is simpler and always correct.
                if attempt + 1 == UPLOAD_ATTEMPTS:
                    raise
                time.sleep(self.client.backoff_seconds * (2**attempt))

    def _registry_has(self, blob: _Blob) -> bool:
        response = self.client.request(
            "HEAD",
            f"/v2/{self.repository}/blobs/{blob.digest}",
            scopes=[push_scope(self.repository)],
            what=f"blob {blob.digest} of {self.reference.name}",
            ok=(200, 404),
        )
        response.close()
        return response.status_code == 200

    def _mount_or_start_upload(self, blob: _Blob) -> str | None:
        """Mount ``blob`` from a sibling repository when one is known (``None`` once mounted),
        else open an upload session; return its location."""
        what = f"an upload of {blob.digest} to {self.reference.name}"
        for source_repository in self.mount_sources.get(blob.digest, ()):
            response = self.client.request(
                "POST",
                f"/v2/{self.repository}/blobs/uploads/",
                scopes=[push_scope(self.repository), pull_scope(source_repository)],
                what=what,
                params={"mount": blob.digest, "from": source_repository},
                ok=(201, 202),
            )
            response.close()
            if response.status_code == 201:
                return None
            return _location(response, what)
        response = self.client.request(
            "POST",
            f"/v2/{self.repository}/blobs/uploads/",
            scopes=[push_scope(self.repository)],
            what=what,
            ok=(202,),
        )
        response.close()
        return _location(response, what)

    def _upload_chunks(self, location: str, blob: _Blob, counter: ProgressCounter) -> None:
        offset = 0
        while offset < blob.size:
            length = min(self.chunk_size, blob.size - offset)
            response = self.client.request(
                "PATCH",
                location,
                scopes=[push_scope(self.repository)],
                what=f"a chunk of {blob.digest} for {self.reference.name}",
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Range": f"{offset}-{offset + length - 1}",
                    "Content-Length": str(length),
                },
                body=partial(self._body, blob, offset, length, counter),
                ok=(202,),
                retry=False,
            )
            response.close()
            location = _location(response, f"the upload of {blob.digest}")
            offset += length
        self._finish_upload(location, blob, b"")

    def _finish_upload(self, location: str, blob: _Blob, body: Body) -> None:
        response = self.client.request(
            "PUT",
            location,
            scopes=[push_scope(self.repository)],
            what=f"blob {blob.digest} of {self.reference.name}",
            headers={"Content-Type": "application/octet-stream"},
            params={"digest": blob.digest},
            body=body,
            ok=(201, 204),
            retry=False,
        )
        response.close()

    def _body(self, blob: _Blob, offset: int, length: int, counter: ProgressCounter) -> ProgressFile:
        stream = self.store.blobs.open(blob.digest)
        stream.seek(offset)
        return ProgressFile(stream, length, counter)

    # manifests ---------------------------------------------------------------------------

    def _manifest_target(self, digest: str) -> str:
        if self.reference.tag is not None:
            return self.reference.tag
        if self.reference.digest is not None and self.reference.digest != digest:
            raise RegistryError(
                f"cannot push {digest} as {self.reference}: a pushed manifest is named by its own digest"
            )
        return digest

    def _put_manifest(self, content: bytes, media_type: str, target: str) -> str:
        digest = sha256_digest(content)
        response = self.client.request(
            "PUT",
            f"/v2/{self.repository}/manifests/{target}",
            scopes=[push_scope(self.repository)],
            what=f"{self.reference.name}:{target}"
            if ":" not in target
            else f"{self.reference.name}@{target}",
            headers={"Content-Type": media_type},
            body=content,
            ok=(201, 200),
        )
        response.close()
        announced = response.headers.get("Docker-Content-Digest", "")
        if announced and announced != digest:
            raise RegistryError(f"{self.client.registry} stored {announced} for the manifest {digest}")
        return digest


def _location(response: requests.Response, what: str) -> str:
    location = response.headers.get("Location", "")
    if not location:
        raise RegistryError(f"the registry gave no upload location for {what}")
    return location


def _media_type(document: Manifest | Index) -> str:
    return document.media_type or (
        mediatypes.OCI_INDEX if isinstance(document, Index) else mediatypes.OCI_MANIFEST
    )


def _mount_sources(store: Store, destination: Reference) -> dict[str, list[str]]:
    """Blob digest → other repositories of the destination registry that stored images were
    pulled from or pushed to under that name, so the registry can mount instead of receiving."""
    sources: dict[str, list[str]] = {}
    for record in store.meta.refs():
        try:
            reference = parse_reference(record.name)
            manifest = parse_manifest_or_index(store.blobs.read_bytes(record.digest))
        except KilnError:
            continue
        if reference.registry != destination.registry or reference.repository == destination.repository:
            continue
        if not isinstance(manifest, Manifest):
            continue
        for descriptor in (manifest.config, *manifest.layers):
            repositories = sources.setdefault(descriptor.digest, [])
            if reference.repository not in repositories:
                repositories.append(reference.repository)
    return sources
