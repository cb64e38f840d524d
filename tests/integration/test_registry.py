"""Pull and push against a real distribution registry on loopback (Debian's docker-registry).

Images are made in the test: a busybox root filesystem imported into a store, and images
built on it with one more layer. Every pulled image is checked by digest, by the store's
own verification and by skopeo reading the registry.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from builder.cli.main import main
from builder.errors import RegistryError
from builder.events import Event, TransferProgress
from builder.export.rootfs_import import import_rootfs
from builder.graph import Platform
from builder.oci import mediatypes
from builder.registry import ensure_image, host_platform, pull_image, push_image, resolve_digest, save_login
from builder.registry.credentials import Credentials
from builder.store import Store, StoredLayer

if TYPE_CHECKING:
    from tests.fixtures.registry import RunningRegistry, TokenServer

pytest_plugins = ["tests.fixtures.registry"]

BUSYBOX = Path("/bin/busybox")


@pytest.fixture(autouse=True)
def isolated_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the real ~/.docker, kiln login or registries file."""
    monkeypatch.setenv("KILN_AUTH_FILE", str(tmp_path / "kiln-auth.json"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    monkeypatch.setenv("KILN_REGISTRIES_CONFIG", str(tmp_path / "registries.json"))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "store") as opened:
        yield opened


@pytest.fixture
def fresh_store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "fresh-store") as opened:
        yield opened


def busybox_rootfs_tar() -> bytes:
    if not BUSYBOX.is_file():
        pytest.skip("/bin/busybox is missing (busybox-static)")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for directory in ("bin", "etc", "tmp"):
            entry = tarfile.TarInfo(directory)
            entry.type, entry.mode = tarfile.DIRTYPE, 0o755
            archive.addfile(entry)
        entry = tarfile.TarInfo("bin/busybox")
        entry.size, entry.mode = BUSYBOX.stat().st_size, 0o755
        with BUSYBOX.open("rb") as binary:
            archive.addfile(entry, binary)
        entry = tarfile.TarInfo("bin/sh")
        entry.type, entry.linkname = tarfile.SYMTYPE, "busybox"
        archive.addfile(entry)
    return buffer.getvalue()


def import_busybox(store: Store, name: str) -> str:
    return import_rootfs(store, io.BytesIO(busybox_rootfs_tar()), name)


def add_file_layer(store: Store, base: str, name: str, file_name: str, content: bytes) -> str:
    """A new image: ``base`` plus one gzip layer holding ``file_name``; return its digest."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        entry = tarfile.TarInfo(file_name)
        entry.size, entry.mode = len(content), 0o644
        archive.addfile(entry, io.BytesIO(content))
    layer_tar = buffer.getvalue()
    compressed = gzip.compress(layer_tar, mtime=0)
    info = store.blobs.put_bytes(compressed)
    manifest, config = store.get_image(base)
    layers = [*store.layers(manifest, config)]
    layers.append(
        StoredLayer(
            info.digest,
            "sha256:" + hashlib.sha256(layer_tar).hexdigest(),
            info.size,
            mediatypes.OCI_LAYER_GZIP,
        )
    )
    config = dict(config)
    config["history"] = [*config.get("history", []), {"created_by": f"add {file_name}"}]
    return store.put_image(config, layers, name)


def skopeo_digest(ref: str) -> str:
    skopeo = shutil.which("skopeo")
    if skopeo is None:
        pytest.skip("skopeo is not installed")
    completed = subprocess.run(
        [skopeo, "inspect", "--tls-verify=false", "--raw", f"docker://{ref}"],
        check=True,
        capture_output=True,
    )
    return "sha256:" + hashlib.sha256(completed.stdout).hexdigest()


# round trip ------------------------------------------------------------------------------


def test_push_then_pull_into_a_fresh_store_gives_the_same_digest(
    registry: RunningRegistry, store: Store, fresh_store: Store
) -> None:
    ref = f"{registry.host}/kiln/busybox:1"
    local_digest = import_busybox(store, ref)
    events: list[Event] = []

    pushed = push_image(store, ref, sink=events.append)
    pulled = pull_image(fresh_store, ref, platform=host_platform(), sink=events.append)

    assert pushed == local_digest
    assert pulled == local_digest
    assert skopeo_digest(ref) == local_digest
    assert fresh_store.resolve(ref) == local_digest
    manifest, config = fresh_store.get_image(ref)
    for descriptor in [manifest["config"], *manifest["layers"]]:
        assert fresh_store.blobs.verify(descriptor["digest"])
    assert config["rootfs"]["diff_ids"] == store.get_image(ref)[1]["rootfs"]["diff_ids"]
    finished = {
        (e.direction, e.digest)
        for e in events
        if isinstance(e, TransferProgress) and e.done_bytes == e.total_bytes
    }
    layer_digest = manifest["layers"][0]["digest"]
    assert ("push", layer_digest) in finished
    assert ("pull", layer_digest) in finished


def test_a_pulled_image_runs(
    registry: RunningRegistry, store: Store, fresh_store: Store, tmp_path: Path
) -> None:
    """The acceptance round trip's last step: the pulled image unpacks and runs."""
    from builder.exec.runtime import find_runtime
    from builder.exec.step import run_step
    from tests.conftest import require_root

    require_root("unpacks snapshots and runs a container")
    if shutil.which("crun") is None:
        pytest.skip("crun is not installed")
    ref = f"{registry.host}/kiln/runnable:1"
    import_busybox(store, ref)
    push_image(store, ref)
    store.remove_image(store.resolve(ref))
    pull_image(fresh_store, ref, platform=host_platform())

    output: list[bytes] = []
    result = run_step(
        fresh_store.snapshot_for(ref),
        tmp_path / "upper",
        argv=["/bin/sh", "-c", "echo pulled and running"],
        env=["PATH=/bin"],
        cwd="/",
        user="",
        network="none",
        on_output=output.append,
        runtime=find_runtime("crun"),
    )
    assert (result.exit_code, b"".join(output)) == (0, b"pulled and running\n")


