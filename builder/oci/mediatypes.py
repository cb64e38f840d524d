"""Media types of OCI image-spec v1 and Docker image manifest v2 schema 2, and the mapping between them.

kiln writes OCI types by default and Docker's when exporting for ``docker load`` or a
registry that wants them; it reads both. Docker's schema 2 has no zstd layer type, so a
zstd layer has no Docker form (:func:`to_docker` refuses it).
"""

from __future__ import annotations

from typing import Final

from builder.errors import ImageFormatError

OCI_MANIFEST: Final = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX: Final = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG: Final = "application/vnd.oci.image.config.v1+json"
OCI_LAYER: Final = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP: Final = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD: Final = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_LAYOUT_VERSION: Final = "1.0.0"

DOCKER_MANIFEST: Final = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST: Final = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG: Final = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER: Final = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP: Final = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN_LAYER_GZIP: Final = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

MANIFEST_TYPES: Final = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEX_TYPES: Final = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
CONFIG_TYPES: Final = frozenset({OCI_CONFIG, DOCKER_CONFIG})
LAYER_TYPES: Final = frozenset(
    {OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD, DOCKER_LAYER, DOCKER_LAYER_GZIP, DOCKER_FOREIGN_LAYER_GZIP}
)

_DOCKER_TO_OCI: Final = {
    DOCKER_MANIFEST: OCI_MANIFEST,
    DOCKER_MANIFEST_LIST: OCI_INDEX,
    DOCKER_CONFIG: OCI_CONFIG,
    DOCKER_LAYER: OCI_LAYER,
    DOCKER_LAYER_GZIP: OCI_LAYER_GZIP,
    DOCKER_FOREIGN_LAYER_GZIP: OCI_LAYER_GZIP,
}
_OCI_TO_DOCKER: Final = {
    OCI_MANIFEST: DOCKER_MANIFEST,
    OCI_INDEX: DOCKER_MANIFEST_LIST,
    OCI_CONFIG: DOCKER_CONFIG,
    OCI_LAYER: DOCKER_LAYER,
    OCI_LAYER_GZIP: DOCKER_LAYER_GZIP,
}

_LAYER_COMPRESSION: Final = {
    OCI_LAYER: "none",
    DOCKER_LAYER: "none",
    OCI_LAYER_GZIP: "gzip",
    DOCKER_LAYER_GZIP: "gzip",
    DOCKER_FOREIGN_LAYER_GZIP: "gzip",
    OCI_LAYER_ZSTD: "zstd",
}
_OCI_LAYER_FOR: Final = {"none": OCI_LAYER, "gzip": OCI_LAYER_GZIP, "zstd": OCI_LAYER_ZSTD}


def to_oci(media_type: str) -> str:
    """The OCI form of a Docker media type; OCI and unknown types are returned unchanged."""
    return _DOCKER_TO_OCI.get(media_type, media_type)


def to_docker(media_type: str) -> str:
    """The Docker schema 2 form of an OCI media type; Docker types are returned unchanged."""
    if media_type in _DOCKER_TO_OCI:
        return media_type
    if media_type not in _OCI_TO_DOCKER:
        raise ImageFormatError(f"media type {media_type} has no Docker schema 2 equivalent")
    return _OCI_TO_DOCKER[media_type]


def layer_media_type(compression: str) -> str:
    """The OCI layer media type for ``"none"``, ``"gzip"`` or ``"zstd"``."""
    try:
        return _OCI_LAYER_FOR[compression]
    except KeyError:
        raise ImageFormatError(f"unknown layer compression {compression!r}") from None


def layer_compression(media_type: str) -> str:
    """``"none"``, ``"gzip"`` or ``"zstd"`` for a layer media type of either family."""
    try:
        return _LAYER_COMPRESSION[media_type]
    except KeyError:
        raise ImageFormatError(f"unknown layer media type {media_type}") from None
