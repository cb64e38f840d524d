"""Container commands: ``run``, ``ps``, ``rm``, ``commit``, with docker's flags and output.

``kiln run`` runs in the foreground: the container's output (stdout and stderr together)
streams to kiln's stdout and kiln exits with the container's status, 125 when it could not
be started, as docker does.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from builder.cli.commands._humanize import human_age
from builder.cli.commands.images import add_format_option, open_store
from builder.errors import KilnError

if TYPE_CHECKING:
    from builder.containers import ContainerRecord

_COMMAND_WIDTH = 20


def _write_output(chunk: bytes) -> None:
    sys.stdout.buffer.write(chunk)
    sys.stdout.buffer.flush()


def run_run(args: argparse.Namespace) -> int:
    from builder.containers import (
        RunOverrides,
        create_container,
        find_record,
        remove_container,
        start_container,
    )
    from builder.exec.runtime import find_runtime

    overrides = RunOverrides(
        cmd=tuple(args.command), env=tuple(args.env), working_dir=args.workdir or "", user=args.user or ""
    )
    runtime = find_runtime(args.runtime) if args.runtime else None
    from builder.emulation import require_emulation
    from builder.platform_index import image_platform
    from builder.registry.platforms import parse_platform

    platform = parse_platform(args.platform) if args.platform else None
    with open_store(args) as store:
        # A foreign image (asked for, or the only one the name holds) needs an emulator.
        declared = image_platform(store, store.resolve_for(args.image, platform))
        if declared.architecture:
            require_emulation(declared, "kiln run")
        record = create_container(store, args.image, overrides, name=args.name or "", platform=platform)
        sys.stdout.flush()
        try:
            ended = start_container(store, record, on_output=_write_output, runtime=runtime)
        finally:
            if args.rm:
                remove_container(store, find_record(store.meta, record.id), force=True)
    return ended.exit_code if ended.exit_code is not None else 0


def _status(record: ContainerRecord) -> str:
    if record.is_running():
        return f"Up {human_age(record.created).removesuffix(' ago')}"
    if record.status == "created":
        return "Created"
    ended = human_age(record.finished) if record.finished else "a while ago"
    return f"Exited ({record.exit_code if record.exit_code is not None else -1}) {ended}"


def _command_cell(record: ContainerRecord, no_trunc: bool) -> str:
    command = " ".join(record.argv)
    if not no_trunc and len(command) > _COMMAND_WIDTH:
        command = command[: _COMMAND_WIDTH - 1] + "…"
    return f'"{command}"'


def run_ps(args: argparse.Namespace) -> int:
    from builder.containers import all_records

    with open_store(args) as store:
        records = [record for record in all_records(store.meta) if args.all or record.is_running()]
    if args.quiet:
        if records:
            print("\n".join(record.id if args.no_trunc else record.short_id for record in records))
        return 0
    from builder.progress.tables import Column, render_table

    as_json = args.format == "json"
    columns = [
        Column("CONTAINER ID", key="ID"),
        Column("IMAGE", key="Image"),
        Column("COMMAND", key="Command"),
        Column("CREATED", key="CreatedAt"),
        Column("STATUS", key="Status"),
        Column("NAMES", key="Names"),
    ]
    rows: list[list[object]] = []
    for record in records:
        rows.append(
            [
                record.id if args.no_trunc else record.short_id,
                record.image,
                _command_cell(record, args.no_trunc),
                record.created if as_json else human_age(record.created),
                _status(record),
                record.name,
            ]
        )
    render_table(columns, rows, stream=sys.stdout, format=args.format)
    return 0


def run_rm(args: argparse.Namespace) -> int:
    from builder.containers import find_record, remove_container

    status = 0
    with open_store(args) as store:
        for wanted in args.containers:
            try:
                remove_container(store, find_record(store.meta, wanted), force=args.force)
            except KilnError as err:
                print(f"error: {err}", file=sys.stderr)
                status = 1
                continue
            print(wanted)
    return status


def run_commit(args: argparse.Namespace) -> int:
    from builder.containers import CommitOptions, commit_container, find_record

    options = CommitOptions(message=args.message, author=args.author, changes=tuple(args.change))
    with open_store(args) as store:
        record = find_record(store.meta, args.container)
        manifest_digest = commit_container(store, record, args.name, options)
        print(store.manifest(manifest_digest)["config"]["digest"])
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("run", help="run a command in a new container")
    parser.add_argument("--rm", action="store_true", help="remove the container when it exits")
    parser.add_argument("--name", default="", help="the container's name")
    parser.add_argument("-e", "--env", action="append", default=[], help="set an environment variable")
    parser.add_argument("-w", "--workdir", default="", help="the working directory inside the container")
    parser.add_argument("-u", "--user", default="", help="user[:group], a name or a numeric id")
    parser.add_argument("--runtime", default="", help="the OCI runtime (crun or runc; default: detected)")
    parser.add_argument("--platform", default="", help="run this platform's image (emulated when foreign)")
    parser.add_argument("image", metavar="IMAGE")
    parser.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND", help="replaces the Cmd")
    parser.set_defaults(handler=run_run)

    parser = subparsers.add_parser("ps", help="list containers")
    parser.add_argument("-a", "--all", action="store_true", help="show all containers (default: running)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only container ids")
    parser.add_argument("--no-trunc", action="store_true", help="do not shorten output")
    add_format_option(parser)
    parser.set_defaults(handler=run_ps)

    parser = subparsers.add_parser("rm", help="remove containers")
    parser.add_argument("-f", "--force", action="store_true", help="remove even a running container")
    parser.add_argument("containers", nargs="+", metavar="CONTAINER")
    parser.set_defaults(handler=run_rm)

    parser = subparsers.add_parser("commit", help="create a new image from a container's changes")
    parser.add_argument("-m", "--message", default="", help="the commit message (history comment)")
    parser.add_argument("-a", "--author", default="", help="the author")
    parser.add_argument("-c", "--change", action="append", default=[], help="a config instruction to apply")
    parser.add_argument("container", metavar="CONTAINER")
    parser.add_argument("name", nargs="?", default=None, metavar="REPOSITORY[:TAG]")
    parser.set_defaults(handler=run_commit)