def test_docker_schema_2_manifest_round_trip(
    registry: RunningRegistry, store: Store, fresh_store: Store
) -> None:
    from builder.oci.model import Manifest

    ref = f"{registry.host}/kiln/docker-form:1"
    oci_digest = import_busybox(store, "local/busybox:1")
    docker_manifest = Manifest.from_json(store.blobs.read_bytes(oci_digest)).to_docker().to_json()
    digest = store.put_manifest(docker_manifest, ref)

    assert push_image(store, ref) == digest
    assert pull_image(fresh_store, ref, platform=host_platform()) == digest
    record = fresh_store.meta.image(digest)
    assert record is not None
    assert record.media_type == mediatypes.DOCKER_MANIFEST
    assert fresh_store.blobs.read_bytes(digest) == docker_manifest


def test_pull_again_downloads_nothing(registry: RunningRegistry, store: Store, fresh_store: Store) -> None:
    ref = f"{registry.host}/kiln/busybox:1"
    import_busybox(store, ref)
    push_image(store, ref)
    pull_image(fresh_store, ref, platform=host_platform())
    before = len(registry.requests())

    events: list[Event] = []
    pull_image(fresh_store, ref, platform=host_platform(), sink=events.append)

    new_requests = registry.requests()[before:]
    assert [method for method, path, _ in new_requests if "/blobs/" in path] == []
    assert all(e.skipped for e in events if isinstance(e, TransferProgress))


def test_ensure_image_pulls_when_missing_and_with_always_check_only_when_changed(
    registry: RunningRegistry, store: Store, fresh_store: Store
) -> None:
    ref = f"{registry.host}/kiln/base:1"
    first = import_busybox(store, ref)
    push_image(store, ref)

    assert ensure_image(fresh_store, ref, platform=host_platform()) == first
    before = len(registry.requests())
    assert ensure_image(fresh_store, ref, platform=host_platform()) == first
    assert registry.requests()[before:] == []
    assert ensure_image(fresh_store, ref, platform=host_platform(), always_check=True) == first
    assert [(m, p) for m, p, _ in registry.requests()[before:]] == [("HEAD", "/v2/kiln/base/manifests/1")]

    second = add_file_layer(store, ref, ref, "new.txt", b"new\n")
    push_image(store, ref)
    assert ensure_image(fresh_store, ref, platform=host_platform()) == first
    assert ensure_image(fresh_store, ref, platform=host_platform(), always_check=True) == second
    assert fresh_store.resolve(ref) == second


