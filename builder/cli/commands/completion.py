"""``kiln completion bash|zsh``: shell completion generated from kiln's own argument parser.

The script is data plus one small walker: tables (keyed by the command path, ``kiln build``)
of subcommands, options, options that take a value and the values they accept, all read from
the argparse tree, so a new command or flag completes without editing this file. The walker
follows the words typed so far to the deepest command, skipping options and their values.
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Iterator
from dataclasses import field
from typing import Any

from builder.lazyclasses import dataclass

SHELLS = ("bash", "zsh")


@dataclass
class CommandSpec:
    """What can follow one command path: subcommands (with help), options, option values,
    and the values of positional arguments that have a fixed set (``completion bash|zsh``)."""

    path: str
    subcommands: dict[str, str] = field(default_factory=dict)
    options: list[str] = field(default_factory=list)
    value_options: list[str] = field(default_factory=list)
    choices: dict[str, list[str]] = field(default_factory=dict)
    arguments: list[str] = field(default_factory=list)


def command_specs(parser: argparse.ArgumentParser, path: str = "kiln") -> Iterator[CommandSpec]:
    """Every command path under ``parser``, parents first."""
    spec = CommandSpec(path)
    children: list[tuple[str, argparse.ArgumentParser]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, child in action.choices.items():
                spec.subcommands[name] = helps.get(name, "")
                children.append((name, child))
            continue
        if action.help == argparse.SUPPRESS:
            continue
        if not action.option_strings:
            spec.arguments.extend(str(choice) for choice in action.choices or ())
            continue
        spec.options.extend(action.option_strings)
        if action.nargs != 0:
            spec.value_options.extend(action.option_strings)
            if action.choices is not None:
                for option in action.option_strings:
                    spec.choices[option] = [str(choice) for choice in action.choices]
    yield spec
    for name, child in children:
        yield from command_specs(child, f"{path} {name}")


def completion_script(shell: str, parser: argparse.ArgumentParser) -> str:
    """The completion script for ``shell`` (``bash`` or ``zsh``)."""
    specs = list(command_specs(parser))
    if shell == "bash":
        return _bash_script(specs)
    return _zsh_script(specs)


def _tables(specs: list[CommandSpec], shell: str) -> str:
    """Associative arrays both shells read: word lists keyed by path (or path and option)."""
    choices = [
        (f"{spec.path} {option}", " ".join(values))
        for spec in specs
        for option, values in spec.choices.items()
    ]
    lines = []
    for table, entries in (
        ("_kiln_subcommands", [(spec.path, " ".join(spec.subcommands)) for spec in specs]),
        ("_kiln_options", [(spec.path, " ".join(spec.options)) for spec in specs]),
        ("_kiln_value_options", [(spec.path, " ".join(spec.value_options)) for spec in specs]),
        ("_kiln_choices", choices),
        ("_kiln_arguments", [(spec.path, " ".join(spec.arguments)) for spec in specs if spec.arguments]),
    ):
        lines.append(_assoc_array(shell, table, entries))
    return "\n".join(lines)


def _assoc_array(shell: str, name: str, entries: list[tuple[str, str]]) -> str:
    """``declare -gA name=([key]=value ...)`` for bash; key-value pairs for zsh (any version)."""
    if shell == "bash":
        body = "\n".join(f"  [{shlex.quote(key)}]={shlex.quote(value)}" for key, value in entries)
        return f"declare -gA {name}=(\n{body}\n)"
    body = "\n".join(f"  {shlex.quote(key)} {shlex.quote(value)}" for key, value in entries)
    return f"typeset -gA {name}\n{name}=(\n{body}\n)"


_WALK = """\
  local cmd_path="kiln" word i=1
  while (( i < {current} )); do
    word="${{{words}[i]}}"
    if [[ "$word" == -* ]]; then
      if [[ "$word" != *=* && " ${{_kiln_value_options[$cmd_path]}} " == *" $word "* ]]; then
        (( i++ ))
      fi
    elif [[ " ${{_kiln_subcommands[$cmd_path]}} " == *" $word "* ]]; then
      cmd_path="$cmd_path $word"
    fi
    (( i++ ))
  done"""


def _bash_script(specs: list[CommandSpec]) -> str:
    walk = _WALK.format(current="COMP_CWORD", words="COMP_WORDS")
    return f"""\
# bash completion for kiln; load it with: source <(kiln completion bash)
{_tables(specs, "bash")}

