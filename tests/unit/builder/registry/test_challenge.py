"""WWW-Authenticate parsing: the headers real registries send, and the awkward corners."""

from __future__ import annotations

import pytest

from builder.registry.challenge import Challenge, parse_challenges


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
            'scope="repository:library/alpine:pull"',
            [
                Challenge(
                    "bearer",
                    {
                        "realm": "https://auth.docker.io/token",
                        "service": "registry.docker.io",
                        "scope": "repository:library/alpine:pull",
                    },
                )
            ],
        ),
        ('Basic realm="Registry Realm"', [Challenge("basic", {"realm": "Registry Realm"})]),
        (
            "bearer realm=http://127.0.0.1:5001/token",
            [Challenge("bearer", {"realm": "http://127.0.0.1:5001/token"})],
        ),
        (
            'Basic realm="a, b", Bearer realm="x",service=y',
            [Challenge("basic", {"realm": "a, b"}), Challenge("bearer", {"realm": "x", "service": "y"})],
        ),
        (r'Bearer realm="say \"hi\""', [Challenge("bearer", {"realm": 'say "hi"'})]),
        ('Bearer Realm="R", SERVICE="S"', [Challenge("bearer", {"realm": "R", "service": "S"})]),
        ("", []),
        ("Negotiate", [Challenge("negotiate", {})]),
    ],
)
def test_parse_challenges(header: str, expected: list[Challenge]) -> None:
    assert parse_challenges(header) == expected


def test_realm_is_empty_when_absent() -> None:
    assert Challenge("bearer", {"service": "s"}).realm == ""
