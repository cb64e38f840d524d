"""``kiln debug``: look inside the build definition without building (``ast``).

One small function per subcommand; each reads the Dockerfile the same way (``-f``, ``-`` for
standard input) and prints one result.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from builder.errors import UsageError


def _read_dockerfile(path: str) -> tuple[bytes, str]:
    """The Dockerfile's bytes and the name errors should give it (``-`` reads standard input)."""
    if path == "-":
        return sys.stdin.buffer.read(), "<stdin>"
    try:
        return Path(path).read_bytes(), path
    except OSError as err:
        raise UsageError(f"cannot read {path}: {err.strerror}") from err


def run_ast(args: argparse.Namespace) -> int:
    """Print the parsed Dockerfile in BuildKit's AST dump format."""
    from frontends.dockerfile.dump import dump
    from frontends.dockerfile.parser import parse

    data, name = _read_dockerfile(args.file)
    print(dump(parse(data, name)))
    return 0


def run_graph(args: argparse.Namespace) -> int:
    """Print the instruction graph the Dockerfile converts to (base images read as empty)."""
    from builder.graph import to_jsonable
    from builder.resolver import EmptyResolver
    from frontends.dockerfile.convert import build_graph
    from frontends.dockerfile.parser import parse

    data, name = _read_dockerfile(args.file)
    build_args: dict[str, str] = {}
    for pair in args.build_arg:
        key, has_value, value = pair.partition("=")
        if not key or not has_value:
            raise UsageError(f"--build-arg expects KEY=VALUE, not {pair!r}")
        build_args[key] = value
    graph = build_graph(
        parse(data, name), resolver=EmptyResolver(), target=args.target, build_args=build_args
    )
    print(json.dumps(to_jsonable(graph), indent=2))
    return 0


def _print_usage(parser: argparse.ArgumentParser) -> int:
    """``kiln debug`` alone: list the subcommands, exit as a usage error."""
    parser.print_help(sys.stderr)
    return 2


def _add_file_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-f", "--file", default="Dockerfile", help="the Dockerfile to read (- for standard input)"
    )


def register(subparsers: Any) -> None:
    """Add ``kiln debug`` and its subcommands."""
    debug = subparsers.add_parser("debug", help="show how kiln reads a Dockerfile")
    debug.set_defaults(handler=lambda _args: _print_usage(debug))
    commands = debug.add_subparsers(dest="debug_command", metavar="SUBCOMMAND")
    ast_parser = commands.add_parser("ast", help="print the parsed instructions (BuildKit's format)")
    _add_file_option(ast_parser)
    ast_parser.set_defaults(handler=run_ast)
    graph_parser = commands.add_parser("graph", help="print the instruction graph as JSON")
    _add_file_option(graph_parser)
    graph_parser.add_argument("--target", default=None, help="the stage to build (default: the last)")
    graph_parser.add_argument(
        "--build-arg", action="append", default=[], metavar="KEY=VALUE", help="a build argument"
    )
    graph_parser.set_defaults(handler=run_graph)
