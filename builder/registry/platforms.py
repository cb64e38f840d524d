"""Which platform an image is pulled for, and which manifest of an index serves it.

Docker and containerd normalise ``arm64`` to variant ``v8`` and ``arm`` to ``v7`` when none
is given; an index entry without a variant serves any variant. An exact variant match wins
over a compatible one.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from builder.errors import UsageError
from builder.graph import Platform

if TYPE_CHECKING:  # only annotations: a build asks for the host platform without parsing OCI JSON
    from builder.oci.model import Descriptor, Index

_MACHINE_ARCH = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm",
    "armv6l": "arm",
    "i386": "386",
    "i686": "386",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
}
_DEFAULT_VARIANT = {"arm64": "v8", "arm": "v7"}


def _machine() -> str:
    """The kernel's machine name (``x86_64``, ``aarch64``). ``os.uname`` rather than the
    ``platform`` module, whose import compiles a dozen regexes (~6 ms of every build's
    start-up) to answer the same question."""
    return os.uname().machine


def host_platform() -> Platform:
    """This machine's platform: ``linux/amd64`` on x86-64, ``linux/arm64/v8`` on aarch64."""
    machine = _machine().lower()
    architecture = _MACHINE_ARCH.get(machine, machine)
    variant = "v6" if machine == "armv6l" else _DEFAULT_VARIANT.get(architecture, "")
    return Platform("linux", architecture, variant)


def parse_platform(text: str) -> Platform:
    """``os/arch[/variant]`` as ``--platform`` takes it."""
    parts = text.strip().lower().split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise UsageError(f"invalid platform {text!r}: expected os/arch[/variant]")
    return Platform(parts[0], parts[1], parts[2] if len(parts) == 3 else "")


def normalise(platform: Platform) -> Platform:
    """Fill in the default variant (``arm64`` → ``v8``) as containerd's matcher does."""
    if platform.variant:
        return platform
    return Platform(platform.os, platform.architecture, _DEFAULT_VARIANT.get(platform.architecture, ""))


def select_manifest(index: Index, wanted: Platform) -> Descriptor | None:
    """The index entry for ``wanted``: an exact match first, then one without a variant."""
    wanted = normalise(wanted)
    compatible: Descriptor | None = None
    for entry in index.manifests:
        if entry.platform is None:
            continue
        offered = normalise(entry.platform)
        if (offered.os, offered.architecture) != (wanted.os, wanted.architecture):
            continue
        if offered.variant == wanted.variant:
            return entry
        if compatible is None and (not entry.platform.variant or not wanted.variant):
            compatible = entry
    return compatible
