"""Compressed variants of uncompressed layers: made once, reused, and pruned with their layer."""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import zstandard

from builder.errors import StoreError
from builder.layers import compression as compression_module
from builder.oci import mediatypes
from builder.store import Store, StoredLayer, prune
from builder.store.variants import LayerVariant, find_variant, outgoing_layer, variants


def layer_tar(content: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        entry = tarfile.TarInfo("file.txt")
        entry.size = len(content)
        archive.addfile(entry, io.BytesIO(content))
    return buffer.getvalue()


def plain_layer(store: Store, content: bytes = b"hello " * 1000) -> StoredLayer:
    """An uncompressed layer, as a build stores it: its blob is its tar."""
    info = store.blobs.put_bytes(layer_tar(content))
    return StoredLayer(info.digest, info.digest, info.size, mediatypes.OCI_LAYER)


def make_image(store: Store, layer: StoredLayer, name: str | None = "app:1") -> str:
    config = {"architecture": "amd64", "os": "linux", "config": {}}
    return store.put_image(config, [layer], name)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "store") as opened:
        yield opened


def test_gzip_variant_is_made_recorded_and_holds_the_layer(store: Store) -> None:
    layer = plain_layer(store)
    leaving = outgoing_layer(store, layer, "gzip")
    assert leaving.media_type == mediatypes.OCI_LAYER_GZIP
    assert leaving.diff_id == layer.diff_id
    assert leaving.digest != layer.digest
    assert leaving.size == store.blobs.size(leaving.digest)
    assert gzip.decompress(store.blobs.read_bytes(leaving.digest)) == store.blobs.read_bytes(layer.digest)
    assert variants(store) == [
        LayerVariant(layer.diff_id, "gzip", leaving.digest, leaving.size, mediatypes.OCI_LAYER_GZIP)
    ]


def test_zstd_is_a_variant_of_its_own(store: Store) -> None:
    layer = plain_layer(store)
    gzipped = outgoing_layer(store, layer, "gzip")
    zstd = outgoing_layer(store, layer, "zstd")
    assert zstd.media_type == mediatypes.OCI_LAYER_ZSTD
    assert zstd.digest != gzipped.digest
    payload = store.blobs.read_bytes(zstd.digest)
    with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(payload)) as reader:
        assert reader.read() == store.blobs.read_bytes(layer.digest)
    assert [(variant.compression, variant.digest) for variant in variants(store)] == [
        ("gzip", gzipped.digest),
        ("zstd", zstd.digest),
    ]


def test_a_second_request_reuses_the_variant(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    layer = plain_layer(store)
    first = outgoing_layer(store, layer, "gzip")
    blob_inode = store.blobs.path(first.digest).stat().st_ino
    blobs_before = sorted(store.blobs.digests())

    def no_second_compression(*_args: object) -> None:
        raise AssertionError("the layer was compressed again")

    monkeypatch.setattr(compression_module, "open_compressor", no_second_compression)
    assert outgoing_layer(store, layer, "gzip") == first
    assert store.blobs.path(first.digest).stat().st_ino == blob_inode
    assert sorted(store.blobs.digests()) == blobs_before
    assert len(variants(store)) == 1


def test_a_variant_whose_blob_is_gone_is_made_again(store: Store) -> None:
    layer = plain_layer(store)
    first = outgoing_layer(store, layer, "gzip")
    store.blobs.delete(first.digest)
    assert find_variant(store, layer.diff_id, "gzip") is None
    again = outgoing_layer(store, layer, "gzip")
    assert again == first
    assert store.blobs.has(again.digest)


def test_compressed_layers_and_none_leave_as_stored(store: Store) -> None:
    compressed_info = store.blobs.put_bytes(gzip.compress(layer_tar(b"x"), mtime=0))
    diff_id = store.blobs.put_bytes(layer_tar(b"x")).digest
    pulled = StoredLayer(compressed_info.digest, diff_id, compressed_info.size, mediatypes.OCI_LAYER_GZIP)
    assert outgoing_layer(store, pulled, "zstd").digest == pulled.digest
    built = plain_layer(store)
    leaving = outgoing_layer(store, built, "none")
    assert (leaving.digest, leaving.media_type) == (built.digest, mediatypes.OCI_LAYER)
    assert variants(store) == []


def test_docker_typed_layers_leave_as_docker_gzip(store: Store) -> None:
    built = plain_layer(store)
    docker = StoredLayer(built.digest, built.diff_id, built.size, mediatypes.DOCKER_LAYER)
    assert outgoing_layer(store, docker, "gzip").media_type == mediatypes.DOCKER_LAYER_GZIP
    assert outgoing_layer(store, docker, "zstd").digest == built.digest  # schema 2 has no zstd


def test_a_corrupt_layer_is_refused_and_nothing_is_recorded(store: Store) -> None:
    layer = plain_layer(store)
    store.blobs.path(layer.digest).write_bytes(b"not the layer any more")
    blobs_before = sorted(store.blobs.digests())
    with pytest.raises(StoreError, match="does not match its digest"):
        outgoing_layer(store, layer, "gzip")
    assert sorted(store.blobs.digests()) == blobs_before
    assert variants(store) == []


def test_prune_keeps_a_variant_while_its_layer_lives(store: Store) -> None:
    layer = plain_layer(store)
    make_image(store, layer)
    variant = outgoing_layer(store, layer, "gzip")
    report = prune(store)
    assert variant.digest not in report.blobs
    assert store.blobs.has(variant.digest)
    assert find_variant(store, layer.diff_id, "gzip") is not None


def test_prune_removes_a_variant_with_its_layer(store: Store) -> None:
    layer = plain_layer(store)
    kept_layer = plain_layer(store, b"kept")
    make_image(store, layer, "gone:1")
    make_image(store, kept_layer, "kept:1")
    variant = outgoing_layer(store, layer, "gzip")
    kept_variant = outgoing_layer(store, kept_layer, "gzip")
    store.untag("gone:1")
    dry = prune(store, dry_run=True)
    assert {layer.digest, variant.digest} <= set(dry.blobs)
    assert len(variants(store)) == 2  # a dry run forgets nothing
    report = prune(store)
    assert {layer.digest, variant.digest} <= set(report.blobs)
    assert not store.blobs.has(variant.digest)
    assert [entry.digest for entry in variants(store)] == [kept_variant.digest]
    assert store.blobs.has(kept_variant.digest)
