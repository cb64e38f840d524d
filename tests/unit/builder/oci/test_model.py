"""The image model: JSON round trips in both families, and refusals that name the field."""

from __future__ import annotations

import json
from collections.abc import Mapping

import pytest

from builder.errors import ImageFormatError
from builder.graph import Platform
from builder.oci import mediatypes
from builder.oci.digest import sha256_digest
from builder.oci.model import (
    ContainerConfig,
    Descriptor,
    HealthConfig,
    History,
    ImageConfig,
    Index,
    Manifest,
    RootFS,
    parse_manifest_or_index,
)

DIFF_A = sha256_digest(b"layer a")
DIFF_B = sha256_digest(b"layer b")

DOCKER_STYLE_CONFIG: dict[str, object] = {
    "architecture": "arm64",
    "os": "linux",
    "variant": "v8",
    "created": "2024-01-02T03:04:05Z",
    "docker_version": "24.0.0",
    "container_config": {"Hostname": "abc"},
    "config": {
        "Hostname": "",
        "User": "app:app",
        "ExposedPorts": {"80/tcp": {}, "443/tcp": {}},
        "Env": ["PATH=/usr/bin", "A=1"],
        "Entrypoint": ["/entry"],
        "Cmd": None,
        "Volumes": {"/data": {}},
        "WorkingDir": "/srv",
        "Labels": {"org.opencontainers.image.title": "t"},
        "StopSignal": "SIGTERM",
        "Healthcheck": {"Test": ["CMD", "true"], "Interval": 30_000_000_000, "Retries": 3},
        "Shell": ["/bin/bash", "-c"],
        "OnBuild": ["RUN echo hi"],
        "ArgsEscaped": True,
    },
    "rootfs": {"type": "layers", "diff_ids": [DIFF_A, DIFF_B]},
    "history": [
        {"created": "2024-01-02T03:04:05Z", "created_by": "ADD rootfs.tar /", "comment": "buildkit"},
        {"created_by": "ENV A=1", "empty_layer": True},
        {"created_by": "RUN make"},
    ],
}


def test_config_reads_every_field() -> None:
    config = ImageConfig.from_json(json.dumps(DOCKER_STYLE_CONFIG).encode())

    assert config.platform == Platform("linux", "arm64", "v8")
    assert config.config == ContainerConfig(
        user="app:app",
        exposed_ports=("443/tcp", "80/tcp"),
        env=("PATH=/usr/bin", "A=1"),
        entrypoint=("/entry",),
        cmd=None,
        volumes=("/data",),
        working_dir="/srv",
        labels={"org.opencontainers.image.title": "t"},
        stop_signal="SIGTERM",
        healthcheck=HealthConfig(test=("CMD", "true"), interval=30_000_000_000, retries=3),
        shell=("/bin/bash", "-c"),
        on_build=("RUN echo hi",),
        args_escaped=True,
    )
    assert config.rootfs == RootFS(diff_ids=(DIFF_A, DIFF_B))
    assert config.history[1] == History(created_by="ENV A=1", empty_layer=True)
    assert config.history[0].comment == "buildkit"


def test_config_writes_canonical_json_and_round_trips() -> None:
    config = ImageConfig.from_json(json.dumps(DOCKER_STYLE_CONFIG).encode())
    document = config.to_json()

    assert ImageConfig.from_json(document) == config
    assert document == json.dumps(json.loads(document), sort_keys=True, separators=(",", ":")).encode()
    parsed = json.loads(document)
    assert "docker_version" not in parsed and "container_config" not in parsed
    assert parsed["config"]["ExposedPorts"] == {"443/tcp": {}, "80/tcp": {}}
    assert "Cmd" not in parsed["config"]
    assert parsed["history"][1] == {"created_by": "ENV A=1", "empty_layer": True}


def test_empty_list_is_kept_apart_from_unset() -> None:
    config = ContainerConfig(entrypoint=())
    assert config.to_mapping() == {"Entrypoint": []}
    assert ContainerConfig.from_mapping({"Entrypoint": []}).entrypoint == ()
    assert ContainerConfig.from_mapping({}).entrypoint is None


def test_with_changes_replaces_whole_fields_and_validates() -> None:
    base = ContainerConfig(env=("A=1",), cmd=("sh",))
    changed = base.with_changes([("Env", ["A=1", "B=2"]), ("Cmd", None), ("WorkingDir", "/app")])

    assert changed == ContainerConfig(env=("A=1", "B=2"), working_dir="/app")
    with pytest.raises(ImageFormatError, match="'Env' must be a list of strings"):
        base.with_changes([("Env", "A=1")])


def test_with_layer_appends_diff_id_and_history() -> None:
    config = ImageConfig(architecture="amd64", os="linux")
    grown = config.with_layer(DIFF_A, History(created_by="RUN x", empty_layer=True))

    assert grown.rootfs.diff_ids == (DIFF_A,)
    assert grown.history == (History(created_by="RUN x"),)


