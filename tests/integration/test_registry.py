"""Pull and push against a real distribution registry on loopback (Debian's docker-registry).

Images are made in the test: a busybox root filesystem imported into a store, and images
built on it with one more layer. Every pulled image is checked by digest, by the store's
own verification and by skopeo reading the registry.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from builder.errors import RegistryError
from builder.events import Event, TransferProgress
from builder.graph import Platform
from builder.oci import mediatypes
from builder.registry import (
    PullingResolver,
    ensure_image,
    host_platform,
    pull_image,
    push_image,
    resolve_digest,
)
from builder.store import Store
from tests.fixtures.registry_images import add_file_layer, import_busybox, skopeo_digest
from tests.fixtures.registry_servers import FlakyProxy

if TYPE_CHECKING:
    from tests.fixtures.registry import RunningRegistry

pytest_plugins = ["tests.fixtures.registry"]
pytestmark = pytest.mark.usefixtures("registry_isolation")


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


def test_pulling_resolver_pulls_missing_bases_and_keeps_local_ones_offline(
    registry: RunningRegistry, store: Store, fresh_store: Store
) -> None:
    ref = f"{registry.host}/kiln/base:1"
    pushed = import_busybox(store, ref)
    push_image(store, ref)
    add_file_layer(store, ref, f"{ref}-local", "x.txt", b"x\n")
    local = import_busybox(fresh_store, "127.0.0.1:1/offline/only:1")  # no registry listens there
    resolver = PullingResolver(fresh_store)

    resolved = resolver.resolve(ref, host_platform())
    offline = resolver.resolve("127.0.0.1:1/offline/only:1", host_platform())

    assert (resolved.ref, resolved.digest, resolved.platform) == (ref, pushed, host_platform())
    assert resolved.config == fresh_store.get_image(ref)[1]["config"]
    assert offline.digest == local
    before = len(registry.requests())
    assert resolver.resolve(ref, host_platform()) is resolved
    assert registry.requests()[before:] == []

    newer = add_file_layer(store, ref, ref, "new.txt", b"new\n")
    push_image(store, ref)
    assert PullingResolver(fresh_store).resolve(ref, host_platform()).digest == pushed
    assert PullingResolver(fresh_store, always_check=True).resolve(ref, host_platform()).digest == newer


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


@pytest.mark.parametrize("broken", ["PATCH", "PUT"])
def test_a_broken_upload_starts_over_in_a_new_session(
    registry: RunningRegistry, store: Store, fresh_store: Store, broken: str
) -> None:
    """A PATCH or closing PUT that fails (503 from a proxy) is not replayed into the same
    upload session: the blob's upload starts again and the image arrives whole."""
    failed: list[str] = []

    def fail_once(method: str, path: str) -> bool:
        if method == broken and "/blobs/uploads/" in path and not failed:
            failed.append(path)
            return True
        return False

    with FlakyProxy(registry.host, fail_once).serving() as proxy:
        ref = f"{proxy.host}/kiln/flaky:1"
        digest = import_busybox(store, ref)
        assert push_image(store, ref, chunk_size=256 * 1024) == digest
        assert pull_image(fresh_store, ref, platform=host_platform()) == digest

    assert len(failed) == 1
    starts = [path for method, path, _ in proxy.seen if method == "POST" and "/blobs/uploads/" in path]
    assert len(starts) == 3  # one per blob (config, layer), one more for the upload that started over


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
            assert record.digest == index_digest  # the name holds the index, as sent
            assert fresh.resolve_for(ref, wanted) == expected
            _, config = fresh.get_image(ref)
            assert config["architecture"] == wanted.architecture

    with Store.open(tmp_path / "pull-s390x") as fresh, pytest.raises(RegistryError) as raised:
        pull_image(fresh, ref, platform=Platform("linux", "s390x"))
    assert str(raised.value) == f"{ref} has no image for linux/s390x (it offers linux/amd64, linux/arm64/v8)"
