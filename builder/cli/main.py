"""``kiln``: argument parsing and the one place errors become messages and exit statuses.

Each command lives in its own module under :mod:`builder.cli.commands` and exposes
``register(subparsers)``, which adds its parser and sets ``handler`` to a function taking the
parsed arguments and returning an exit status.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import gc
import importlib
import os
import sys
import threading
from collections.abc import Sequence
from typing import Any, NoReturn

from builder.cli.entry import named_command
from builder.errors import KilnError, UsageError
from builder.lazy_stdlib import defer_standard_modules

#: Command modules, in the order ``kiln --help`` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "build",
    "debug",
    "images",
    "containers",
    "archive",
    "registry",
    "system",
    "completion",
    "binfmt",
)

#: Which module registers each command, so ``kiln build ...`` builds only the build parser:
#: registering all of them costs ~20 ms of start-up (argparse looks up a translation for
#: every parser, and some command modules load their own imports), more than a fully cached
#: build spends building. A command missing here still works through the full parser; a
#: unit test keeps the table in step with what the modules register.
COMMAND_OWNERS: dict[str, str] = {
    "build": "build",
    "debug": "debug",
    **dict.fromkeys(("import", "images", "inspect", "history", "tag", "rmi", "prune"), "images"),
    **dict.fromkeys(("run", "ps", "rm", "commit"), "containers"),
    **dict.fromkeys(("save", "load"), "archive"),
    **dict.fromkeys(("pull", "push", "login", "logout", "pin"), "registry"),
    "df": "system",
    "completion": "completion",
    "setup-binfmt": "binfmt",
}

VERSION = "0.1.0"


def terminal_columns() -> int:
    """The width help text wraps to, as ``shutil.get_terminal_size`` gives it: ``$COLUMNS``,
    else the terminal on stdout, else 80."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class _Formatter(argparse.HelpFormatter):
    """argparse's formatter, told its width: left to itself it imports ``shutil`` (and with
    it ``bz2``, ``lzma`` and ``zlib``) for the terminal size, once per ``add_argument``, and
    ``kiln build`` never prints help."""

    def __init__(
        self, prog: str, indent_increment: int = 2, max_help_position: int = 24, width: int | None = None
    ) -> None:
        if width is None:
            width = terminal_columns() - 2  # as argparse computes it
        super().__init__(prog, indent_increment, max_help_position, width)


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so usage errors share one exit path."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``kiln`` parser: every command's, or only ``command``'s when its owner is known
    (what ``--help`` and error messages list then differs, so callers pass ``command`` only
    once the command line names it)."""
    parser = _Parser(prog="kiln", description="Build container images from Dockerfiles.")
    parser.add_argument("--version", action="version", version=f"kiln {VERSION}")
    parser.add_argument(
        "--root", default=None, help="store directory (default /var/lib/kiln as root; KILN_ROOT)"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    owner = COMMAND_OWNERS.get(command) if command is not None else None
    names: tuple[str, ...] = (owner,) if owner is not None else COMMAND_MODULES
    if command == "--version":
        names = ()  # argparse prints the version and exits before it looks for a command
    for name in names:
        module = importlib.import_module(f"builder.cli.commands.{name}")
        module.register(subparsers)
    return parser


def _named_command(argv: Sequence[str]) -> str | None:
    """The command ``argv`` names (:func:`builder.cli.entry.named_command`)."""
    return named_command(argv)[0]


#: The cyclic garbage collector's first-generation threshold for a ``kiln`` process (the
#: default is 700 allocations). Start-up allocates some 100 modules, and classes and objects
#: that live to the end; at 700 the collector ran ~40 times scanning them, ~4 ms of a fully
#: cached build. Later generations keep their default ratios.
GC_THRESHOLD = 20_000


def main(argv: Sequence[str] | None = None) -> int:
    """Run one kiln command; return its exit status (0 ok, 1 failed, 2 usage).

    Called without ``argv`` (the ``kiln`` command itself) it also tunes the collector for a
    short-lived process: :data:`GC_THRESHOLD` while it runs, and when the command is done
    every object is frozen (:func:`gc.freeze`), since the process ends next and the
    interpreter's final collection would scan them all (~12 ms after a build) only to free
    memory that exit frees anyway; and ``inspect`` is deferred (:mod:`builder.lazy_stdlib`,
    before any command module imports ``dataclasses``). A caller passing ``argv`` (a test, a
    program using kiln as a library) keeps its collector and its ``inspect`` as they are."""
    if argv is None:
        defer_standard_modules()
        gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])
    try:
        return _run(argv)
    finally:
        if argv is None:
            gc.freeze()


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser(_named_command(sys.argv[1:] if argv is None else argv))
    try:
        args = parser.parse_args(argv)
        handler = getattr(args, "handler", None)
        if handler is None:
            parser.print_help(sys.stderr)
            return 2
        # Ctrl-C and SIGTERM stop the containers that worker threads run, then unwind.
        from builder.exec.runtime import interrupts_stop_containers

        with interrupts_stop_containers():
            status: int = handler(args)
        return status
    except UsageError as err:
        print(str(err), file=sys.stderr)
        return 2
    except KilnError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def run() -> NoReturn:
    """The ``kiln`` command (the installed script calls this): :func:`main`, then the
    process ends without the interpreter taking itself apart module by module, 2-3 ms of
    every command spent on memory the kernel frees anyway. What a normal exit does besides
    is done: the ``atexit`` handlers run and stdout and stderr are flushed. While a thread
    the interpreter would wait for is still running, it exits the usual way."""
    status = main()
    current = threading.current_thread()
    if any(
        thread is not current and thread.is_alive() and not thread.daemon for thread in threading.enumerate()
    ):
        sys.exit(status)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # closed, or a reader gone: as at exit
            stream.flush()
    os._exit(status)


if __name__ == "__main__":
    run()
