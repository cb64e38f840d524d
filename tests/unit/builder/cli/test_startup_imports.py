"""``kiln --version`` and ``kiln build --help`` stay fast: the CLI's parser is built without
the network, terminal, grammar or compression libraries, and without the build engine. A
fully cached ``kiln build`` loads none of what only running a step, or something it does
not do, needs.

Each check runs a fresh interpreter, since this test process has long imported everything.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, require_root
from tests.fixtures.busybox import busybox_tar  # noqa: F401  (a fixture)
from tests.fixtures.kiln_cli import import_busybox, kiln

HEAVY_MODULES = ("requests", "rich", "lark", "zstandard", "isal")
ENGINE_MODULES = ("builder.build", "builder.runner", "builder.exec.step", "builder.registry.client")
#: What a fully cached build has no use for: running a step, OCI JSON models, a thread pool
#: (with ``logging``), the real ``inspect`` (with ``ast`` and ``dis``) that ``dataclasses``
#: imports only to document classes without a docstring, processes, tree removal and
#: temporary files (``shutil`` brings the compression modules), random names, the JSON
#: progress renderer, the csv reader of ``RUN --mount`` options.
CACHED_BUILD_UNUSED = (
    "builder.exec.step",
    "builder.fileops.copy",
    "builder.layers",
    "builder.oci.model",
    "concurrent.futures",
    "logging",
    "ast",
    "dis",
    "subprocess",
    "shutil",
    "tempfile",
    "bz2",
    "lzma",
    "secrets",
    "random",
    "builder.progress.jsonlines",
    "csv",
)
CACHED_DOCKERFILE = """FROM busybox
RUN echo built > /built
COPY file.txt /files/
ENV STEP=value
WORKDIR /work
LABEL step=yes
USER 0:0
EXPOSE 8080
CMD ["sh"]
ENTRYPOINT ["/bin/sh", "-c"]
"""


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


def _cached_build_modules(store_root: Path, context: Path, progress: str) -> tuple[set[str], str]:
    """The modules a ``kiln build`` loaded (and the type of ``sys.modules['inspect']``),
    run in a new interpreter through the CLI's ``main`` as the ``kiln`` script runs it."""
    argv = ["--root", str(store_root), "build", "--progress", progress, "-t", "cached", str(context)]
    code = (
        "import json, sys\n"
        "from builder.cli.main import main\n"
        f"sys.argv = ['kiln', *{argv!r}]\n"
        "status = main()\n"
        "print(json.dumps([status, sorted(sys.modules), type(sys.modules['inspect']).__name__]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    status, loaded, inspect_type = json.loads(result.stdout.splitlines()[-1])
    assert status == 0, result.stderr
    assert "CACHED" in result.stderr or progress == "quiet", result.stderr
    return set(loaded), inspect_type


@pytest.mark.root
@pytest.mark.parametrize("progress", ["quiet", "plain"])
def test_a_fully_cached_build_loads_nothing_it_does_not_use(
    tmp_path: Path,
    busybox_tar: Path,  # noqa: F811  (the fixture)
    progress: str,
) -> None:
    require_root()
    store_root = tmp_path / "store"
    import_busybox(store_root, busybox_tar)
    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text(CACHED_DOCKERFILE, encoding="utf-8")
    (context / "file.txt").write_text("content\n", encoding="utf-8")
    assert kiln(store_root, "build", "--progress", "quiet", "-t", "cached", str(context)) == 0

    loaded, inspect_type = _cached_build_modules(store_root, context, progress)

    assert sorted(loaded.intersection(CACHED_BUILD_UNUSED + HEAVY_MODULES)) == []
    assert inspect_type == "DeferredModule"


def test_the_kiln_command_tunes_the_collector_and_a_caller_keeps_its_own() -> None:
    code = (
        "import contextlib, gc, io, json, sys\n"
        "from builder.cli.main import GC_THRESHOLD, main\n"
        "default = gc.get_threshold()\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    main(['--version'])\n"
        "kept = gc.get_threshold(), gc.get_freeze_count()\n"
        "sys.argv = ['kiln', '--version']\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    main()\n"
        "print(json.dumps([default, kept, gc.get_threshold(), gc.get_freeze_count(), GC_THRESHOLD]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    default, kept, tuned, frozen, threshold = json.loads(result.stdout)
    assert kept == [default, 0]
    assert tuned == [threshold, *default[1:]]
    assert frozen > 1000  # the command's objects, left for exit to free


def test_importing_the_cli_or_calling_main_with_arguments_leaves_inspect_alone() -> None:
    """Only the ``kiln`` command itself defers ``inspect``: a program using kiln as a library
    keeps the real module (``importlib.util.find_spec`` needs its ``__spec__``)."""
    code = (
        "import contextlib, io, sys, importlib.util\n"
        "import builder.cli.main as cli\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    cli.main(['--version'])\n"
        "assert 'inspect' not in sys.modules or type(sys.modules['inspect']).__name__ == 'module'\n"
        "assert importlib.util.find_spec('inspect') is not None\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
