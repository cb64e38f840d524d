"""Docker's rules for what a container runs: Entrypoint + Cmd, env, working dir, user."""

from __future__ import annotations

import pytest

from builder.containers.process import DEFAULT_PATH, RunOverrides, merge_env, resolve_process
from builder.errors import UsageError

IMAGE = {
    "Entrypoint": ["/entry.sh"],
    "Cmd": ["--help"],
    "Env": ["PATH=/bin", "A=1"],
    "WorkingDir": "/srv",
    "User": "app",
}


def test_image_config_alone() -> None:
    process = resolve_process(IMAGE, RunOverrides(), caller_env={})
    assert process.entrypoint == ("/entry.sh",)
    assert process.cmd == ("--help",)
    assert process.env == ("PATH=/bin", "A=1")
    assert (process.working_dir, process.user) == ("/srv", "app")


def test_arguments_replace_cmd_but_keep_the_entrypoint() -> None:
    process = resolve_process(IMAGE, RunOverrides(cmd=("serve", "-v")), caller_env={})
    assert (process.entrypoint, process.cmd) == (("/entry.sh",), ("serve", "-v"))


def test_flags_override_env_workdir_and_user() -> None:
    overrides = RunOverrides(env=("A=2", "B=3", "FROM_CALLER", "UNSET"), working_dir="/w", user="0:0")
    process = resolve_process(IMAGE, overrides, caller_env={"FROM_CALLER": "x"})
    assert process.env == ("PATH=/bin", "A=2", "B=3", "FROM_CALLER=x")
    assert (process.working_dir, process.user) == ("/w", "0:0")


def test_defaults_when_the_config_is_empty() -> None:
    process = resolve_process({"Cmd": ["sh"]}, RunOverrides(), caller_env={})
    assert process.env == (f"PATH={DEFAULT_PATH}",)
    assert (process.working_dir, process.user) == ("/", "")


def test_default_path_goes_first() -> None:
    assert merge_env(["X=1"], ["Y=2"], {}) == (f"PATH={DEFAULT_PATH}", "X=1", "Y=2")


@pytest.mark.parametrize(
    ("config", "overrides", "message"),
    [
        ({}, RunOverrides(), "no command specified"),
        ({"Cmd": ["sh"]}, RunOverrides(working_dir="relative"), "not an absolute path"),
        ({"Cmd": ["sh"]}, RunOverrides(env=("=v",)), "expected KEY=VALUE"),
    ],
)
def test_refusals(config: dict[str, object], overrides: RunOverrides, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        resolve_process(config, overrides, caller_env={})
