"""``kiln completion`` (run in real bash and zsh) and ``kiln df`` on a small store."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from pathlib import Path

import pytest

from builder.cli.commands.completion import CommandSpec, command_specs, completion_script
from builder.cli.main import build_parser, main
from builder.store import Store
from tests.conftest import require_tool

BASH_DRIVER = """
source "$1"; shift
COMP_WORDS=("$@"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); COMPREPLY=()
_kiln
printf '%s\\n' "${COMPREPLY[@]}"
"""

ZSH_DRIVER = """
compadd() {  # the real compadd keeps the words the current one starts
  [[ $1 == -- ]] && shift
  local word
  for word in "$@"; do [[ $word == "${words[CURRENT]}"* ]] && print -r -- $word; done
}
_describe() { printf '%s\\n' "${(@P)2}"; }
_files() { print -- '<files>'; }
compdef() { :; }
source "$1"; shift
words=("$@"); CURRENT=$#
_kiln
"""


def complete(shell: str, tmp_path: Path, *words: str) -> list[str]:
    require_tool(shell)
    script = tmp_path / f"kiln.{shell}"
    script.write_text(completion_script(shell, build_parser()))
    driver = BASH_DRIVER if shell == "bash" else ZSH_DRIVER
    result = subprocess.run(
        [shell, "-c", driver, shell, str(script), *words],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert result.stderr == ""
    return result.stdout.splitlines()


def test_specs_follow_the_argparse_tree() -> None:
    parser = argparse.ArgumentParser(prog="kiln")
    parser.add_argument("--root")
    commands = parser.add_subparsers()
    build = commands.add_parser("build", help="build an image")
    build.add_argument("-q", "--quiet", action="store_true")
    build.add_argument("--progress", choices=("plain", "json"))
    build.add_argument("context")
    shell = commands.add_parser("completion")
    shell.add_argument("shell", choices=("bash", "zsh"))
    assert list(command_specs(parser)) == [
        CommandSpec(
            "kiln", {"build": "build an image", "completion": ""}, ["-h", "--help", "--root"], ["--root"]
        ),
        CommandSpec(
            "kiln build",
            options=["-h", "--help", "-q", "--quiet", "--progress"],
            value_options=["--progress"],
            choices={"--progress": ["plain", "json"]},
        ),
        CommandSpec("kiln completion", options=["-h", "--help"], arguments=["bash", "zsh"]),
    ]


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completes_commands_flags_and_their_values(shell: str, tmp_path: Path) -> None:
    assert complete(shell, tmp_path, "kiln", "completion", "") == ["bash", "zsh"]
    assert complete(shell, tmp_path, "kiln", "--root", "/srv/kiln", "df", "--format", "") == ["table", "json"]
    assert complete(shell, tmp_path, "kiln", "df", "--") == ["--help", "--format"]


def test_bash_completes_command_names_and_a_flag_value_after_equals(tmp_path: Path) -> None:
    assert complete("bash", tmp_path, "kiln", "d") == ["debug", "df"]
    assert complete("bash", tmp_path, "kiln", "df", "--format", "=", "j") == ["json"]
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    assert complete("bash", tmp_path, "kiln", "debug", "ast", "-f", "Dock") == ["Dockerfile"]


def test_zsh_describes_commands(tmp_path: Path) -> None:
    described = complete("zsh", tmp_path, "kiln", "")
    assert "df:show the store's disk usage" in described
    assert "completion:print a shell completion script" in described


def test_df_counts_each_kind_and_hard_links_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "store"
    with Store.open(root) as store:
        store.blobs.put_bytes(b"a" * 1000)
        store.blobs.put_bytes(b"b" * 24)
    upper = root / "containers" / "c1" / "upper"
    upper.mkdir(parents=True)
    (upper / "file").write_bytes(b"x" * 300)
    os.link(upper / "file", upper / "same-file")
    cache = root / "cache-mounts" / "0123"
    cache.mkdir(parents=True)
    (cache / "pkg").write_bytes(b"y" * 4000)
    assert main(["--root", str(root), "df", "--format", "json"]) == 0
    assert [json.loads(line) for line in capsys.readouterr().out.splitlines()] == [
        {"Type": "Images", "Total": 0, "Size": None},
        {"Type": "Blobs", "Total": 2, "Size": 1024},
        {"Type": "Snapshots", "Total": 0, "Size": 0},
        {"Type": "Containers", "Total": 1, "Size": 300},
        {"Type": "Cache mounts", "Total": 1, "Size": 4000},
        {"Type": "Build cache records", "Total": 0, "Size": None},
    ]
    assert main(["--root", str(root), "df"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "TYPE                  TOTAL     SIZE",
        "Images                    0        -",
        "Blobs                     2   1.02kB",
        "Snapshots                 0       0B",
        "Containers                1     300B",
        "Cache mounts              1      4kB",
        "Build cache records       0        -",
    ]


def test_help_of_the_new_commands_is_complete(capsys: pytest.CaptureFixture[str]) -> None:
    for command in (["df"], ["completion"]):
        with pytest.raises(SystemExit):
            main([*command, "--help"])
        help_text = capsys.readouterr().out
        assert help_text.startswith(f"usage: kiln {command[0]} [-h]")
    with pytest.raises(SystemExit):
        main(["--help"])
    top = capsys.readouterr().out
    assert "df" in top and "show the store's disk usage" in top
    assert "completion" in top and "print a shell completion script" in top
