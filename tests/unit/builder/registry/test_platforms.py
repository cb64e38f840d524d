"""Platform parsing, the host's platform, and which index entry serves a platform."""

from __future__ import annotations

import pytest

from builder.errors import UsageError
from builder.graph import Platform
from builder.oci.digest import Digest
from builder.oci.model import Descriptor, Index
from builder.registry import platforms as platforms_module
from builder.registry.platforms import host_platform, normalise, parse_platform, select_manifest


def _entry(number: int, platform: Platform | None) -> Descriptor:
    return Descriptor(
        "application/vnd.oci.image.manifest.v1+json",
        Digest.from_hex(f"{number:064x}"),
        100,
        platform=platform,
    )


AMD64 = _entry(1, Platform("linux", "amd64"))
ARM_V6 = _entry(2, Platform("linux", "arm", "v6"))
ARM_V7 = _entry(3, Platform("linux", "arm", "v7"))
ARM64_V8 = _entry(4, Platform("linux", "arm64", "v8"))
ARM64_BARE = _entry(5, Platform("linux", "arm64"))
ATTESTATION = _entry(6, Platform("unknown", "unknown"))
NO_PLATFORM = _entry(7, None)
WINDOWS = _entry(8, Platform("windows", "amd64"))


@pytest.mark.parametrize(
    ("entries", "wanted", "expected"),
    [
        ((NO_PLATFORM, ATTESTATION, WINDOWS, AMD64), Platform("linux", "amd64"), AMD64),
        ((AMD64, ARM_V6, ARM_V7), Platform("linux", "arm", "v7"), ARM_V7),
        ((AMD64, ARM_V6, ARM_V7), Platform("linux", "arm"), ARM_V7),
        ((AMD64, ARM_V6), Platform("linux", "arm", "v7"), None),
        ((ARM64_BARE, ARM64_V8), Platform("linux", "arm64"), ARM64_BARE),
        ((ARM64_V8,), Platform("linux", "arm64"), ARM64_V8),
        ((ARM64_BARE,), Platform("linux", "arm64", "v8"), ARM64_BARE),
        ((AMD64, ARM64_V8), Platform("linux", "s390x"), None),
        ((AMD64, WINDOWS), Platform("windows", "amd64"), WINDOWS),
    ],
)
def test_select_manifest(
    entries: tuple[Descriptor, ...], wanted: Platform, expected: Descriptor | None
) -> None:
    assert select_manifest(Index(entries), wanted) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("linux/amd64", Platform("linux", "amd64")),
        ("linux/arm64/v8", Platform("linux", "arm64", "v8")),
        (" Linux/ARM/v7 ", Platform("linux", "arm", "v7")),
    ],
)
def test_parse_platform(text: str, expected: Platform) -> None:
    assert parse_platform(text) == expected


@pytest.mark.parametrize("text", ["linux", "linux/", "/amd64", "a/b/c/d", ""])
def test_parse_platform_refuses(text: str) -> None:
    with pytest.raises(UsageError) as raised:
        parse_platform(text)
    assert str(raised.value) == f"invalid platform {text!r}: expected os/arch[/variant]"


@pytest.mark.parametrize(
    ("machine", "expected"),
    [
        ("x86_64", Platform("linux", "amd64")),
        ("aarch64", Platform("linux", "arm64", "v8")),
        ("armv7l", Platform("linux", "arm", "v7")),
        ("armv6l", Platform("linux", "arm", "v6")),
        ("riscv64", Platform("linux", "riscv64")),
    ],
)
def test_host_platform(machine: str, expected: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(platforms_module, "_machine", lambda: machine)
    assert host_platform() == expected


def test_normalise_fills_default_variants_only() -> None:
    assert normalise(Platform("linux", "arm64")) == Platform("linux", "arm64", "v8")
    assert normalise(Platform("linux", "arm")) == Platform("linux", "arm", "v7")
    assert normalise(Platform("linux", "arm", "v5")) == Platform("linux", "arm", "v5")
    assert normalise(Platform("linux", "amd64")) == Platform("linux", "amd64")
