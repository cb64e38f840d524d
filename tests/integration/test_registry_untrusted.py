"""Registries are untrusted: content that does not match its digest, bodies cut short or too
long are refused, and nothing partial is left in the store.
"""

from __future__ import annotations

import hashlib

import pytest

from builder.errors import RegistryError
from builder.registry import host_platform, pull_image
from builder.store import Store
from tests.fixtures.registry_images import lying_routes
from tests.fixtures.registry_servers import StaticRegistry

pytest_plugins = ["tests.fixtures.registry"]
pytestmark = pytest.mark.usefixtures("registry_isolation")


@pytest.mark.parametrize("lie_about", ["layer", "config"])
def test_a_blob_that_does_not_match_its_digest_is_refused_and_nothing_is_stored(
    store: Store, lie_about: str
) -> None:
    routes, config_digest, layer_digest = lying_routes(lie_about=lie_about)
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
    routes, _, _ = lying_routes(lie_about="nothing")
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
    routes, config_digest, layer_digest = lying_routes(lie_about="nothing")
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
    routes, config_digest, layer_digest = lying_routes(lie_about="nothing")
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