def test_chunked_upload_sends_patches_and_round_trips(
    registry: RunningRegistry, store: Store, fresh_store: Store
) -> None:
    ref = f"{registry.host}/kiln/chunked:1"
    digest = import_busybox(store, ref)
    manifest, _ = store.get_image(ref)
    layer_size = manifest["layers"][0]["size"]
    chunk = 256 * 1024

    push_image(store, ref, chunk_size=chunk)

    patches = [entry for entry in registry.uploads() if entry[0] == "PATCH"]
    assert len(patches) == -(-layer_size // chunk)
    assert pull_image(fresh_store, ref, platform=host_platform()) == digest


def test_push_of_an_image_on_a_pushed_base_uploads_only_the_new_layer(
    registry: RunningRegistry, store: Store
) -> None:
    base_ref = f"{registry.host}/kiln/base:1"
    app_ref = f"{registry.host}/kiln/app:1"
    import_busybox(store, base_ref)
    push_image(store, base_ref)
    app_digest = add_file_layer(store, base_ref, app_ref, "app.txt", b"the application\n")
    app_manifest, _ = store.get_image(app_ref)
    base_layer = app_manifest["layers"][0]["digest"]
    new_layer = app_manifest["layers"][1]["digest"]
    before = len(registry.requests())

    assert push_image(store, app_ref) == app_digest

    requests = registry.requests()[before:]
    uploads = [(m, p) for m, p, _ in requests if "/blobs/uploads/" in p and m in ("PUT", "PATCH")]
    assert sorted(p.split("digest=")[1].replace("%3A", ":") for _, p in uploads) == sorted(
        [new_layer, app_manifest["config"]["digest"]]
    )
    mounts = [(p, status) for m, p, status in requests if m == "POST" and "mount=" in p]
    assert mounts == [
        (f"/v2/kiln/app/blobs/uploads/?mount={base_layer.replace(':', '%3A')}&from=kiln%2Fbase", 201)
    ]

    before = len(registry.requests())
    push_image(store, app_ref)
    again = registry.requests()[before:]
    assert [(m, p) for m, p, _ in again if m in ("POST", "PUT", "PATCH") and "/blobs/" in p] == []


# multi-platform ---------------------------------------------------------------------------


def _platform_image(store: Store, base: str, platform: Platform, name: str) -> str:
    manifest, config = store.get_image(base)
    config = dict(config)
    config["architecture"], config["os"] = platform.architecture, platform.os
    if platform.variant:
        config["variant"] = platform.variant
    return store.put_image(config, store.layers(manifest, config), name)


def test_multi_platform_index_yields_the_manifest_for_each_platform(
    registry: RunningRegistry, store: Store, tmp_path: Path
) -> None:
    ref = f"{registry.host}/kiln/multi:1"
    import_busybox(store, "local/busybox:1")
    arm64 = _platform_image(store, "local/busybox:1", Platform("linux", "arm64", "v8"), "local/arm64:1")
    host = _platform_image(store, "local/busybox:1", host_platform(), "local/host:1")
    amd64 = _platform_image(store, "local/busybox:1", Platform("linux", "amd64"), "local/amd64:1")
    entries = []
    for digest, platform in (
        (amd64, {"os": "linux", "architecture": "amd64"}),
        (arm64, {"os": "linux", "architecture": "arm64", "variant": "v8"}),
    ):
        entries.append(
            {
                "mediaType": mediatypes.OCI_MANIFEST,
                "digest": digest,
                "size": store.blobs.size(digest),
                "platform": platform,
            }
        )
    index = json.dumps({"schemaVersion": 2, "mediaType": mediatypes.OCI_INDEX, "manifests": entries}).encode()
    index_digest = store.blobs.put_bytes(index).digest
    store.meta.set_ref(f"{ref}", index_digest)

    assert push_image(store, ref) == index_digest
    assert resolve_digest(ref) == index_digest

    for wanted, expected in ((Platform("linux", "arm64"), arm64), (host_platform(), host)):
        with Store.open(tmp_path / f"pull-{wanted.architecture}") as fresh:
            assert pull_image(fresh, ref, platform=wanted) == expected
            record = fresh.meta.ref(ref)
            assert record is not None
            assert (record.digest, record.index_digest) == (expected, index_digest)
            _, config = fresh.get_image(ref)
            assert config["architecture"] == wanted.architecture

    with Store.open(tmp_path / "pull-s390x") as fresh, pytest.raises(RegistryError) as raised:
        pull_image(fresh, ref, platform=Platform("linux", "s390x"))
    assert str(raised.value) == f"{ref} has no image for linux/s390x (it offers linux/amd64, linux/arm64/v8)"


# a registry that lies ---------------------------------------------------------------------


def _lying_routes(*, lie_about: str) -> tuple[dict[str, tuple[bytes, str]], str, str]:
    """Routes of ``liar:1`` whose config or layer body does not match its digest."""
    layer = gzip.compress(b"the real layer bytes" * 100, mtime=0)
    config = json.dumps(
        {
            "architecture": host_platform().architecture,
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "0" * 64]},
        }
    ).encode()
    layer_digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": mediatypes.OCI_MANIFEST,
            "config": {"mediaType": mediatypes.OCI_CONFIG, "digest": config_digest, "size": len(config)},
            "layers": [{"mediaType": mediatypes.OCI_LAYER_GZIP, "digest": layer_digest, "size": len(layer)}],
        }
    ).encode()
    served_layer = layer[:-1] + bytes([layer[-1] ^ 0xFF]) if lie_about == "layer" else layer
    served_config = config.replace(b"linux", b"LINUX") if lie_about == "config" else config
    routes = {
        "/v2/liar/manifests/1": (manifest, mediatypes.OCI_MANIFEST),
        f"/v2/liar/blobs/{config_digest}": (served_config, "application/octet-stream"),
        f"/v2/liar/blobs/{layer_digest}": (served_layer, "application/octet-stream"),
    }
    return routes, config_digest, layer_digest


