"""The image store facade: blobs, metadata, snapshots and the root OCI layout kept together.

The root of a store is itself an OCI image layout (``oci-layout``, ``index.json``,
``blobs/sha256``) whose index lists every tagged image with its
``org.opencontainers.image.ref.name``, so ``skopeo inspect oci:ROOT:busybox:latest`` and
``umoci`` read it. Refs live in SQLite; ``index.json`` is rewritten from them (under the index
lock, via a temporary file and a rename) after every change of a ref.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from builder.durable import write_durably
from builder.errors import StoreError, UsageError
from builder.graph import Platform
from builder.lazyclasses import dataclass
from builder.oci.config import ImageConfig
from builder.oci.reference import Reference, is_digest, parse_reference
from builder.store.blobs import BlobStore, remove_stale_temp_entries
from builder.store.leases import Lease
from builder.store.locks import file_lock, file_lock_now
from builder.store.meta import MetaStore, RefRecord
from builder.store.snapshots import SnapshotStore, chain_ids

__all__ = ["ImageSummary", "LayerLike", "Lease", "Store", "StoredLayer", "default_root"]

MEDIA_TYPE_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_TYPE_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_TYPE_INDEX = "application/vnd.oci.image.index.v1+json"
_DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_IMAGE_NAME = "io.containerd.image.name"
_SHORT_ID_MIN = 4
#: An image's ``last_used`` is rewritten only when older than this (as a cache record's is),
#: so storing an image that is already stored, as a fully cached rebuild does, writes nothing.
IMAGE_LAST_USED_GRANULARITY = 3600.0

JsonObject = dict[str, Any]


class LayerLike(Protocol):
    """A layer blob already in the store, as :func:`builder.layers.write_layer` describes it."""

    @property
    def digest(self) -> str: ...
    @property
    def diff_id(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def media_type(self) -> str: ...


@dataclass(frozen=True)
class StoredLayer:
    """A plain :class:`LayerLike` for layers read back from a manifest and its config."""

    digest: str
    diff_id: str
    size: int
    media_type: str


@dataclass(frozen=True)
class ImageSummary:
    """One line of ``kiln images``: a name (or none, for a dangling image) and its image."""

    reference: Reference | None
    manifest_digest: str
    config_digest: str
    created: str
    size: int


def default_root() -> Path:
    """``KILN_ROOT``, else ``/var/lib/kiln`` for root, else the user's data directory."""
    from_env = os.environ.get("KILN_ROOT")
    if from_env:
        return Path(from_env)
    if os.geteuid() == 0:
        return Path("/var/lib/kiln")
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "kiln"


