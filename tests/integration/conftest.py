"""Fixtures for the integration tests: a store of the test's own with the busybox base in it.

``busybox_tar`` is offered here too, so that a module taking ``busybox_store`` need not import
it (a module that still imports it gets its own copy of the session fixture).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import require_root
from tests.fixtures.busybox import busybox_tar  # noqa: F401  (a fixture)
from tests.fixtures.kiln_cli import import_busybox


@pytest.fixture
def busybox_store(tmp_path: Path, busybox_tar: Path) -> Path:  # noqa: F811
    """A store at ``tmp_path / "store"`` holding ``busybox:latest`` as the quick start imports
    it; root only, as builds and containers mount overlays and run an OCI runtime."""
    require_root("builds and containers mount overlays and run an OCI runtime")
    root = tmp_path / "store"
    import_busybox(root, busybox_tar)
    return root