def _changed(document: Mapping[str, object], change: Mapping[str, object]) -> dict[str, object]:
    """A copy of ``document`` with ``change`` applied: a value of None drops its field."""
    changed = dict(document)
    for key, value in change.items():
        if value is None:
            changed.pop(key)
        else:
            changed[key] = value
    return changed


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"architecture": None}, "'architecture' is missing"),
        ({"os": 3}, "'os' must be a string"),
        ({"rootfs": None}, "'rootfs' is missing"),
        ({"rootfs": {"type": "tarball", "diff_ids": []}}, "type must be 'layers'"),
        ({"rootfs": {"type": "layers", "diff_ids": ["sha256:abc"]}}, "rootfs.diff_ids: invalid digest"),
        ({"config": {"Env": "A=1"}}, "image config.config: field 'Env' must be a list of strings"),
        ({"config": {"Labels": {"a": 1}}}, "'Labels' must be an object of strings"),
        ({"config": {"ExposedPorts": ["80/tcp"]}}, "'ExposedPorts' must be an object"),
        ({"config": {"Healthcheck": {"Retries": "3"}}}, "'Retries' must be an integer"),
        ({"history": [{"empty_layer": "yes"}]}, r"history\[0\]: field 'empty_layer' must be true or false"),
        ({"history": {}}, "'history' must be a list"),
    ],
)
def test_config_validation_names_the_field(change: dict[str, object], message: str) -> None:
    document = _changed(DOCKER_STYLE_CONFIG, change)
    with pytest.raises(ImageFormatError, match=message):
        ImageConfig.from_json(json.dumps(document).encode())


@pytest.mark.parametrize("document", [b"", b"[]", b"{", b"\xff"])
def test_non_objects_are_refused(document: bytes) -> None:
    with pytest.raises(ImageFormatError, match="image config"):
        ImageConfig.from_json(document)


def _manifest() -> Manifest:
    config_json = ImageConfig(architecture="amd64", os="linux", rootfs=RootFS((DIFF_A,))).to_json()
    return Manifest(
        config=Descriptor.of(mediatypes.OCI_CONFIG, config_json),
        layers=(Descriptor(mediatypes.OCI_LAYER_GZIP, sha256_digest(b"blob"), 4, annotations={"a": "b"}),),
        annotations={"org.opencontainers.image.ref.name": "v1"},
    )


def test_manifest_round_trips_in_both_families() -> None:
    manifest = _manifest()
    docker = manifest.to_docker()

    assert Manifest.from_json(manifest.to_json()) == manifest
    assert Manifest.from_json(docker.to_json()) == docker
    assert docker.is_docker and not manifest.is_docker
    assert docker.config.media_type == mediatypes.DOCKER_CONFIG
    assert docker.layers[0].media_type == mediatypes.DOCKER_LAYER_GZIP
    assert docker.layers[0].annotations == {} and docker.annotations == {}
    assert docker.to_oci().layers[0].media_type == mediatypes.OCI_LAYER_GZIP
    assert json.loads(docker.to_json())["schemaVersion"] == 2


def test_zstd_layer_has_no_docker_form() -> None:
    manifest = Manifest(
        config=_manifest().config,
        layers=(Descriptor(mediatypes.OCI_LAYER_ZSTD, DIFF_A, 1),),
    )
    with pytest.raises(ImageFormatError, match="no Docker schema 2 equivalent"):
        manifest.to_docker()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"schemaVersion": 1}, "schemaVersion must be 2, not 1"),
        ({"mediaType": mediatypes.OCI_INDEX}, "is not an image manifest"),
        ({"config": None}, "'config' is missing"),
        ({"config": {"mediaType": mediatypes.OCI_CONFIG, "size": 1}}, "'digest' is missing"),
        ({"config": {"mediaType": mediatypes.OCI_CONFIG, "digest": "sha256:x", "size": 1}}, "invalid digest"),
        ({"config": {"mediaType": mediatypes.OCI_CONFIG, "digest": DIFF_A, "size": -1}}, "'size'"),
        ({"layers": [{"mediaType": 5, "digest": DIFF_A, "size": 1}]}, r"layers\[0\]: field 'mediaType'"),
    ],
)
def test_manifest_validation_names_the_field(change: dict[str, object], message: str) -> None:
    document = _changed(_manifest().to_mapping(), change)
    with pytest.raises(ImageFormatError, match=message):
        Manifest.from_json(json.dumps(document).encode())


def test_index_round_trips_and_selects_platform() -> None:
    amd64 = Descriptor(mediatypes.OCI_MANIFEST, DIFF_A, 10, platform=Platform("linux", "amd64"))
    arm = Descriptor(mediatypes.OCI_MANIFEST, DIFF_B, 20, platform=Platform("linux", "arm64", "v8"))
    index = Index(manifests=(amd64, arm))

    assert Index.from_json(index.to_json()) == index
    assert Index.from_json(index.to_docker().to_json()).media_type == mediatypes.DOCKER_MANIFEST_LIST
    assert index.for_platform(Platform("linux", "arm64")) == arm
    assert index.for_platform(Platform("linux", "arm64", "v8")) == arm
    assert index.for_platform(Platform("linux", "amd64", "v2")) == amd64
    assert index.for_platform(Platform("linux", "s390x")) is None


def test_parse_manifest_or_index_decides_by_type_then_shape() -> None:
    manifest = _manifest()
    index = Index(manifests=(Descriptor.of(mediatypes.OCI_MANIFEST, manifest.to_json()),))
    untyped_index = {key: value for key, value in index.to_mapping().items() if key != "mediaType"}
    untyped_manifest = {key: value for key, value in manifest.to_mapping().items() if key != "mediaType"}

    assert parse_manifest_or_index(manifest.to_json()) == manifest
    assert parse_manifest_or_index(index.to_docker().to_json()) == index.to_docker()
    assert isinstance(parse_manifest_or_index(json.dumps(untyped_index).encode()), Index)
    assert parse_manifest_or_index(json.dumps(untyped_manifest).encode()) == manifest
