"""``kiln pin``, ``kiln push`` and ``kiln pull`` from the command line, against a real registry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from builder.cli.main import main
from builder.oci.mediatypes import OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD
from builder.registry import push_image
from builder.store import Store
from tests.fixtures.registry_images import add_file_layer, import_busybox

if TYPE_CHECKING:
    from tests.fixtures.registry import RunningRegistry

pytest_plugins = ["tests.fixtures.registry"]
pytestmark = pytest.mark.usefixtures("registry_isolation")


def test_pin_rewrites_images_in_place_and_check_finds_stale_pins(
    registry: RunningRegistry, store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base_ref = f"{registry.host}/kiln/base:1"
    app_ref = f"{registry.host}/kiln/app"
    import_busybox(store, base_ref)
    base_digest = push_image(store, base_ref)
    add_file_layer(store, base_ref, f"{app_ref}:latest", "a.txt", b"one\n")
    app_digest = push_image(store, f"{app_ref}:latest")
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(
        "# syntax=docker/dockerfile:1\n"
        "# the base, pinned by kiln pin\n"
        f"FROM --platform=$BUILDPLATFORM {base_ref} AS build\n"
        "RUN echo hi \\\n"
        "  && echo there\n"
        f"COPY --from={app_ref} \\\n"
        "     /a.txt /a.txt\n"
        "FROM build\n"
        "COPY --from=build /a.txt /b.txt\n"
        "FROM scratch\n"
    )

    assert main(["pin", "-f", str(dockerfile), "--check"]) == 1
    assert main(["pin", "-f", str(dockerfile)]) == 0

    assert dockerfile.read_text() == (
        "# syntax=docker/dockerfile:1\n"
        "# the base, pinned by kiln pin\n"
        f"FROM --platform=$BUILDPLATFORM {base_ref}@{base_digest} AS build\n"
        "RUN echo hi \\\n"
        "  && echo there\n"
        f"COPY --from={app_ref}:latest@{app_digest} \\\n"
        "     /a.txt /a.txt\n"
        "FROM build\n"
        "COPY --from=build /a.txt /b.txt\n"
        "FROM scratch\n"
    )
    capsys.readouterr()
    assert main(["pin", "-f", str(dockerfile), "--check"]) == 0

    add_file_layer(store, base_ref, base_ref, "new.txt", b"newer\n")
    new_digest = push_image(store, base_ref)
    assert main(["pin", "-f", str(dockerfile), "--check"]) == 1
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"{dockerfile}:3: stale: {base_ref}@{base_digest} -> {base_ref}@{new_digest}"
    )


def test_cli_push_and_pull(
    registry: RunningRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = f"{registry.host}/kiln/cli:1"
    with Store.open(tmp_path / "cli-store") as store:
        digest = import_busybox(store, ref)
    assert main(["--root", str(tmp_path / "cli-store"), "push", ref]) == 0
    assert capsys.readouterr().out == f"{digest}\n"
    assert main(["--root", str(tmp_path / "cli-pulled"), "pull", "--platform", "linux/amd64", ref]) == 0
    captured = capsys.readouterr()
    assert captured.out == f"{ref}\n"
    assert f"Digest: {digest}" in captured.err
    assert main(["--root", str(tmp_path / "cli-pulled"), "pull", f"{registry.host}/kiln/missing:1"]) == 1
    assert capsys.readouterr().err == (
        f"error: not found: {registry.host}/kiln/missing:1 does not exist on {registry.host} (404): "
        "MANIFEST_UNKNOWN manifest unknown\n"
    )


def test_build_outputs_to_a_registry_and_pushes_its_tags(
    registry: RunningRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``kiln build -o type=registry,name=REF`` and ``--push -t REF`` leave the built image in
    the registry under those names: the image kiln stored (its config), the built layer
    gzipped on the way out (``-o ...,compression=zstd`` makes it zstd)."""
    from tests.conftest import require_root

    require_root("kiln build runs a container")
    root = tmp_path / "store"
    with Store.open(root) as store:
        import_busybox(store, "busybox:latest")
    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM busybox\nRUN echo built > /built\n")
    output_ref = f"{registry.host}/kiln/output:1"
    pushed_ref = f"{registry.host}/kiln/pushed:1"
    metadata_file = tmp_path / "metadata.json"
    argv = [
        "--root",
        str(root),
        "build",
        "-q",
        "-t",
        pushed_ref,
        "--push",
        "--metadata-file",
        str(metadata_file),
    ]
    argv += ["-o", f"type=registry,name={output_ref},compression=zstd", str(context)]
    assert main(argv) == 0
    capsys.readouterr()
    pushed_digests = json.loads(metadata_file.read_text())["pushed"]
    assert sorted(pushed_digests) == sorted([output_ref, pushed_ref])
    with Store.open(root) as store:
        built = store.manifest(store.resolve(pushed_ref))
    assert built["layers"][-1]["mediaType"] == OCI_LAYER  # the store keeps it uncompressed
    for ref, media_type in ((output_ref, OCI_LAYER_ZSTD), (pushed_ref, OCI_LAYER_GZIP)):
        pulled_root = tmp_path / ref.rsplit("/", 1)[-1].replace(":", "-")
        assert main(["--root", str(pulled_root), "pull", ref]) == 0
        capsys.readouterr()
        with Store.open(pulled_root) as pulled:
            assert pulled.resolve(ref) == pushed_digests[ref]  # the metadata names what was pushed
            manifest = pulled.manifest(pulled.resolve(ref))
            assert manifest["config"] == built["config"]
            assert [layer["mediaType"] for layer in manifest["layers"]] == [OCI_LAYER_GZIP, media_type]


def test_a_registry_output_needs_a_name() -> None:
    assert main(["build", "-o", "type=registry", "."]) == 2
