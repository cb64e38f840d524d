"""``cache`` sits below the store and the runner: it imports the graph, OCI values, errors,
and, for context hashing, the context and the copier's source selection (so a digest covers
exactly what COPY reads), and the durable file writer the store also uses; the context
scan's helper process, which runs before the CLI has set anything up, also finds the ignore
file and defers standard modules as the CLI does. The store is reached through protocols,
never imported."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import REPO_ROOT
from tests.fixtures.module_imports import absolute_imports

ALLOWED_PREFIXES = (
    "cache",
    "builder.errors",
    "builder.durable",
    "builder.lazyclasses",
    "builder.graph",
    "builder.oci",
    "builder.context",
    "builder.ignore_file",
    "builder.lazy_stdlib",
    "builder.patterns",
    "builder.fileops.sources",
)


def kiln_imports(path: Path) -> set[str]:
    kiln_packages = ("builder", "frontends", "cache", "rich")
    return {name for name in absolute_imports(path) if name.split(".")[0] in kiln_packages}


def test_cache_imports_only_what_it_may() -> None:
    offending = {
        f"{path.name}: {name}"
        for path in sorted((REPO_ROOT / "cache").glob("*.py"))
        for name in kiln_imports(path)
        if not any(name == prefix or name.startswith(prefix + ".") for prefix in ALLOWED_PREFIXES)
    }
    assert offending == set()
