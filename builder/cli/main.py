"""``kiln``: argument parsing and the one place errors become messages and exit statuses.

Each command lives in its own module under :mod:`builder.cli.commands` and exposes
``register(subparsers)``, which adds its parser and sets ``handler`` to a function taking the
parsed arguments and returning an exit status.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from builder.errors import KilnError, UsageError

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

VERSION = "0.1.0"


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so usage errors share one exit path."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="kiln", description="Build container images from Dockerfiles.")
    parser.add_argument("--version", action="version", version=f"kiln {VERSION}")
    parser.add_argument(
        "--root", default=None, help="store directory (default /var/lib/kiln as root; KILN_ROOT)"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"builder.cli.commands.{name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one kiln command; return its exit status (0 ok, 1 failed, 2 usage)."""
    parser = build_parser()
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


if __name__ == "__main__":
    sys.exit(main())