# compgen -W misreads a current word of "--"; plain prefix matching does not
__kiln_match() {{
  local word
  for word in $1; do
    [[ "$word" == "$2"* ]] && COMPREPLY+=("$word")
  done
}}

_kiln() {{
  COMPREPLY=()
  local cur="${{COMP_WORDS[COMP_CWORD]}}" prev="${{COMP_WORDS[COMP_CWORD-1]}}"
  # bash splits --flag=value at the "=": complete the value of the flag before it
  if [[ "$prev" == "=" ]]; then prev="${{COMP_WORDS[COMP_CWORD-2]}}"; fi
  if [[ "$cur" == "=" ]]; then prev="${{COMP_WORDS[COMP_CWORD-1]}}"; cur=""; fi
{walk}
  if [[ "$prev" == -* && " ${{_kiln_value_options[$cmd_path]}} " == *" $prev "* ]]; then
    if [[ -n "${{_kiln_choices[$cmd_path $prev]+set}}" ]]; then
      __kiln_match "${{_kiln_choices[$cmd_path $prev]}}" "$cur"
    else
      COMPREPLY=($(compgen -f -- "$cur"))
    fi
  elif [[ "$cur" == -* ]]; then
    __kiln_match "${{_kiln_options[$cmd_path]}}" "$cur"
  elif [[ -n "${{_kiln_subcommands[$cmd_path]}}" ]]; then
    __kiln_match "${{_kiln_subcommands[$cmd_path]}}" "$cur"
  elif [[ -n "${{_kiln_arguments[$cmd_path]}}" ]]; then
    __kiln_match "${{_kiln_arguments[$cmd_path]}}" "$cur"
  else
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
}}
complete -o filenames -F _kiln kiln
"""


def _zsh_script(specs: list[CommandSpec]) -> str:
    described = _assoc_array(
        "zsh", "_kiln_described", [(spec.path, _describe_lines(spec)) for spec in specs if spec.subcommands]
    )
    # zsh arrays count from 1 and ``words[1]`` is ``kiln``: the walk starts at 2.
    walk = _WALK.format(current="CURRENT", words="words").replace("word i=1", "word i=2")
    return f"""\
#compdef kiln
# zsh completion for kiln; put it in a directory on $fpath as _kiln, or: source <(kiln completion zsh)
{_tables(specs, "zsh")}
{described}

_kiln() {{
  local cur="${{words[CURRENT]}}" prev="${{words[CURRENT-1]}}"
{walk}
  if [[ "$prev" == -* && " ${{_kiln_value_options[$cmd_path]}} " == *" $prev "* ]]; then
    if (( ${{+_kiln_choices[$cmd_path $prev]}} )); then
      compadd -- ${{=_kiln_choices[$cmd_path $prev]}}
    else
      _files
    fi
  elif [[ "$cur" == -* ]]; then
    compadd -- ${{=_kiln_options[$cmd_path]}}
  elif [[ -n "${{_kiln_subcommands[$cmd_path]}}" ]]; then
    local -a described
    described=("${{(@f)_kiln_described[$cmd_path]}}")
    _describe 'command' described
  elif [[ -n "${{_kiln_arguments[$cmd_path]}}" ]]; then
    compadd -- ${{=_kiln_arguments[$cmd_path]}}
  else
    _files
  fi
}}

if [[ "$funcstack[1]" == _kiln ]]; then
  _kiln "$@"
else
  compdef _kiln kiln
fi
"""


def _describe_lines(spec: CommandSpec) -> str:
    """``name:help`` lines for zsh's ``_describe`` (a colon in a name would need escaping)."""
    return "\n".join(f"{name.replace(':', chr(92) + ':')}:{text}" for name, text in spec.subcommands.items())


def run_completion(args: argparse.Namespace) -> int:
    from builder.cli.main import build_parser

    print(completion_script(args.shell, build_parser()), end="")
    return 0


def register(subparsers: Any) -> None:
    """Add ``kiln completion``."""
    parser = subparsers.add_parser(
        "completion",
        help="print a shell completion script",
        description="Print a completion script for bash or zsh, generated from kiln's commands and "
        "flags. bash: source <(kiln completion bash); zsh: source <(kiln completion zsh).",
    )
    parser.add_argument("shell", choices=SHELLS, help="the shell to complete in: bash or zsh")
    parser.set_defaults(handler=run_completion)
