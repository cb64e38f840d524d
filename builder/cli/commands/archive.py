"""``kiln save`` and ``kiln load``: images to and from OCI or docker archives.

``save`` writes to a temporary file beside ``-o FILE`` and renames it, so an interrupted
save never leaves a half archive under the name asked for; without ``-o`` it writes to
standard output (refusing a terminal, as docker does). ``load`` detects the format.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from builder.cli.commands.images import open_store
from builder.errors import KilnError, UsageError
from builder.oci.reference import parse_reference

if TYPE_CHECKING:
    from builder.store import Store


def _write(store: Store, images: list[str], args: argparse.Namespace, out: BinaryIO) -> None:
    from builder.export.docker_archive import write_docker_archive
    from builder.export.oci_archive import write_oci_archive

    if args.format == "oci":
        write_oci_archive(store, images, out, compression=args.compression)
    else:
        write_docker_archive(store, images, out)


def run_save(args: argparse.Namespace) -> int:
    args.images = list(dict.fromkeys(args.images))  # an image named twice is written once
    with open_store(args) as store:
        for image in args.images:
            store.resolve(image)
        if args.output is None:
            if sys.stdout.isatty():
                raise UsageError("refusing to write an archive to a terminal: use -o FILE or redirect")
            _write(store, args.images, args, sys.stdout.buffer)
            sys.stdout.buffer.flush()
            return 0
        import secrets  # loads OpenSSL's hashes: only when an archive is written

        target = Path(args.output)
        temp_path = target.with_name(f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
        try:
            with temp_path.open("wb") as out:
                _write(store, args.images, args, out)
            os.replace(temp_path, target)
        finally:
            temp_path.unlink(missing_ok=True)
    return 0


def run_load(args: argparse.Namespace) -> int:
    from builder.export.load import load_archive

    with open_store(args) as store:
        if args.input is None:
            loaded = load_archive(store, sys.stdin.buffer)
        else:
            source = Path(args.input)
            if not source.is_file():
                raise KilnError(f"cannot read {args.input}: no such file")
            with source.open("rb") as stream:
                loaded = load_archive(store, stream)
        for image in loaded:
            if image.names:
                for name in image.names:
                    print(f"Loaded image: {parse_reference(name).familiar()}")
            else:
                print(f"Loaded image ID: {store.manifest(image.manifest_digest)['config']['digest']}")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("save", help="write images to an archive (docker or OCI)")
    parser.add_argument("images", nargs="+", metavar="IMAGE")
    parser.add_argument("-o", "--output", default=None, help="the archive file (default: standard output)")
    parser.add_argument("--format", choices=("docker", "oci"), default="docker", help="archive format")
    parser.add_argument(
        "--compression",
        default="gzip",
        choices=("gzip", "zstd", "none"),
        help="--format oci: how layers the store keeps uncompressed (built ones) are written",
    )
    parser.set_defaults(handler=run_save)

    parser = subparsers.add_parser("load", help="load images from an archive (docker or OCI, detected)")
    parser.add_argument("-i", "--input", default=None, help="the archive file (default: standard input)")
    parser.set_defaults(handler=run_load)