class Store:
    """A kiln store at ``root``; open it with :meth:`Store.open` and close it when done."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.blobs = BlobStore(root)
        self.meta = MetaStore(root / "meta.db")
        self.snapshots = SnapshotStore(root, self.blobs, self.meta)
        layout_file = root / "oci-layout"
        if not layout_file.exists():
            write_durably(layout_file, b'{"imageLayoutVersion":"1.0.0"}')
        if not (root / "index.json").exists():
            self.write_index()

    @classmethod
    def open(cls, root: Path | None = None) -> Store:
        """Open (creating if needed) the store at ``root`` or :func:`default_root`, and remove
        the temporary files that crashed writers left behind."""
        store = cls(root if root is not None else default_root())
        store.blobs.remove_stale_temp_files()
        remove_stale_temp_entries(store.snapshots.directory)
        remove_stale_temp_entries(store.root)
        return store

    def close(self) -> None:
        self.meta.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # locking -----------------------------------------------------------------------------

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the gc lock shared: blobs written inside survive a concurrent prune, which
        waits for the block to end and then sees them referenced."""
        with file_lock(self.root / "gc.lock", exclusive=False):
            yield

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the gc lock exclusively (prune)."""
        with file_lock(self.root / "gc.lock", exclusive=True):
            yield

    @contextmanager
    def exclusive_now(self) -> Iterator[bool]:
        """Hold the gc lock exclusively if that is possible at once; yields whether held."""
        with file_lock_now(self.root / "gc.lock") as held:
            yield held

    @contextmanager
    def lease(self, expires_in: float = 24 * 3600.0) -> Iterator[Lease]:
        """Keep what is added to the lease safe from prune until the block ends."""
        table = self.meta.build_leases
        lease_id = table.create(time.time() + expires_in)
        try:
            yield Lease(self.meta, lease_id, table=table)
        finally:
            table.delete(lease_id)

    # images ------------------------------------------------------------------------------

    def put_image(
        self,
        config: ImageConfig | Mapping[str, Any] | bytes,
        layers: Sequence[LayerLike],
        name: str | None = None,
        *,
        annotations: Mapping[str, str] | None = None,
    ) -> str:
        """Record an image whose layer blobs are already stored; return its manifest digest.

        A config given as an :class:`ImageConfig` or a mapping gets ``rootfs`` set from
        ``layers``; one given as bytes is kept byte for byte (its digest is the image id) and
        must list the same diff ids.
        """
        config_bytes = self._config_bytes(config, layers)
        for layer in layers:
            if not self.blobs.has(layer.digest):
                raise StoreError(f"layer blob {layer.digest} is not in the store")
        with self.writing():
            # The manifest's write, next, syncs the directory for both.
            config_info = self.blobs.put_bytes(config_bytes, sync_directory=False)
            manifest: JsonObject = {
                "schemaVersion": 2,
                "mediaType": MEDIA_TYPE_MANIFEST,
                "config": {
                    "mediaType": MEDIA_TYPE_CONFIG,
                    "digest": config_info.digest,
                    "size": config_info.size,
                },
                "layers": [
                    {"mediaType": layer.media_type, "digest": layer.digest, "size": layer.size}
                    for layer in layers
                ],
            }
            if annotations:
                manifest["annotations"] = dict(annotations)
            return self.put_manifest(json.dumps(manifest, separators=(",", ":")).encode(), name)

    def put_manifest(self, manifest_bytes: bytes, name: str | None = None) -> str:
        """Record a manifest whose config and layers are stored (used by ``load``)."""
        manifest = parse_json_document(manifest_bytes, "image manifest")
        config_digest = str(manifest.get("config", {}).get("digest", ""))
        needed = [config_digest] + [str(layer.get("digest", "")) for layer in manifest.get("layers", [])]
        with self.writing():
            for digest in needed:
                if not self.blobs.has(digest):
                    raise StoreError(f"blob {digest} named by the manifest is not in the store")
            info = self.blobs.put_bytes(manifest_bytes)
            if self._needs_image_record(info.digest):
                total = len(manifest_bytes) + sum(self.blobs.size(digest) for digest in needed)
                media_type = str(manifest.get("mediaType", MEDIA_TYPE_MANIFEST))
                self.meta.add_image(info.digest, media_type, config_digest, total)
            if name is not None:
                self._set_ref(parse_reference(name), info.digest)
        return info.digest

    def put_index(self, manifests: Sequence[tuple[str, Platform]], name: str | None = None) -> str:
        """Record an OCI index over stored image manifests, one per platform; return its digest.

        A multi-platform build names the index, not any one manifest, so ``push`` and the
        archives carry every platform and :meth:`resolve_for` picks one for a ``FROM``.
        """
        entries: list[JsonObject] = []
        for digest, platform in manifests:
            if self.meta.image(digest) is None:
                raise StoreError(f"image manifest {digest} is not in the store")
            entry: JsonObject = {
                "mediaType": MEDIA_TYPE_MANIFEST,
                "digest": digest,
                "size": self.blobs.size(digest),
                "platform": {"architecture": platform.architecture, "os": platform.os},
            }
            if platform.variant:
                entry["platform"]["variant"] = platform.variant
            entries.append(entry)
        index = {"schemaVersion": 2, "mediaType": MEDIA_TYPE_INDEX, "manifests": entries}
        payload = json.dumps(index, separators=(",", ":")).encode()
        with self.writing():
            info = self.blobs.put_bytes(payload)
            records = [self.meta.image(digest) for digest, _ in manifests]
            total = len(payload) + sum(record.size for record in records if record is not None)
            self.meta.add_image(info.digest, MEDIA_TYPE_INDEX, "", total)
            if name is not None:
                self._set_ref(parse_reference(name), info.digest)
        return info.digest

    def index_entries(self, digest: str) -> list[JsonObject] | None:
        """The ``manifests`` of a stored index, or None when ``digest`` is a single image.

        Only the entries whose image is stored: a pulled index lists platforms that were
        not pulled (see :mod:`builder.registry.pulled_index`)."""
        document = parse_json_document(self.blobs.read_bytes(digest), "image manifest")
        if document.get("mediaType") != MEDIA_TYPE_INDEX and "manifests" not in document:
            return None
        entries = [dict(entry) for entry in document.get("manifests", [])]
        return [entry for entry in entries if self.meta.image(str(entry.get("digest", ""))) is not None]

    def resolve_for(self, ref: str, platform: Platform | None = None) -> str:
        """Like :meth:`resolve`, but an index resolves to its manifest for ``platform``
        (this machine's platform when None, else the index's first manifest)."""
        digest = self.resolve(ref)
        record = self.meta.image(digest)
        if record is None or record.media_type not in (MEDIA_TYPE_INDEX, _DOCKER_MANIFEST_LIST):
            return digest
        # Only an index needs the OCI model parsed (a single image, the usual FROM, does not).
        from builder.oci.model import Index, parse_manifest_or_index
        from builder.registry.platforms import host_platform, select_manifest

        index = parse_manifest_or_index(self.blobs.read_bytes(digest))
        if not isinstance(index, Index):
            raise StoreError(f"{digest} is recorded as an image index but is not one")
        entry = select_manifest(index, platform or host_platform())
        if entry is not None and self.meta.image(entry.digest) is not None:
            return entry.digest
        stored = [item for item in index.manifests if self.meta.image(item.digest) is not None]
        if entry is not None and platform is not None:  # a pulled index's platform not pulled
            raise StoreError(f"{ref} was not pulled for {platform}")
        if platform is None and stored:
            return stored[0].digest
        offered = ", ".join(str(item.platform) for item in index.manifests if item.platform) or "none"
        raise StoreError(f"{ref} has no image for {platform} (it offers {offered})")

    def resolve(self, ref: str) -> str:
        """The manifest digest of a name, an image id (config digest), a manifest digest, or a
        unique prefix of an image id; raise :class:`StoreError` when nothing matches."""
        if is_digest(ref):
            if self.meta.image(ref) is not None:  # a manifest digest: one indexed lookup
                return ref
            for image in self.meta.images():
                if ref in (image.digest, image.config_digest):
                    return image.digest
        try:
            reference = parse_reference(ref)
        except UsageError:
            reference = None
        if reference is not None:
            record = self.meta.ref(str(reference))
            if record is not None:
                return record.digest
            if reference.digest is not None and self.meta.image(reference.digest) is not None:
                return reference.digest
        prefix = ref.removeprefix("sha256:").lower()
        if len(prefix) >= _SHORT_ID_MIN and all(ch in "0123456789abcdef" for ch in prefix):
            images = self.meta.images()  # only now: a name is found without reading every image
            found = {image.digest for image in images if image.config_digest[7:].startswith(prefix)}
            if len(found) == 1:
                return found.pop()
            if len(found) > 1:
                raise StoreError(f"image id prefix {ref!r} is ambiguous")
        raise StoreError(f"no such image: {ref}")

    def get_image(self, ref: str) -> tuple[JsonObject, JsonObject]:
        """The manifest and config (parsed JSON) of an image named by ``ref``."""
        manifest = self.manifest(self.resolve_for(ref))
        config = parse_json_document(self.blobs.read_bytes(manifest["config"]["digest"]), "image config")
        return manifest, config

    def manifest(self, digest: str) -> JsonObject:
        return parse_json_document(self.blobs.read_bytes(digest), "image manifest")

    def layers(self, manifest: JsonObject, config: JsonObject) -> list[StoredLayer]:
        """The manifest's layers paired with the config's diff ids, bottom first."""
        descriptors = manifest.get("layers", [])
        diff_ids = config.get("rootfs", {}).get("diff_ids", [])
        if len(descriptors) != len(diff_ids):
            raise StoreError(
                f"image has {len(descriptors)} layers but its config lists {len(diff_ids)} diff ids"
            )
        return [
            StoredLayer(str(desc["digest"]), str(diff_id), int(desc["size"]), str(desc["mediaType"]))
            for desc, diff_id in zip(descriptors, diff_ids, strict=True)
        ]

    def tag(self, source: str, target: str) -> Reference:
        """Point the name ``target`` at the image ``source`` names; return the new reference."""
        reference = parse_reference(target)
        if reference.digest is not None:
            raise StoreError(f"cannot tag with a digest reference: {target}")
        with self.writing():
            self._set_ref(reference, self.resolve(source))
        return reference

    def untag(self, name: str) -> RefRecord | None:
        """Remove a name; forget the image too when no name is left. Return the removed ref."""
        reference = parse_reference(name)
        record = self.meta.ref(str(reference))
        if record is None:
            return None
        self.meta.delete_ref(record.name)
        if not self.meta.refs_to(record.digest):
            self.meta.delete_image(record.digest)
        self.write_index()
        return record

    def remove_image(self, digest: str) -> list[RefRecord]:
        """Forget an image and every name pointing at it; its blobs go at the next prune."""
        removed = self.meta.refs_to(digest)
        for record in removed:
            self.meta.delete_ref(record.name)
        self.meta.delete_image(digest)
        self.write_index()
        return removed

    def images(self) -> list[ImageSummary]:
        """Every named image, then every dangling one, as ``docker images`` lists them."""
        summaries: list[ImageSummary] = []
        named: set[str] = set()
        records = {image.digest: image for image in self.meta.images()}
        for ref in self.meta.refs():
            image = records.get(ref.digest)
            if image is None:
                continue
            named.add(ref.digest)
            summaries.append(
                ImageSummary(
                    parse_reference(ref.name),
                    ref.digest,
                    image.config_digest or image.digest,  # an index has no config: its own id
                    self._created(image.config_digest),
                    image.size,
                )
            )
        for image in records.values():  # a named index's platform images show through it
            if (
                image.media_type == MEDIA_TYPE_INDEX
                and image.digest in named
                and self.blobs.has(image.digest)
            ):
                named |= {str(entry["digest"]) for entry in self.index_entries(image.digest) or []}
        for image in records.values():
            if image.digest not in named:
                summaries.append(
                    ImageSummary(
                        None,
                        image.digest,
                        image.config_digest or image.digest,
                        self._created(image.config_digest),
                        image.size,
                    )
                )
        return summaries

    def snapshot_for(self, ref: str) -> list[Path]:
        """The image's snapshot directories, bottom layer first, unpacking those not yet done."""
        manifest, config = self.get_image(ref)
        layers = self.layers(manifest, config)
        chains = chain_ids([layer.diff_id for layer in layers])
        paths: list[Path] = []
        parent = ""
        for layer, chain_id in zip(layers, chains, strict=True):
            paths.append(self.snapshots.ensure(chain_id, parent, layer.diff_id, layer.digest))
            parent = chain_id
        return paths

    # the root layout ---------------------------------------------------------------------

    def write_index(self) -> None:
        """Rewrite ``index.json`` from the refs, so outside tools see every tagged image."""
        with file_lock(self.root / "index.lock", exclusive=True):
            entries: list[JsonObject] = []
            for ref in self.meta.refs():
                if not self.blobs.has(ref.digest):
                    continue
                reference = parse_reference(ref.name)
                image = self.meta.image(ref.digest)
                entry: JsonObject = {
                    "mediaType": image.media_type if image is not None else MEDIA_TYPE_MANIFEST,
                    "digest": ref.digest,
                    "size": self.blobs.size(ref.digest),
                    "annotations": {
                        ANNOTATION_IMAGE_NAME: str(reference),
                        ANNOTATION_REF_NAME: reference.familiar(),
                    },
                }
                entries.append(entry)
            index = {"schemaVersion": 2, "mediaType": MEDIA_TYPE_INDEX, "manifests": entries}
            write_durably(self.root / "index.json", json.dumps(index, indent=2).encode())

    def _needs_image_record(self, digest: str) -> bool:
        """Whether the image needs its record written: it has none, or one last used more
        than :data:`IMAGE_LAST_USED_GRANULARITY` ago."""
        record = self.meta.image(digest)
        return record is None or time.time() - record.last_used >= IMAGE_LAST_USED_GRANULARITY

    def _set_ref(self, reference: Reference, digest: str) -> None:
        """Point the name at ``digest`` and rewrite ``index.json``; nothing when it already
        does (a rebuild that gave the same image writes nothing, so fsyncs nothing)."""
        current = self.meta.ref(str(reference))
        unchanged = (digest, "", "")  # what set_ref records
        if current is not None and (current.digest, current.platform, current.index_digest) == unchanged:
            return
        self.meta.set_ref(str(reference), digest)
        self.write_index()

    def _created(self, config_digest: str) -> str:
        try:
            config = parse_json_document(self.blobs.read_bytes(config_digest), "image config")
        except StoreError:
            return ""
        return str(config.get("created", ""))

    def _config_bytes(
        self, config: ImageConfig | Mapping[str, Any] | bytes, layers: Sequence[LayerLike]
    ) -> bytes:
        diff_ids = [layer.diff_id for layer in layers]
        if isinstance(config, bytes):
            parsed = parse_json_document(config, "image config")
            if parsed.get("rootfs", {}).get("diff_ids", []) != diff_ids:
                raise StoreError("the image config's rootfs.diff_ids do not match its layers")
            return config
        document = dict(config.to_mapping() if isinstance(config, ImageConfig) else config)
        document["rootfs"] = {"type": "layers", "diff_ids": diff_ids}
        return json.dumps(document, separators=(",", ":")).encode()


def parse_json_document(payload: bytes, what: str) -> JsonObject:
    """A stored manifest, index or config as a JSON object; :class:`StoreError` naming
    ``what`` when it is not one."""
    try:
        document = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as err:
        raise StoreError(f"{what} is not valid JSON: {err}") from err
    if not isinstance(document, dict):
        raise StoreError(f"{what} is not a JSON object")
    return document
