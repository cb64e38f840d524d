"""References normalise as docker's: default registry, library/ prefix, latest tag."""

from __future__ import annotations

import pytest

from builder.errors import UsageError
from builder.oci.reference import is_digest, parse_reference

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "full", "familiar"),
    [
        ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
        ("user/app:v1", "docker.io/user/app:v1", "user/app:v1"),
        ("docker.io/library/alpine", "docker.io/library/alpine:latest", "alpine:latest"),
        ("index.docker.io/alpine", "docker.io/library/alpine:latest", "alpine:latest"),
        ("localhost:5000/a/b:t", "localhost:5000/a/b:t", "localhost:5000/a/b:t"),
        ("localhost/app", "localhost/app:latest", "localhost/app:latest"),
        ("quay.io/org/img", "quay.io/org/img:latest", "quay.io/org/img:latest"),
        (f"busybox@{DIGEST}", f"docker.io/library/busybox@{DIGEST}", f"busybox@{DIGEST}"),
        (f"busybox:1@{DIGEST}", f"docker.io/library/busybox:1@{DIGEST}", f"busybox:1@{DIGEST}"),
    ],
)
def test_normalisation(text: str, full: str, familiar: str) -> None:
    reference = parse_reference(text)
    assert str(reference) == full
    assert reference.familiar() == familiar


def test_parts() -> None:
    reference = parse_reference("localhost:5000/a/b:t")
    assert (reference.registry, reference.repository, reference.tag, reference.digest) == (
        "localhost:5000",
        "a/b",
        "t",
        None,
    )
    assert reference.familiar_name() == "localhost:5000/a/b"
    assert str(parse_reference("busybox").with_tag("x")) == "docker.io/library/busybox:x"


@pytest.mark.parametrize("text", ["", "Busybox", "a//b", "busybox:", "busybox:-bad", "a@sha256:zz", "-a"])
def test_invalid(text: str) -> None:
    with pytest.raises(UsageError):
        parse_reference(text)


def test_is_digest() -> None:
    assert is_digest(DIGEST)
    assert not is_digest("busybox")
