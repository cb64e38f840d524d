"""``kiln import --change`` lines applied to a config, as ``docker import --change`` does."""

from __future__ import annotations

from typing import Any

import pytest

from builder.errors import UsageError
from builder.export.config_changes import apply_change


def changed(*lines: str) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for line in lines:
        apply_change(config, line)
    return config


def test_exec_and_shell_forms() -> None:
    assert changed('CMD ["/bin/sh", "-c", "echo hi"]') == {"Cmd": ["/bin/sh", "-c", "echo hi"]}
    assert changed("ENTRYPOINT top -b") == {"Entrypoint": ["/bin/sh", "-c", "top -b"]}
    assert changed("CMD [not json") == {"Cmd": ["/bin/sh", "-c", "[not json"]}


def test_env_replaces_and_appends() -> None:
    assert changed("ENV A=1 B=two", "ENV A=3", "env C four") == {"Env": ["B=two", "A=3", "C=four"]}


def test_other_instructions() -> None:
    assert changed(
        'LABEL a=b "c d"=e',
        "EXPOSE 80 53/udp",
        'VOLUME ["/data"]',
        "VOLUME /cache",
        "USER 1000:1000",
        "WORKDIR /app",
        "STOPSIGNAL SIGTERM",
        "ONBUILD RUN true",
    ) == {
        "Labels": {"a": "b", "c d": "e"},
        "ExposedPorts": {"80/tcp": {}, "53/udp": {}},
        "Volumes": {"/data": {}, "/cache": {}},
        "User": "1000:1000",
        "WorkingDir": "/app",
        "StopSignal": "SIGTERM",
        "OnBuild": ["RUN true"],
    }


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("RUN true", "not a config instruction"),
        ("CMD", "needs an argument"),
        ("ENV A=1 B", "expected KEY=VALUE"),
    ],
)
def test_refused(line: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        apply_change({}, line)
