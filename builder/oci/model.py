"""The image model: descriptors, manifests, indexes and the image config, read and written.

Both families are read: OCI image-spec v1 and Docker image manifest v2 schema 2 (whose
documents have the same shape with other media types). A document is written in the family
its ``media_type`` names; :meth:`Manifest.to_docker` / :meth:`Manifest.to_oci` convert.

Every ``to_json`` gives canonical bytes: keys sorted, compact, UTF-8 (see
:func:`builder.oci._fields.canonical_json`), so equal values always hash to equal digests.
Every ``from_json`` validates types and digests and raises
:class:`~builder.errors.ImageFormatError` naming the field at fault.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import field

from builder.errors import ImageFormatError
from builder.graph import Platform
from builder.lazyclasses import dataclass
from builder.oci import mediatypes
from builder.oci._fields import Fields, canonical_json, load_object
from builder.oci.config import ContainerConfig, HealthConfig, History, ImageConfig, RootFS
from builder.oci.digest import Digest, sha256_digest

__all__ = [
    "ContainerConfig",
    "Descriptor",
    "HealthConfig",
    "History",
    "ImageConfig",
    "Index",
    "Manifest",
    "RootFS",
    "parse_manifest_or_index",
]


def _platform_mapping(platform: Platform) -> dict[str, object]:
    out: dict[str, object] = {"architecture": platform.architecture, "os": platform.os}
    if platform.variant:
        out["variant"] = platform.variant
    return out


@dataclass(frozen=True)
class Descriptor:
    """A typed pointer to a blob: media type, digest and size (and, in an index, a platform)."""

    media_type: str
    digest: Digest
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict)
    platform: Platform | None = None
    urls: tuple[str, ...] = ()

    def to_mapping(self) -> dict[str, object]:
        out: dict[str, object] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform is not None:
            out["platform"] = _platform_mapping(self.platform)
        if self.urls:
            out["urls"] = list(self.urls)
        return out

    @classmethod
    def from_fields(cls, fields: Fields) -> Descriptor:
        media_type = fields.required_text("mediaType")
        try:
            digest = Digest(fields.required_text("digest"))
        except ImageFormatError as err:
            raise ImageFormatError(f"{fields.where}: {err}") from err
        size = fields.integer("size", default=-1)
        if size < 0:
            raise ImageFormatError(f"{fields.where}: field 'size' is missing or negative")
        platform_fields = fields.child("platform")
        platform = None
        if platform_fields is not None:
            platform = Platform(
                os=platform_fields.required_text("os"),
                architecture=platform_fields.required_text("architecture"),
                variant=platform_fields.text("variant"),
            )
        return cls(
            media_type=media_type,
            digest=digest,
            size=size,
            annotations=fields.string_map("annotations"),
            platform=platform,
            urls=fields.strings("urls") or (),
        )

    @classmethod
    def of(cls, media_type: str, content: bytes) -> Descriptor:
        """The descriptor of a document held in memory (a config or a manifest)."""
        return cls(media_type=media_type, digest=sha256_digest(content), size=len(content))


def _check_schema_version(fields: Fields) -> None:
    version = fields.integer("schemaVersion", default=-1)
    if version != 2:
        raise ImageFormatError(f"{fields.where}: schemaVersion must be 2, not {version}")


@dataclass(frozen=True)
class Manifest:
    """An image manifest: one config and the layers, bottom first."""

    config: Descriptor
    layers: tuple[Descriptor, ...]
    media_type: str = mediatypes.OCI_MANIFEST
    annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_docker(self) -> bool:
        return self.media_type == mediatypes.DOCKER_MANIFEST

    def to_mapping(self) -> dict[str, object]:
        out: dict[str, object] = {
            "schemaVersion": 2,
            "mediaType": self.media_type,
            "config": self.config.to_mapping(),
            "layers": [layer.to_mapping() for layer in self.layers],
        }
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out

    def to_json(self) -> bytes:
        return canonical_json(self.to_mapping())

    @classmethod
    def from_json(cls, document: bytes) -> Manifest:
        fields = Fields(load_object(document, "manifest"), "manifest")
        _check_schema_version(fields)
        media_type = fields.text("mediaType", default=mediatypes.OCI_MANIFEST)
        if media_type not in mediatypes.MANIFEST_TYPES:
            raise ImageFormatError(f"manifest: mediaType {media_type} is not an image manifest")
        config = fields.child("config")
        if config is None:
            raise ImageFormatError("manifest: field 'config' is missing")
        return cls(
            config=Descriptor.from_fields(config),
            layers=tuple(Descriptor.from_fields(layer) for layer in fields.children("layers")),
            media_type=media_type,
            annotations=fields.string_map("annotations"),
        )

    def to_docker(self) -> Manifest:
        """The Docker schema 2 form: same blobs, Docker media types, no annotations."""
        return Manifest(
            config=dataclasses.replace(self.config, media_type=mediatypes.to_docker(self.config.media_type)),
            layers=tuple(
                dataclasses.replace(layer, media_type=mediatypes.to_docker(layer.media_type), annotations={})
                for layer in self.layers
            ),
            media_type=mediatypes.DOCKER_MANIFEST,
        )

    def to_oci(self) -> Manifest:
        """The OCI form: same blobs, OCI media types."""
        return Manifest(
            config=dataclasses.replace(self.config, media_type=mediatypes.to_oci(self.config.media_type)),
            layers=tuple(
                dataclasses.replace(layer, media_type=mediatypes.to_oci(layer.media_type))
                for layer in self.layers
            ),
            media_type=mediatypes.OCI_MANIFEST,
            annotations=self.annotations,
        )


@dataclass(frozen=True)
class Index:
    """An image index (or Docker manifest list): one manifest per platform."""

    manifests: tuple[Descriptor, ...]
    media_type: str = mediatypes.OCI_INDEX
    annotations: Mapping[str, str] = field(default_factory=dict)

    def to_mapping(self) -> dict[str, object]:
        out: dict[str, object] = {
            "schemaVersion": 2,
            "mediaType": self.media_type,
            "manifests": [entry.to_mapping() for entry in self.manifests],
        }
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out

    def to_json(self) -> bytes:
        return canonical_json(self.to_mapping())

    @classmethod
    def from_json(cls, document: bytes) -> Index:
        fields = Fields(load_object(document, "image index"), "image index")
        _check_schema_version(fields)
        media_type = fields.text("mediaType", default=mediatypes.OCI_INDEX)
        if media_type not in mediatypes.INDEX_TYPES:
            raise ImageFormatError(f"image index: mediaType {media_type} is not an index")
        return cls(
            manifests=tuple(Descriptor.from_fields(entry) for entry in fields.children("manifests")),
            media_type=media_type,
            annotations=fields.string_map("annotations"),
        )

    def to_docker(self) -> Index:
        return Index(
            manifests=tuple(
                dataclasses.replace(entry, media_type=mediatypes.to_docker(entry.media_type), annotations={})
                for entry in self.manifests
            ),
            media_type=mediatypes.DOCKER_MANIFEST_LIST,
        )

    def to_oci(self) -> Index:
        return Index(
            manifests=tuple(
                dataclasses.replace(entry, media_type=mediatypes.to_oci(entry.media_type))
                for entry in self.manifests
            ),
            media_type=mediatypes.OCI_INDEX,
            annotations=self.annotations,
        )

    def for_platform(self, platform: Platform) -> Descriptor | None:
        """The first manifest for ``platform``; a missing variant in the entry matches any."""
        for entry in self.manifests:
            found = entry.platform
            if found is None or (found.os, found.architecture) != (platform.os, platform.architecture):
                continue
            if not platform.variant or not found.variant or found.variant == platform.variant:
                return entry
        return None


def parse_manifest_or_index(document: bytes) -> Manifest | Index:
    """A registry answer or an ``index.json`` entry: decide by ``mediaType``, else by shape.

    An OCI document may leave ``mediaType`` out; then ``manifests`` means an index and
    ``config`` a manifest, as the image-spec says.
    """
    fields = Fields(load_object(document, "manifest"), "manifest")
    media_type = fields.text("mediaType")
    if media_type in mediatypes.INDEX_TYPES or (not media_type and fields.has("manifests")):
        return Index.from_json(document)
    return Manifest.from_json(document)