@pytest.mark.parametrize("lie_about", ["layer", "config"])
def test_a_blob_that_does_not_match_its_digest_is_refused_and_nothing_is_stored(
    store: Store, lie_about: str
) -> None:
    from tests.fixtures.registry import StaticRegistry

    routes, config_digest, layer_digest = _lying_routes(lie_about=lie_about)
    with StaticRegistry(routes).serving() as liar, pytest.raises(RegistryError) as raised:
        pull_image(store, f"{liar.host}/liar:1", platform=host_platform())

    lied_digest = layer_digest if lie_about == "layer" else config_digest
    assert str(raised.value).startswith(
        f"{liar.host} sent a corrupt blob {lied_digest} of {liar.host}/liar:1: "
    )
    assert "content does not match its digest" in str(raised.value)
    assert not store.blobs.has(lied_digest)
    stored = sorted(path.name for path in store.blobs.directory.iterdir())
    assert stored == ([config_digest.removeprefix("sha256:")] if lie_about == "layer" else [])
    assert store.meta.refs() == []
    assert store.meta.images() == []


def test_a_manifest_that_does_not_match_the_pinned_digest_is_refused(store: Store) -> None:
    from tests.fixtures.registry import StaticRegistry

    routes, _, _ = _lying_routes(lie_about="nothing")
    manifest, media_type = routes["/v2/liar/manifests/1"]
    claimed = "sha256:" + "ab" * 32
    routes[f"/v2/liar/manifests/{claimed}"] = (manifest, media_type)
    with StaticRegistry(routes).serving() as liar, pytest.raises(RegistryError) as raised:
        pull_image(store, f"{liar.host}/liar@{claimed}", platform=host_platform())
    actual = "sha256:" + hashlib.sha256(manifest).hexdigest()
    assert str(raised.value) == (
        f"the manifest {liar.host} sent for {liar.host}/liar@{claimed} has digest {actual}; refused"
    )
    assert list(store.blobs.digests()) == []


