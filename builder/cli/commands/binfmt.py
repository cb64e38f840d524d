"""``kiln setup-binfmt``: register QEMU user emulation so RUN works for foreign platforms.

Registers, from Debian's ``qemu-user-static`` binfmt.d files, a handler with the F
(fix-binary) flag for every platform asked for that this machine cannot run natively, so
``kiln build --platform linux/arm64`` and ``kiln run --platform linux/arm64`` can exec
arm64 binaries inside their containers. Needs root; the handlers last until reboot.
"""

from __future__ import annotations

import argparse


def run_setup_binfmt(args: argparse.Namespace) -> int:
    from builder.cli.platform_builds import parse_platform_list
    from builder.emulation import emulation_problem, setup_binfmt

    platforms = parse_platform_list(args.platform)
    registered = setup_binfmt(platforms)
    for name in registered:
        print(f"registered {name}")
    for platform in platforms:
        problem = emulation_problem(platform)
        print(f"{platform}: {'ready' if problem is None else problem}")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "setup-binfmt", help="register QEMU emulators (binfmt_misc) to run foreign-platform steps"
    )
    parser.add_argument(
        "--platform",
        default="linux/arm64,linux/arm,linux/ppc64le,linux/s390x,linux/riscv64",
        help="comma-separated platforms to make runnable (default: the common ones)",
    )
    parser.set_defaults(handler=run_setup_binfmt)
