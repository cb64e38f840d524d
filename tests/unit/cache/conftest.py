"""Fixtures for cache tests: a real store in tmp_path (layers and records: tests.fixtures.cache_records)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from builder.store.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "store") as opened:
        yield opened
