"""The package layering DESIGN.md draws, held by a test.

* ``frontends`` reads text and produces the graph: it imports only the graph, the resolver
  protocol, source spans, ignore patterns, the OCI model and errors (plus the ``--chmod``
  parser, a pure function both the frontend's flag check and the copier need);
* only ``builder.cli`` picks a frontend: nothing else under ``builder`` imports ``frontends``;
* only the renderers (``builder.progress``) and the CLI import ``rich``.

(``cache`` has its own rule in ``tests/unit/cache/test_import_rules.py``.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.fixtures.module_imports import absolute_imports

FRONTEND_ALLOWED = (
    "frontends",
    "builder.graph",
    "builder.resolver",
    "builder.source",
    "builder.patterns",
    "builder.oci.model",
    "builder.errors",
    "builder.lazyclasses",
    "builder.fileops.chmod",
)


def _sources(package: str) -> list[Path]:
    return sorted((REPO_ROOT / package).rglob("*.py"))


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


@pytest.mark.parametrize("path", _sources("frontends"), ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_frontends_import_only_the_contract(path: Path) -> None:
    ours = {
        name for name in absolute_imports(path) if name.split(".")[0] in ("builder", "cache", "frontends")
    }
    assert sorted(name for name in ours if not _within(name, FRONTEND_ALLOWED)) == []


def test_only_the_cli_imports_a_frontend() -> None:
    offenders = [
        str(path.relative_to(REPO_ROOT))
        for path in _sources("builder") + _sources("cache")
        if "cli" not in path.relative_to(REPO_ROOT).parts
        and any(_within(name, ("frontends",)) for name in absolute_imports(path))
    ]
    assert offenders == []


def test_only_renderers_and_the_cli_import_rich() -> None:
    offenders = [
        str(path.relative_to(REPO_ROOT))
        for path in _sources("builder") + _sources("cache") + _sources("frontends")
        if not {"cli", "progress"} & set(path.relative_to(REPO_ROOT).parts)
        and any(_within(name, ("rich",)) for name in absolute_imports(path))
    ]
    assert offenders == []
