"""``kiln pull``: an image from a registry into the store, verified blob by blob.

Order matters for the frontend: the manifest (an index is resolved to the platform's
manifest first) and then the config are fetched before any layer, so a caller that only
needs the config could stop there. Layers then download in parallel; each is streamed into
the store, which hashes it while writing and renames it into place only when digest and
size match, so a lying registry or an interrupted pull leaves no blob behind. Blobs already
in the store are not downloaded again. The image is recorded and tagged last.

A reference that names an index is stored as that index (:mod:`builder.registry.pulled_index`):
the name points at the index as sent, of which the pulled platform's image is whole.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING

from builder.errors import ImageFormatError, RegistryError, StoreError
from builder.events import EventSink, Notice, discard
from builder.graph import Platform
from builder.oci.mediatypes import INDEX_TYPES
from builder.oci.model import Descriptor, Index, Manifest, parse_manifest_or_index
from builder.oci.reference import Reference, parse_reference
from builder.registry._transfer import ProgressCounter, ResponseReader
from builder.registry.manifests import (
    FetchedManifest,
    check_media_type,
    fetch_manifest,
    head_manifest_digest,
)
from builder.registry.platforms import normalise, select_manifest
from builder.registry.pulled_index import record_pulled_index
from builder.store import Store
from builder.store.whole_images import is_whole

if TYPE_CHECKING:
    # requests loads only when a registry is talked to: a FROM image already stored
    # (the usual, cached build) never needs it.
    from builder.registry.client import RegistryClient

PARALLEL_DOWNLOADS = 4
_DOWNLOAD_ATTEMPTS = 3
_CHUNK = 1 << 20


def pull_image(
    store: Store,
    ref: str,
    *,
    platform: Platform,
    sink: EventSink = discard,
    insecure: Sequence[str] = (),
    client: RegistryClient | None = None,
) -> str:
    """Pull ``ref`` for ``platform``; return the stored manifest digest of that platform.

    The name is the normalised reference (``docker.io/library/alpine:latest``). It points at
    the image with the platform asked for recorded or, when the reference named an index, at
    the index itself (stored as sent), which then holds this platform's image whole.
    """
    from builder.registry.client import RegistryClient

    reference = parse_reference(ref)
    own_client = client is None
    active = client if client is not None else RegistryClient(reference.registry, insecure=insecure)
    try:
        manifest, fetched, index = resolve_platform_manifest(active, reference, platform)
        with store.writing():
            fetch_blob(store, active, reference, manifest.config, sink=sink, abort=threading.Event())
            _check_config_platform(store, manifest, platform, reference, sink)
            fetch_layers(store, active, reference, manifest.layers, sink)
            try:
                digest = store.put_manifest(fetched.content)
            except StoreError as err:
                raise RegistryError(f"cannot record {reference}: {err}") from err
            if index is not None:
                record_pulled_index(store, str(reference), index)
            else:
                store.meta.set_ref(str(reference), digest, platform=str(normalise(platform)))
            store.write_index()
        return digest
    finally:
        if own_client:
            active.close()


def ensure_image(
    store: Store,
    ref: str,
    *,
    platform: Platform,
    always_check: bool = False,
    sink: EventSink = discard,
    insecure: Sequence[str] = (),
) -> str:
    """What ``FROM ref`` needs: the stored manifest digest of ``ref``, pulled when missing.

    With ``always_check`` (``kiln build --pull``) the registry is asked for the reference's
    current digest (one HEAD) and the image is pulled again only when that differs from the
    digest (or index digest) the stored name was pulled at. A name already stored for
    another platform (a single image, or an index pulled for other platforms) is pulled for
    this one.
    """
    reference = parse_reference(ref)
    record = store.meta.ref(str(reference))
    stored = _stored_for(store, str(reference), platform)
    if record is not None and stored:
        if not always_check:
            return stored
        from builder.registry.client import RegistryClient

        with RegistryClient(reference.registry, insecure=insecure) as client:
            current = head_manifest_digest(client, reference)
            if current in (record.digest, record.index_digest):
                return stored
            return pull_image(store, ref, platform=platform, sink=sink, client=client)
    return pull_image(store, ref, platform=platform, sink=sink, insecure=insecure)


def _stored_for(store: Store, name: str, platform: Platform) -> str:
    """The manifest digest the stored ``name`` holds for ``platform``, or "" when it holds
    none: a single image pulled for another platform, or an index whose entry for this
    platform was not pulled."""
    record = store.meta.ref(name)
    if record is None or not store.blobs.has(record.digest):
        return ""
    image = store.meta.image(record.digest)
    if image is not None and image.media_type in INDEX_TYPES:
        try:
            digest = store.resolve_for(name, platform)
        except StoreError:
            return ""
        return digest if is_whole(store, digest) else ""
    return record.digest if record.platform in ("", str(normalise(platform))) else ""


def resolve_platform_manifest(
    client: RegistryClient, reference: Reference, platform: Platform
) -> tuple[Manifest, FetchedManifest, FetchedManifest | None]:
    """The image manifest for ``platform``, the document as sent, and the index as sent
    (None when the reference names a single manifest)."""
    fetched = fetch_manifest(client, reference)
    check_media_type(fetched, str(reference))
    document = _parse(fetched, str(reference))
    if isinstance(document, Manifest):
        return document, fetched, None
    entry = select_manifest(document, platform)
    if entry is None:
        offered = ", ".join(str(item.platform) for item in document.manifests if item.platform) or "none"
        raise RegistryError(f"{reference} has no image for {platform} (it offers {offered})")
    child = fetch_manifest(client, reference, entry.digest)
    child_document = _parse(child, f"{reference.name}@{entry.digest}")
    if not isinstance(child_document, Manifest):
        raise ImageFormatError(f"{reference}: the index entry for {platform} is not an image manifest")
    return child_document, child, fetched


def fetch_layers(
    store: Store, client: RegistryClient, reference: Reference, layers: Sequence[Descriptor], sink: EventSink
) -> None:
    """Download the layers not yet stored, several at a time; the first failure stops all."""
    missing: dict[str, Descriptor] = {}
    for layer in layers:
        if store.blobs.has(layer.digest):
            ProgressCounter(sink, str(reference), layer.digest, layer.size, "pull").report_skipped()
        else:
            missing.setdefault(layer.digest, layer)
    if not missing:
        return
    abort = threading.Event()
    with ThreadPoolExecutor(max_workers=min(PARALLEL_DOWNLOADS, len(missing))) as pool:
        futures = [
            pool.submit(fetch_blob, store, client, reference, layer, sink=sink, abort=abort)
            for layer in missing.values()
        ]
        try:
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        except BaseException:
            abort.set()
            raise
        failed = [future for future in done if future.exception() is not None]
        if failed:
            abort.set()
            for future in futures:
                future.cancel()
            failed[0].result()


def fetch_blob(
    store: Store,
    client: RegistryClient,
    reference: Reference,
    descriptor: Descriptor,
    *,
    sink: EventSink,
    abort: threading.Event,
) -> None:
    """Stream one blob into the store, verified against its descriptor; retried on a broken
    connection (each attempt starts a fresh temporary file)."""
    import requests

    from builder.registry.client import pull_scope

    if store.blobs.has(descriptor.digest):
        ProgressCounter(sink, str(reference), descriptor.digest, descriptor.size, "pull").report_skipped()
        return
    what = f"blob {descriptor.digest} of {reference}"
    for attempt in range(_DOWNLOAD_ATTEMPTS):
        counter = ProgressCounter(sink, str(reference), descriptor.digest, descriptor.size, "pull")
        response = client.request(
            "GET",
            f"/v2/{reference.repository}/blobs/{descriptor.digest}",
            scopes=[pull_scope(reference.repository)],
            what=what,
            stream=True,
        )
        try:
            with response:
                reader = ResponseReader(response.iter_content(_CHUNK), counter, abort, what)
                store.blobs.put_stream(
                    reader,  # type: ignore[arg-type]
                    expected_digest=descriptor.digest,
                    expected_size=descriptor.size,
                )
            return
        except requests.RequestException as err:
            if attempt + 1 == _DOWNLOAD_ATTEMPTS or abort.is_set():
                raise RegistryError(f"download of {what} failed: {err}") from err
        except StoreError as err:
            raise RegistryError(f"{client.registry} sent a corrupt {what}: {err}; refused") from err


def _parse(fetched: FetchedManifest, what: str) -> Manifest | Index:
    try:
        return parse_manifest_or_index(fetched.content)
    except ImageFormatError as err:
        raise ImageFormatError(f"{what}: {err}") from err


def _check_config_platform(
    store: Store, manifest: Manifest, platform: Platform, reference: Reference, sink: EventSink
) -> None:
    """Say so when a single-platform image does not match the platform asked for (docker
    warns likewise and carries on)."""
    try:
        config = json.loads(store.blobs.read_bytes(manifest.config.digest))
    except (ValueError, StoreError):
        return
    if not isinstance(config, dict):
        return
    offered = Platform(str(config.get("os", "")), str(config.get("architecture", "")))
    if offered.os and (offered.os, offered.architecture) != (platform.os, platform.architecture):
        sink(Notice(f"{reference} is for {offered}, which does not match the requested {platform}"))
