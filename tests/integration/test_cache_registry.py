"""``--cache-to type=registry`` / ``--cache-from type=registry`` against a real registry on
loopback: records and layers pushed by one store are reused by an empty one."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from builder.errors import RegistryError
from builder.registry.client import RegistryClient
from builder.store.store import Store
from cache.registrycache import export_registry, import_registry
from tests.fixtures.cache_records import CHAIN_KEYS, assert_chain_imported, save_record_chain

if TYPE_CHECKING:
    from tests.fixtures.registry import RunningRegistry

pytest_plugins = ["tests.fixtures.registry"]
pytestmark = pytest.mark.usefixtures("registry_isolation")


def test_round_trip_through_a_registry(
    registry: RunningRegistry, store: Store, fresh_store: Store, tmp_path: Path
) -> None:
    ref = f"{registry.host}/kiln/cache:main"
    made = save_record_chain(store, tmp_path)
    with RegistryClient(registry.host, insecure=[registry.host]) as client:
        digest = export_registry(store, client, ref, made)
        uploads_after_first = len(registry.uploads())
        assert export_registry(store, client, ref, made) == digest
        assert len(registry.uploads()) == uploads_after_first  # every blob already there
        added = import_registry(fresh_store, client, ref)
    assert [record.key for record in added] == CHAIN_KEYS
    assert_chain_imported(fresh_store, made)
    inspected = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if inspected.returncode == 0:
        assert len(json.loads(inspected.stdout)["layers"]) == 3


def test_min_mode_pushes_only_the_final_layers(
    registry: RunningRegistry, store: Store, fresh_store: Store, tmp_path: Path
) -> None:
    ref = f"{registry.host}/kiln/cache:min"
    made = save_record_chain(store, tmp_path)
    with RegistryClient(registry.host, insecure=[registry.host]) as client:
        export_registry(store, client, ref, made, "min", final_chain_ids={made[2].chain_id})
        added = import_registry(fresh_store, client, ref)
    assert [record.key for record in added] == [CHAIN_KEYS[2]]


def test_a_cache_reference_needs_a_tag(store: Store) -> None:
    with pytest.raises(RegistryError) as caught:
        import_registry(store, RegistryClient("localhost:1"), "localhost:1/kiln/cache@sha256:" + "a" * 64)
    assert str(caught.value) == f"cache reference {'localhost:1/kiln/cache@sha256:' + 'a' * 64!r} needs a tag"
