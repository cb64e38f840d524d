"""Check that a manifest, its config and its layers describe one consistent image.

Run on everything kiln writes (tests call it on every image they produce) and on what it
reads from outside before use, like go-containerregistry's ``validate`` package. Problems
are collected and reported together, so one run shows every inconsistency.
"""

from __future__ import annotations

from collections.abc import Sequence

from builder.errors import ImageFormatError
from builder.oci import mediatypes
from builder.oci.config import ImageConfig
from builder.oci.digest import Digest, sha256_digest
from builder.oci.model import Manifest


def image_problems(
    manifest: Manifest,
    config_json: bytes,
    layer_diff_ids: Sequence[Digest] | None = None,
) -> list[str]:
    """Every inconsistency found, as sentences; empty when the image is sound.

    ``layer_diff_ids`` are the uncompressed digests of the layer blobs when the caller has
    computed them (while unpacking or writing); then they must equal ``rootfs.diff_ids``.
    """
    problems: list[str] = []
    config_digest = sha256_digest(config_json)
    if config_digest != manifest.config.digest:
        problems.append(f"config digest is {config_digest}, manifest says {manifest.config.digest}")
    if len(config_json) != manifest.config.size:
        problems.append(f"config size is {len(config_json)}, manifest says {manifest.config.size}")
    if manifest.config.media_type not in mediatypes.CONFIG_TYPES:
        problems.append(f"config media type {manifest.config.media_type} is not an image config")
    docker = manifest.is_docker
    for index, layer in enumerate(manifest.layers):
        if layer.media_type not in mediatypes.LAYER_TYPES:
            problems.append(f"layer {index} has media type {layer.media_type}, not a layer type")
        elif (layer.media_type in _DOCKER_TYPES) != docker:
            problems.append(f"layer {index} media type {layer.media_type} mixes OCI and Docker families")
    try:
        config = ImageConfig.from_json(config_json)
    except ImageFormatError as err:
        problems.append(str(err))
        return problems
    diff_ids = config.rootfs.diff_ids
    if len(diff_ids) != len(manifest.layers):
        problems.append(f"config has {len(diff_ids)} diff_ids for {len(manifest.layers)} layers")
    if config.history:
        layered = sum(1 for entry in config.history if not entry.empty_layer)
        if layered != len(diff_ids):
            problems.append(f"history has {layered} non-empty entries for {len(diff_ids)} diff_ids")
    if layer_diff_ids is not None and tuple(layer_diff_ids) != diff_ids:
        for index, (found, expected) in enumerate(zip(layer_diff_ids, diff_ids, strict=False)):
            if found != expected:
                problems.append(f"layer {index} unpacks to {found}, config says {expected}")
        if len(layer_diff_ids) != len(diff_ids):
            problems.append(f"{len(layer_diff_ids)} layers unpacked for {len(diff_ids)} diff_ids")
    return problems


_DOCKER_TYPES = frozenset(
    {mediatypes.DOCKER_LAYER, mediatypes.DOCKER_LAYER_GZIP, mediatypes.DOCKER_FOREIGN_LAYER_GZIP}
)


def validate_image(
    manifest: Manifest,
    config_json: bytes,
    layer_diff_ids: Sequence[Digest] | None = None,
) -> None:
    """Raise :class:`ImageFormatError` listing every problem :func:`image_problems` finds."""
    problems = image_problems(manifest, config_json, layer_diff_ids)
    if problems:
        raise ImageFormatError("inconsistent image:\n  " + "\n  ".join(problems))
