"""``kiln --version`` and ``kiln build --help`` stay fast: the CLI's parser is built without
the network, terminal, grammar or compression libraries, and without the build engine.

Each check runs a fresh interpreter, since this test process has long imported everything.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO_ROOT

HEAVY_MODULES = ("requests", "rich", "lark", "zstandard", "isal")
ENGINE_MODULES = ("builder.build", "builder.runner", "builder.exec.step", "builder.registry.client")


def _modules_after(code: str) -> set[str]:
    """The top-level and builder modules loaded once ``code`` has run in a new interpreter."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    return set(json.loads(result.stdout.splitlines()[-1]))


def test_importing_the_cli_loads_no_heavy_dependency() -> None:
    loaded = _modules_after("import builder.cli.main")
    assert sorted(loaded.intersection(HEAVY_MODULES)) == []


def test_building_the_parser_loads_no_heavy_dependency_nor_the_engine() -> None:
    loaded = _modules_after("import builder.cli.main as cli\ncli.build_parser()")
    assert sorted(loaded.intersection(HEAVY_MODULES + ENGINE_MODULES)) == []


def test_version_prints_without_loading_the_engine() -> None:
    code = (
        "import contextlib, io, builder.cli.main as cli\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):\n"
        "    cli.main(['--version'])\n"
        "assert out.getvalue() == f'kiln {cli.VERSION}\\n', out.getvalue()"
    )
    loaded = _modules_after(code)
    assert sorted(loaded.intersection(HEAVY_MODULES + ENGINE_MODULES)) == []


def test_lazy_package_exports_resolve_to_the_submodule_objects() -> None:
    from builder.exec import run_step
    from builder.exec.step import run_step as step_run_step
    from builder.store import Store
    from builder.store.store import Store as StoreClass

    assert run_step is step_run_step
    assert Store is StoreClass


def test_a_build_from_stored_base_images_loads_no_http_or_terminal_stack() -> None:
    code = (
        "import builder.build, builder.registry.resolver, builder.progress.select\n"
        "import builder.progress.metadata\n"
        "import frontends.dockerfile.convert, frontends.dockerfile.parser"
    )
    loaded = _modules_after(code)
    assert sorted(loaded.intersection(("requests", "rich", "urllib3"))) == []
