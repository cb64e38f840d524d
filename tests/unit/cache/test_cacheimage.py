from __future__ import annotations

import json

import pytest

from builder.errors import StoreError
from cache.cacheimage import (
    CACHE_CONFIG_MEDIA_TYPE,
    cache_documents,
    config_digest_of,
    parse_cache_config,
)
from cache.records import CacheRecord


def record(key: str, blob: str) -> CacheRecord:
    return CacheRecord(
        key=key,
        diff_id="sha256:" + "d" * 64,
        blob_digest=blob,
        size=10,
        media_type="application/vnd.oci.image.layer.v1.tar+gzip",
        chain_id="sha256:" + "c" * 64,
        parent_chain_id="",
        created_by="RUN x",
        created="2026-01-01T00:00:00Z",
        preimage={"inputs": {}},
        last_used=5.0,
    )


def test_documents_round_trip_and_list_each_blob_once() -> None:
    shared_blob = "sha256:" + "b" * 64
    records = [record("sha256:" + "2" * 64, shared_blob), record("sha256:" + "1" * 64, shared_blob)]
    documents = cache_documents(records, {"sha256:in": {"a.txt": "0123"}})
    manifest = json.loads(documents.manifest)
    assert manifest["artifactType"] == CACHE_CONFIG_MEDIA_TYPE
    assert manifest["config"]["digest"] == documents.config_digest
    assert manifest["layers"] == [
        {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": shared_blob, "size": 10}
    ]
    assert config_digest_of(documents.manifest) == documents.config_digest
    parsed, inputs = parse_cache_config(documents.config)
    assert parsed == sorted(records, key=lambda item: item.key)
    assert inputs == {"sha256:in": {"a.txt": "0123"}}


def test_other_manifests_are_not_caches() -> None:
    image_manifest = json.dumps({"config": {"mediaType": "application/vnd.oci.image.config.v1+json"}})
    assert config_digest_of(image_manifest.encode()) is None


def test_malformed_config() -> None:
    with pytest.raises(StoreError) as caught:
        parse_cache_config(b'{"records": 3}')
    assert str(caught.value) == "malformed cache config: records is not a list"
    with pytest.raises(StoreError) as caught:
        parse_cache_config(b"[]")
    assert str(caught.value) == "malformed cache config: not a JSON object"
