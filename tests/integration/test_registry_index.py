"""Pulling a multi-platform name keeps its index, and pushing it back sends the same index.

A two-platform index is made in a store (busybox imported, its config relabelled for amd64
and arm64), pushed to a real registry, pulled into a fresh store one platform at a time and
pushed to another repository of that registry.
"""

from __future__ import annotations

import io
import json
import tarfile
from typing import TYPE_CHECKING

import pytest

from builder.cli.commands.images import inspect_document
from builder.events import Event, Notice
from builder.export.oci_archive import write_oci_archive
from builder.graph import Platform
from builder.oci import mediatypes
from builder.platform_index import platform_images
from builder.registry import ensure_image, pull_image, push_image, resolve_digest
from builder.store import Store
from builder.store.gc import prune
from tests.fixtures.registry_images import import_busybox

if TYPE_CHECKING:
    from tests.fixtures.registry import RunningRegistry

pytest_plugins = ["tests.fixtures.registry"]
pytestmark = pytest.mark.usefixtures("registry_isolation")

AMD64 = Platform("linux", "amd64")
ARM64 = Platform("linux", "arm64")


def _push_two_platform_index(store: Store, ref: str) -> tuple[str, dict[str, str]]:
    """Push an index of an amd64 and an arm64 image to ``ref``; return its digest and the
    manifest digest of each platform."""
    import_busybox(store, "local/busybox:1")
    manifests: dict[str, str] = {}
    for platform in (AMD64, ARM64):
        manifest, config = store.get_image("local/busybox:1")
        config = {**config, "os": platform.os, "architecture": platform.architecture}
        manifests[str(platform)] = store.put_image(config, store.layers(manifest, config))
    index_digest = store.put_index([(manifests[str(p)], p) for p in (AMD64, ARM64)], ref)
    assert push_image(store, ref) == index_digest
    return index_digest, manifests


def test_pulled_index_is_stored_and_pushed_back_unchanged(
    registry: RunningRegistry, store: Store, fresh_store: Store
) -> None:
    source = f"{registry.host}/kiln/multi:1"
    index_digest, manifests = _push_two_platform_index(store, source)

    assert pull_image(fresh_store, source, platform=AMD64) == manifests["linux/amd64"]
    assert pull_image(fresh_store, source, platform=ARM64) == manifests["linux/arm64"]

    record = fresh_store.meta.ref(source)
    assert record is not None
    assert record.digest == index_digest
    assert fresh_store.blobs.read_bytes(index_digest) == store.blobs.read_bytes(index_digest)
    image = fresh_store.meta.image(index_digest)
    assert image is not None and image.media_type == mediatypes.OCI_INDEX
    assert platform_images(fresh_store, index_digest) == [
        (manifests["linux/amd64"], AMD64),
        (manifests["linux/arm64"], ARM64),
    ]
    inspected = inspect_document(fresh_store, source)
    assert (inspected["Id"], inspected["Platforms"]) == (index_digest, ["linux/amd64", "linux/arm64"])
    index_json = json.loads((fresh_store.root / "index.json").read_bytes())
    assert [(e["digest"], e["mediaType"]) for e in index_json["manifests"]] == [
        (index_digest, mediatypes.OCI_INDEX)
    ]
    # A FROM of the name finds each pulled platform without asking the registry.
    assert ensure_image(fresh_store, source, platform=ARM64) == manifests["linux/arm64"]

    copy = f"{registry.host}/kiln/copy:1"
    events: list[Event] = []
    assert push_image(fresh_store, copy, source=source, sink=events.append) == index_digest
    assert resolve_digest(copy) == index_digest
    assert [event for event in events if isinstance(event, Notice)] == []


def test_an_index_pulled_for_one_platform_pushes_only_that_platform(
    registry: RunningRegistry, store: Store, fresh_store: Store
) -> None:
    source = f"{registry.host}/kiln/multi:1"
    index_digest, manifests = _push_two_platform_index(store, source)
    assert pull_image(fresh_store, source, platform=ARM64) == manifests["linux/arm64"]

    assert platform_images(fresh_store, index_digest) == [(manifests["linux/arm64"], ARM64)]
    assert fresh_store.resolve_for(source, ARM64) == manifests["linux/arm64"]

    copy = f"{registry.host}/kiln/partial:1"
    events: list[Event] = []
    pushed = push_image(fresh_store, copy, source=source, sink=events.append)

    assert pushed != index_digest
    assert resolve_digest(copy) == pushed
    original = json.loads(store.blobs.read_bytes(index_digest))
    expected = {**original, "manifests": [original["manifests"][1]]}
    assert pushed == "sha256:" + _sha256(json.dumps(expected, separators=(",", ":")).encode())
    assert [event.message for event in events if isinstance(event, Notice)] == [
        f"{copy}: pushing without linux/amd64, which were not pulled"
    ]
    served = [path for method, path, status in registry.requests() if method == "PUT" and status == 201]
    assert f"/v2/kiln/partial/manifests/{manifests['linux/amd64']}" not in served
    assert f"/v2/kiln/partial/manifests/{manifests['linux/arm64']}" in served

    # An OCI archive of the name holds the pulled platform only, like the push.
    archive = io.BytesIO()
    write_oci_archive(fresh_store, [source], archive)
    archive.seek(0)
    with tarfile.open(fileobj=archive) as members:
        layout = json.loads(members.extractfile("index.json").read())  # type: ignore[union-attr]
        saved_index = layout["manifests"][0]["digest"]
        saved = json.loads(members.extractfile(f"blobs/sha256/{saved_index[7:]}").read())  # type: ignore[union-attr]
    assert saved == expected

    # A prune keeps the index and the pulled platform's blobs.
    prune(fresh_store)
    assert fresh_store.blobs.has(index_digest)
    _, config = fresh_store.get_image(source)
    assert config["architecture"] == "arm64"

    # A FROM for the platform not pulled yet pulls it, under the same index.
    assert ensure_image(fresh_store, source, platform=AMD64) == manifests["linux/amd64"]
    record = fresh_store.meta.ref(source)
    assert record is not None and record.digest == index_digest


def _sha256(payload: bytes) -> str:
    import hashlib

    return hashlib.sha256(payload).hexdigest()
