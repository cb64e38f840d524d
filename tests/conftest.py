"""Shared fixtures: where the conformance corpus lives, and when root-only tests may run.

The corpus sits in ``../shared/`` beside the checkout (CI has it there). Outside CI a test
that needs it skips with the reason; under CI (``CI`` set) its absence is a failure, so a
green CI run never hides a skipped corpus.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DIR = Path(os.environ.get("KILN_SHARED_DIR", REPO_ROOT.parent / "shared"))
IN_CI = bool(os.environ.get("CI"))

# Helpers that assert on a test's behalf, rewritten so that a failure shows its values.
pytest.register_assert_rewrite("tests.fixtures.cache_records")


def require_shared(*parts: str) -> Path:
    """The path under ``../shared/``; skip (or fail under CI) when it is missing."""
    path = SHARED_DIR.joinpath(*parts)
    if not path.exists():
        message = f"{path} is missing: the shared conformance corpus is not beside the checkout"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


def require_root(reason: str = "needs root") -> None:
    """Skip outside CI when not root; fail under CI, where everything must run."""
    if os.geteuid() != 0:
        if IN_CI:
            pytest.fail(f"{reason}, but CI runs as non-root")
        pytest.skip(reason)


def require_tool(name: str) -> str:
    """The path of the program ``name`` on PATH; skip the test when it is not installed."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed")
    return path


@pytest.fixture
def shared_dir() -> Path:
    return require_shared()
