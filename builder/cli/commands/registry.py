"""``kiln pull``, ``kiln push``, ``kiln login``, ``kiln logout`` and ``kiln pin``.

Progress goes to standard error as plain lines; standard output gets only what a script
wants (the pulled reference, the pushed digest). Passwords are read from ``-p`` or, better,
``--password-stdin``, and never printed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from builder.cli.commands.images import open_store
from builder.errors import UsageError
from builder.oci.reference import Reference, parse_reference


def run_pull(args: argparse.Namespace) -> int:
    from builder.progress.plain import PlainRenderer
    from builder.registry import host_platform, parse_platform, pull_image

    platform = parse_platform(args.platform) if args.platform else host_platform()
    reference = parse_reference(args.reference)
    with open_store(args) as store:
        digest = pull_image(
            store, args.reference, platform=platform, sink=PlainRenderer(sys.stderr), insecure=args.insecure
        )
    print(f"Digest: {digest}", file=sys.stderr)
    print(reference)
    return 0


def run_push(args: argparse.Namespace) -> int:
    from builder.progress.plain import PlainRenderer
    from builder.registry import push_image

    with open_store(args) as store:
        digest = push_image(
            store,
            args.reference,
            source=args.source,
            sink=PlainRenderer(sys.stderr),
            insecure=args.insecure,
            compression=args.compression,
        )
    print(digest)
    return 0


def run_login(args: argparse.Namespace) -> int:
    from builder.registry import Credentials, RegistryClient, save_login

    if args.password is not None and args.password_stdin:
        raise UsageError("kiln login: use either --password or --password-stdin")
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif args.password is not None:
        password = args.password
    else:
        import getpass

        password = getpass.getpass("Password: ")
    username = args.username or input("Username: ").strip()
    if not username or not password:
        raise UsageError("kiln login: a user name and a password are needed")
    server = args.server
    credentials = Credentials(username, password)
    with RegistryClient(server, insecure=args.insecure, credentials=credentials) as client:
        client.ping()
    path = save_login(server, credentials)
    print(f"Login Succeeded (saved in {path})")
    return 0


def run_logout(args: argparse.Namespace) -> int:
    from builder.registry import remove_login

    if remove_login(args.server):
        print(f"Removing login credentials for {args.server}")
    else:
        print(f"Not logged in to {args.server}")
    return 0


def run_pin(args: argparse.Namespace) -> int:
    from builder.registry import RegistryClient
    from builder.registry.manifests import head_manifest_digest
    from builder.registry.pin import pin_dockerfile

    clients: dict[str, RegistryClient] = {}
    resolved: dict[str, str] = {}

    def resolve(reference: Reference) -> str:
        from builder.registry import RegistryClient

        key = str(reference)
        if key not in resolved:
            if reference.registry not in clients:
                clients[reference.registry] = RegistryClient(reference.registry, insecure=args.insecure)
            resolved[key] = head_manifest_digest(clients[reference.registry], reference)
        return resolved[key]

    path = Path(args.file)
    try:
        pins = pin_dockerfile(path, resolve, check=args.check)
    finally:
        for client in clients.values():
            client.close()
    stale = [pin for pin in pins if pin.stale]
    for pin in stale:
        verb = "stale" if args.check else "pinned"
        print(f"{path}:{pin.line}: {verb}: {pin.written} -> {pin.pinned}")
    if args.check and stale:
        return 1
    if not stale:
        print(f"{path}: all {len(pins)} image references are pinned")
    return 0


def _insecure_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--insecure-registry",
        dest="insecure",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="talk plain http to this registry (localhost and 127.0.0.1 always are)",
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("pull", help="pull an image from a registry into the store")
    parser.add_argument("reference", metavar="NAME[:TAG|@DIGEST]")
    parser.add_argument("--platform", default=None, help="os/arch[/variant] (default: this machine's)")
    _insecure_option(parser)
    parser.set_defaults(handler=run_pull)

    parser = subparsers.add_parser("push", help="push an image from the store to a registry")
    parser.add_argument("reference", metavar="NAME[:TAG]")
    parser.add_argument("--source", default=None, help="push this stored image instead of NAME itself")
    parser.add_argument(
        "--compression",
        default="gzip",
        choices=("gzip", "zstd", "none"),
        help="how layers the store keeps uncompressed (built ones) are sent",
    )
    _insecure_option(parser)
    parser.set_defaults(handler=run_push)

    parser = subparsers.add_parser("login", help="save credentials for a registry")
    parser.add_argument("server", metavar="SERVER")
    parser.add_argument("-u", "--username", default=None)
    parser.add_argument("-p", "--password", default=None, help="prefer --password-stdin")
    parser.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    _insecure_option(parser)
    parser.set_defaults(handler=run_login)

    parser = subparsers.add_parser("logout", help="forget the saved credentials for a registry")
    parser.add_argument("server", metavar="SERVER")
    parser.set_defaults(handler=run_logout)

    parser = subparsers.add_parser("pin", help="pin every FROM and COPY --from image to its digest")
    parser.add_argument("-f", "--file", default="Dockerfile", help="the Dockerfile (default ./Dockerfile)")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when a pin is stale")
    _insecure_option(parser)
    parser.set_defaults(handler=run_pin)
