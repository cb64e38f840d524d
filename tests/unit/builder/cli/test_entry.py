"""The ``kiln`` command's first moments: a build's context and Dockerfile read off the raw
command line, the context scan started from them before anything heavy is imported, and
adopted by the build only when it is of the context the parsed command line names."""

from __future__ import annotations

import argparse
import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from builder.cli import entry
from builder.cli import main as cli
from cache.prescan import ContextScan
from tests.conftest import REPO_ROOT


def _python(program: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``program`` run by a new interpreter from the repository, with ``args``."""
    return subprocess.run(
        [sys.executable, "-c", program, *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )


def _build_parser() -> argparse.ArgumentParser:
    [commands] = [a for a in cli.build_parser("build")._actions if isinstance(a, argparse._SubParsersAction)]
    parser: argparse.ArgumentParser = commands.choices["build"]
    return parser


def test_the_flags_without_a_value_are_the_build_parsers() -> None:
    actions = _build_parser()._actions
    flags = {option for action in actions if action.nargs == 0 for option in action.option_strings}
    assert flags == entry.BUILD_FLAGS


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["build", "ctx"], ("ctx", "ctx/Dockerfile")),
        (["--root", "/s", "build", "--progress", "quiet", "-t", "x:1", "ctx"], ("ctx", "ctx/Dockerfile")),
        (["--root=/s", "build", "--no-cache", "-q", "ctx", "--pull"], ("ctx", "ctx/Dockerfile")),
        (["build", "-f", "/abs/Dockerfile.dev", "ctx"], ("ctx", "/abs/Dockerfile.dev")),
        (["build", "--file=sub/Containerfile", "ctx"], ("ctx", "ctx/sub/Containerfile")),
        (["build", "-fsub/Containerfile", "--build-arg", "A=1", "ctx"], ("ctx", "ctx/sub/Containerfile")),
        (["build", "--target", "ctx", "."], (".", "./Dockerfile")),
        (["build", "--", "ctx"], ("ctx", "ctx/Dockerfile")),
        (["build", "-f", "-", "ctx"], None),  # the Dockerfile from stdin: no ignore file to guess
        (["build", "ctx", "other"], None),
        (["build", "-t"], None),
        (["build"], None),
        (["images"], None),
        (["--help", "build", "ctx"], None),
    ],
)
def test_the_build_arguments_are_read_as_argparse_reads_them(
    argv: list[str], expected: tuple[str, str] | None
) -> None:
    assert entry.build_arguments(argv) == expected


def test_the_guess_agrees_with_the_parser() -> None:
    argv = ["build", "--no-cache", "-t", "a", "--platform=linux/amd64", "-f", "/x/Df", "--explain", "ctx"]
    parsed = _build_parser().parse_args(argv[1:])
    assert entry.build_arguments(argv) == (parsed.context, parsed.file)


def test_only_a_scan_of_the_named_context_and_dockerfile_is_taken(tmp_path: Path) -> None:
    context = tmp_path / "ctx"
    (context / "src").mkdir(parents=True)
    dockerfile = context / "Dockerfile"
    entry._started.append(scan := entry_scan(context, dockerfile))
    assert entry.take_scan(tmp_path / "elsewhere", dockerfile) is None
    assert scan._pid is None  # stopped and collected
    assert entry.take_scan(context, dockerfile) is None  # taken once, whatever happened

    entry._started.append(scan := entry_scan(context, dockerfile))
    assert entry.take_scan(context, tmp_path / "Dockerfile") is None  # another ignore file
    entry._started.append(scan := entry_scan(context, dockerfile))
    with scan:
        assert entry.take_scan(Path(os.path.relpath(context)), Path(os.path.relpath(dockerfile))) is scan


def entry_scan(context: Path, dockerfile: Path) -> ContextScan:
    scan = ContextScan.start(context, dockerfile)
    assert scan is not None
    return scan


def test_the_scan_is_forked_before_argparse_or_typing_is_imported(tmp_path: Path) -> None:
    """What the command has loaded when the helper is forked (from the helper's view)."""
    context = tmp_path / "ctx"
    context.mkdir()
    program = (
        "import os, sys\n"
        "real_fork = os.fork\n"
        "def fork():\n"
        "    print(sorted(sys.modules), flush=True)\n"
        "    return real_fork()\n"
        "os.fork = fork\n"
        "sys.argv = ['kiln', 'build', '--progress', 'quiet', sys.argv[1]]\n"
        "sys.modules['builder.cli.main'] = None  # (stops the command right after the fork)\n"
        "from builder.cli.entry import run\n"
        "try:\n"
        "    run()\n"
        "except ImportError:\n"
        "    pass\n"
    )
    result = _python(program, str(context))
    assert result.returncode == 0, result.stderr
    loaded = set(ast.literal_eval(result.stdout.splitlines()[0]))
    assert "cache.prescan" in loaded
    assert sorted(loaded & {"argparse", "typing", "enum", "pathlib", "threading", "re"}) == []


def test_a_build_adopts_the_scan_started_before_its_command_line_was_parsed(tmp_path: Path) -> None:
    context = tmp_path / "ctx"
    (context / "src").mkdir(parents=True)
    (context / "src" / "a.txt").write_text("a\n")
    (context / "Dockerfile").write_text("FROM scratch\nCOPY src /src\n")
    program = (
        "import atexit, os, sys\n"
        "real_fork, forks = os.fork, []\n"
        "def fork():\n"
        "    forks.append(1)\n"
        "    return real_fork()\n"
        "os.fork = fork\n"
        "atexit.register(lambda: print('forks', len(forks)))\n"
        "sys.argv = ['kiln', '--root', sys.argv[1], 'build', '-q', sys.argv[2]]\n"
        "from builder.cli.entry import run\n"
        "run()\n"
    )
    result = _python(program, str(tmp_path / "store"), str(context))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "forks 1"  # the early one, adopted: no second


def test_a_scan_nobody_took_is_stopped_at_exit(tmp_path: Path) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    program = (
        "import atexit, os, sys\n"
        "sys.argv = ['kiln', 'build', '--no-such-flag', sys.argv[1]]\n"
        "from builder.cli import entry\n"
        "def report():\n"
        "    print('left', len(entry._started))\n"
        "atexit.register(report)  # (runs after the one entry registers: last in, first out)\n"
        "entry.run()\n"
    )
    result = _python(program, str(context))
    assert result.returncode == 2  # the parser refused the command line
    assert result.stdout.splitlines()[-1] == "left 0"
