"""The ``kiln`` command's first moments, before the command line is parsed.

``kiln build`` lists its context's directories in a helper process while it starts up
(:mod:`cache.prescan`); the sooner that helper starts, the more of the context it has
listed when the build's walk needs it. Parsing the command line properly means importing
``argparse`` and the build command's module first: some 40 ms, a third of a rebuild's
start-up. So the installed script comes here first, and the build's context and Dockerfile
are read off the raw arguments (:func:`build_arguments`) with nothing imported but what the
interpreter already holds. The guess costs nothing when wrong: the build adopts the scan
only if it is of the context the parsed command line names (:func:`take_scan`), and stops
it otherwise.

Nothing here may import more than ``os`` and ``sys`` at module level: that is the point.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # (``typing`` is not imported yet; type checkers read this as True)
if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path
    from typing import NoReturn

    from cache.prescan import ContextScan

#: ``kiln build``'s options that take no value (a unit test keeps this in step with the
#: parser): every other option takes the next argument unless it holds its value itself.
BUILD_FLAGS = frozenset({"-h", "--help", "-q", "--quiet", "--no-cache", "--pull", "--push", "--explain"})

#: The scan :func:`run` started, until the build takes it (at most one).
_started: list[ContextScan] = []


def run() -> NoReturn:
    """The ``kiln`` command: a ``kiln build``'s context scan started, then the command."""
    arguments = build_arguments(sys.argv[1:])
    if arguments is not None:
        context, dockerfile = arguments
        from cache.prescan import ContextScan

        scan = ContextScan.start(context, dockerfile)
        if scan is not None:
            _started.append(scan)
            import atexit

            atexit.register(_stop_untaken)  # (a command line the parser then refused)
    from builder.cli.main import run as run_command

    run_command()


def take_scan(context: Path, dockerfile: Path | None) -> ContextScan | None:
    """The scan started before the command line was parsed, when it is of ``context`` with
    this ``dockerfile``'s ignore file; ``None`` otherwise (a scan of something else is
    stopped)."""
    if not _started:
        return None
    scan = _started.pop()
    if scan.root == os.path.realpath(context) and scan.dockerfile == (
        None if dockerfile is None else os.path.realpath(dockerfile)
    ):
        return scan
    scan.close()
    return None


def _stop_untaken() -> None:
    while _started:
        _started.pop().close()


def named_command(argv: Sequence[str]) -> tuple[str | None, int]:
    """The command ``argv`` names after kiln's own ``--root`` (``--version`` counting as
    one), or None when anything else comes first (``--help``, an abbreviated option): the
    full parser answers those. Also the index of the token after it."""
    index = 0
    while index < len(argv):
        token = argv[index]
        if token == "--root":
            index += 2
        elif token.startswith("--root="):
            index += 1
        elif token == "--version":
            return token, index + 1
        elif token.startswith("-"):
            return None, index
        else:
            return token, index + 1
    return None, index


def build_arguments(argv: Sequence[str]) -> tuple[str, str | None] | None:
    """The context directory and ``-f`` Dockerfile a ``kiln build`` command line names, as
    ``argparse`` will most likely read them; ``None`` when it is not a build, names no
    single context, or reads its Dockerfile from stdin."""
    command, index = named_command(argv)
    if command != "build":
        return None
    positional: list[str] = []
    dockerfile: str | None = None
    while index < len(argv):
        token = argv[index]
        index += 1
        if token == "--":
            positional.extend(argv[index:])
            break
        if not token.startswith("-") or token == "-":
            positional.append(token)
            continue
        if token in BUILD_FLAGS:
            continue
        if token.startswith("--"):
            name, has_value, value = token.partition("=")
        elif len(token) > 2:  # -fPATH, -tNAME
            name, has_value, value = token[:2], "=", token[2:]
        else:
            name, has_value, value = token, "", ""
        if not has_value:
            if index >= len(argv):
                return None
            value = argv[index]
            index += 1
        if name in ("-f", "--file"):
            dockerfile = value
    if len(positional) != 1 or dockerfile == "-":
        return None
    context = positional[0]
    if dockerfile is None:
        dockerfile = os.path.join(context, "Dockerfile")
    elif not os.path.isabs(dockerfile) and not os.path.exists(dockerfile):
        dockerfile = os.path.join(context, dockerfile)  # as the build command resolves it
    return context, dockerfile
