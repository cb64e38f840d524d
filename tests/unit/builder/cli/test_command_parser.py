"""``kiln COMMAND ...`` builds only that command's parser (start-up time): the table of
which module owns which command must match what the modules register, and a command line
that names no command, or one the table does not know, still gets the full parser."""

from __future__ import annotations

import argparse

import pytest

from builder.cli import main as cli


def _commands(parser: argparse.ArgumentParser) -> set[str]:
    [action] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return set(action.choices)


def test_every_registered_command_has_its_owner_in_the_table() -> None:
    assert set(cli.COMMAND_OWNERS) == _commands(cli.build_parser())


@pytest.mark.parametrize("command", sorted(cli.COMMAND_OWNERS))
def test_the_owner_alone_registers_the_command(command: str) -> None:
    assert command in _commands(cli.build_parser(command))


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["build", "-q", "."], "build"),
        (["--root", "/tmp/s", "images"], "images"),
        (["--root=/tmp/s", "ps"], "ps"),
        (["--version"], "--version"),
        (["--root", "/tmp/s", "--version", "build"], "--version"),
        (["--help"], None),
        (["--ro", "/tmp/s", "build"], None),
        ([], None),
    ],
)
def test_named_command(argv: list[str], expected: str | None) -> None:
    assert cli._named_command(argv) == expected


def test_an_unknown_command_is_reported_by_the_full_parser(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["bild"]) == 2
    assert "invalid choice: 'bild'" in capsys.readouterr().err


def test_a_named_command_parses_as_with_the_full_parser() -> None:
    argv = ["--root", "/tmp/s", "build", "-q", "-t", "x:1", "."]
    full = vars(cli.build_parser().parse_args(argv))
    alone = vars(cli.build_parser("build").parse_args(argv))
    assert alone == full


@pytest.mark.parametrize("argv", [["--version"], ["--root", "/tmp/s", "--version", "build"]])
def test_version_needs_no_command_parser(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"kiln {cli.VERSION}\n"