def test_a_download_cut_short_is_retried_then_refused_leaving_no_partial_blob(store: Store) -> None:
    from tests.fixtures.registry import StaticRegistry

    routes, config_digest, layer_digest = _lying_routes(lie_about="nothing")
    layer_path = f"/v2/liar/blobs/{layer_digest}"
    body, media_type = routes[layer_path]
    routes[layer_path] = (body[: len(body) // 2], media_type)
    server = StaticRegistry(routes, declared_lengths={layer_path: len(body)})
    with server.serving() as liar, pytest.raises(RegistryError) as raised:
        pull_image(store, f"{liar.host}/liar:1", platform=host_platform())

    assert str(raised.value).startswith(f"download of blob {layer_digest} of {liar.host}/liar:1 failed: ")
    assert server.paths_served.count(layer_path) == 3
    assert sorted(path.name for path in store.blobs.directory.iterdir()) == [
        config_digest.removeprefix("sha256:")
    ]
    assert store.meta.images() == []


def test_a_blob_longer_than_its_descriptor_is_cut_off(store: Store) -> None:
    from tests.fixtures.registry import StaticRegistry

    routes, config_digest, layer_digest = _lying_routes(lie_about="nothing")
    layer_path = f"/v2/liar/blobs/{layer_digest}"
    body, media_type = routes[layer_path]
    routes[layer_path] = (body + b"\0" * (3 << 20), media_type)
    with StaticRegistry(routes).serving() as liar, pytest.raises(RegistryError) as raised:
        pull_image(store, f"{liar.host}/liar:1", platform=host_platform())

    assert str(raised.value) == (
        f"blob {layer_digest} of {liar.host}/liar:1 is larger than the {len(body)} bytes its descriptor says"
    )
    assert sorted(path.name for path in store.blobs.directory.iterdir()) == [
        config_digest.removeprefix("sha256:")
    ]


# auth -------------------------------------------------------------------------------------


def test_basic_auth_needs_a_login_and_works_with_one(
    basic_auth_registry: RunningRegistry, store: Store, fresh_store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = f"{basic_auth_registry.host}/kiln/private:1"
    digest = import_busybox(store, ref)
    with pytest.raises(RegistryError) as raised:
        push_image(store, ref)
    message = str(raised.value)
    assert message.startswith(
        f"unauthorized: {basic_auth_registry.host} requires authentication for blob sha256:"
    )
    assert message.endswith(
        f" of {basic_auth_registry.host}/kiln/private (kiln login {basic_auth_registry.host})"
    )

    save_login(basic_auth_registry.host, Credentials(basic_auth_registry.user, "wrong"))
    with pytest.raises(RegistryError) as raised:
        push_image(store, ref)
    assert str(raised.value).startswith(
        f"unauthorized: {basic_auth_registry.host} refused the saved credentials"
    )

    status = main(
        [
            "login",
            "-u",
            basic_auth_registry.user,
            "-p",
            basic_auth_registry.password,
            basic_auth_registry.host,
        ]
    )
    assert status == 0
    assert push_image(store, ref) == digest
    assert pull_image(fresh_store, ref, platform=host_platform()) == digest
    output = capsys.readouterr().out
    assert basic_auth_registry.password not in output
    assert main(["logout", basic_auth_registry.host]) == 0
    with Store.open(fresh_store.root.parent / "third") as third, pytest.raises(RegistryError):
        pull_image(third, ref, platform=host_platform())


def test_bearer_token_flow_with_docker_config_credentials(
    token_registry: RunningRegistry,
    token_server: TokenServer,
    store: Store,
    fresh_store: Store,
    tmp_path: Path,
) -> None:
    ref = f"{token_registry.host}/kiln/tokened:1"
    digest = import_busybox(store, ref)
    with pytest.raises(RegistryError) as raised:
        push_image(store, ref)
    assert str(raised.value).startswith(f"unauthorized: {token_registry.host} requires authentication for ")
    token_server.refused = 0

    docker_config = tmp_path / "docker-config"
    docker_config.mkdir()
    auth = base64.b64encode(f"{token_server.user}:{token_server.password}".encode()).decode()
    (docker_config / "config.json").write_text(json.dumps({"auths": {token_registry.host: {"auth": auth}}}))
    token_server.scope_requests.clear()

    assert push_image(store, ref) == digest
    assert pull_image(fresh_store, ref, platform=host_platform()) == digest
    assert token_server.scope_requests == [
        ["repository:kiln/tokened:pull", "repository:kiln/tokened:pull,push"],
        ["repository:kiln/tokened:pull"],
    ]
    assert token_server.refused == 0


# kiln pin and the CLI ---------------------------------------------------------------------


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
