"""validate_image: a manifest, its config and its layers agree, or every mismatch is listed."""

from __future__ import annotations

import dataclasses

import pytest

from builder.errors import ImageFormatError
from builder.oci import mediatypes
from builder.oci.digest import sha256_digest
from builder.oci.model import Descriptor, History, ImageConfig, Manifest, RootFS
from builder.oci.validate import image_problems, validate_image

DIFFS = (sha256_digest(b"a"), sha256_digest(b"b"))


def _image(
    *, history: tuple[History, ...] | None = None, layer_type: str = mediatypes.OCI_LAYER_GZIP
) -> tuple[Manifest, bytes]:
    if history is None:
        history = (History(created_by="ADD"), History(created_by="ENV", empty_layer=True), History())
    config_json = ImageConfig(
        architecture="amd64", os="linux", rootfs=RootFS(DIFFS), history=history
    ).to_json()
    layers = tuple(Descriptor(layer_type, sha256_digest(b"blob" + diff.encode()), 9) for diff in DIFFS)
    return Manifest(config=Descriptor.of(mediatypes.OCI_CONFIG, config_json), layers=layers), config_json


def test_consistent_image_passes() -> None:
    manifest, config_json = _image()
    assert image_problems(manifest, config_json, DIFFS) == []
    validate_image(manifest, config_json)
    validate_image(manifest.to_docker(), config_json)


def test_every_problem_is_reported() -> None:
    manifest, config_json = _image(history=(History(),))
    short = dataclasses.replace(manifest, layers=manifest.layers[:1])
    wrong_config = dataclasses.replace(short.config, media_type=mediatypes.OCI_LAYER, size=1)

    problems = image_problems(dataclasses.replace(short, config=wrong_config), config_json, DIFFS[::-1])

    assert problems == [
        f"config size is {len(config_json)}, manifest says 1",
        f"config media type {mediatypes.OCI_LAYER} is not an image config",
        "config has 2 diff_ids for 1 layers",
        "history has 1 non-empty entries for 2 diff_ids",
        f"layer 0 unpacks to {DIFFS[1]}, config says {DIFFS[0]}",
        f"layer 1 unpacks to {DIFFS[0]}, config says {DIFFS[1]}",
    ]


def test_config_digest_mismatch() -> None:
    manifest, config_json = _image()
    problems = image_problems(manifest, config_json + b" ")
    assert problems[0].startswith(f"config digest is {sha256_digest(config_json + b' ')}")
    assert problems[1] == f"config size is {len(config_json) + 1}, manifest says {len(config_json)}"


def test_history_must_match_layers() -> None:
    manifest, config_json = _image(history=(History(), History(), History()))
    assert image_problems(manifest, config_json) == ["history has 3 non-empty entries for 2 diff_ids"]


def test_layer_types_must_be_layers_of_one_family() -> None:
    manifest, config_json = _image(layer_type=mediatypes.DOCKER_LAYER_GZIP)
    with pytest.raises(ImageFormatError, match="mixes OCI and Docker families"):
        validate_image(manifest, config_json)
    manifest, config_json = _image(layer_type="text/plain")
    assert image_problems(manifest, config_json)[0] == "layer 0 has media type text/plain, not a layer type"


def test_malformed_config_is_a_problem() -> None:
    manifest, _ = _image()
    problems = image_problems(manifest, b"{}")
    assert problems[-1] == "image config: field 'architecture' is missing"
