"""kiln pin without a network: which words are images, how they are rewritten, what is kept."""

from __future__ import annotations

from pathlib import Path

from builder.oci.reference import Reference
from builder.registry.pin import Pin, Resolve, pin_dockerfile, plan_pins, rewrite

DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64


def _resolver(asked: list[str]) -> Resolve:
    def resolve(reference: Reference) -> str:
        asked.append(str(reference))
        return DIGEST_B if reference.repository.endswith("tools") else DIGEST_A

    return resolve


DOCKERFILE = (
    "# syntax=docker/dockerfile:1\n"
    "ARG BASE=alpine\n"
    "FROM $BASE AS variable\n"
    "FROM alpine AS build\n"
    "COPY --from=ghcr.io/acme/tools:2 /t /t\n"
    "COPY --from=build /x /y\n"
    "COPY --from=0 /x /z\n"
    "FROM build\n"
    "FROM scratch\n"
    "FROM busybox@" + DIGEST_B + "\n"
    "from   --platform=linux/amd64   debian:12   as   Deb  # trailing\n"
)


def test_plan_pins_finds_images_and_skips_stages_scratch_and_variables() -> None:
    asked: list[str] = []
    pins = plan_pins(DOCKERFILE, _resolver(asked))

    assert pins == [
        Pin(4, "alpine", f"alpine:latest@{DIGEST_A}"),
        Pin(5, "ghcr.io/acme/tools:2", f"ghcr.io/acme/tools:2@{DIGEST_B}"),
        Pin(10, f"busybox@{DIGEST_B}", f"busybox@{DIGEST_B}"),
        Pin(11, "debian:12", f"debian:12@{DIGEST_A}"),
    ]
    assert asked == ["docker.io/library/alpine:latest", "ghcr.io/acme/tools:2", "docker.io/library/debian:12"]


def test_rewrite_changes_only_the_image_words() -> None:
    pins = plan_pins(DOCKERFILE, _resolver([]))
    assert rewrite(DOCKERFILE, pins) == (
        DOCKERFILE.replace("FROM alpine AS", f"FROM alpine:latest@{DIGEST_A} AS")
        .replace("--from=ghcr.io/acme/tools:2 ", f"--from=ghcr.io/acme/tools:2@{DIGEST_B} ")
        .replace("   debian:12   ", f"   debian:12@{DIGEST_A}   ")
    )


def test_a_current_pin_is_not_stale_and_an_old_one_is() -> None:
    text = f"FROM alpine:3@{DIGEST_A}\nFROM ghcr.io/acme/tools:2@{DIGEST_A}\n"
    pins = plan_pins(text, _resolver([]))
    assert [pin.stale for pin in pins] == [False, True]
    assert rewrite(text, pins) == f"FROM alpine:3@{DIGEST_A}\nFROM ghcr.io/acme/tools:2@{DIGEST_B}\n"


def test_continuation_lines_are_searched_for_the_word(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM alpine\nCOPY \\\n  --from=ghcr.io/acme/tools:2 \\\n  /t /t\n")
    dockerfile.chmod(0o640)

    pins = pin_dockerfile(dockerfile, _resolver([]))

    assert [pin.line for pin in pins] == [1, 2]
    assert dockerfile.read_text() == (
        f"FROM alpine:latest@{DIGEST_A}\nCOPY \\\n  --from=ghcr.io/acme/tools:2@{DIGEST_B} \\\n  /t /t\n"
    )
    assert dockerfile.stat().st_mode & 0o777 == 0o640
    assert sorted(path.name for path in tmp_path.iterdir()) == ["Dockerfile"]


def test_check_changes_nothing(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM alpine\n")
    pins = pin_dockerfile(dockerfile, _resolver([]), check=True)
    assert [pin.stale for pin in pins] == [True]
    assert dockerfile.read_text() == "FROM alpine\n"
