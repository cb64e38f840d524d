"""Typed instructions: each parsed node checked and turned into one frozen dataclass.

:func:`parse_instruction` is BuildKit's ``instructions.ParseInstruction``: it checks the
argument count and flags of one node and raises :class:`DockerfileError` with BuildKit's
message and the node's span. Words stay as written (quotes and ``$VAR`` included); the
dispatcher expands them, since only it knows the environment. RUN lives in
:mod:`instructions_run`, ADD and COPY in :mod:`instructions_copy`.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from builder.errors import DockerfileError
from builder.lazyclasses import dataclass
from builder.source import SourceSpan
from frontends.dockerfile._instruction_args import (
    handle_json_args,
    keyword,
    parse_flags,
    require_at_least_one,
    require_exactly_one,
)
from frontends.dockerfile.ast import Node
from frontends.dockerfile.instructions_copy import CopyInstruction, SourceContent, parse_add, parse_copy
from frontends.dockerfile.instructions_health import HealthcheckInstruction, parse_healthcheck
from frontends.dockerfile.instructions_run import Device, RunInstruction, RunMountSpec, parse_run
from frontends.dockerfile.suggest import did_you_mean

__all__ = [
    "ArgInstruction",
    "ArgSpec",
    "CmdInstruction",
    "CopyInstruction",
    "Device",
    "EntrypointInstruction",
    "EnvInstruction",
    "ExposeInstruction",
    "FromInstruction",
    "HealthcheckInstruction",
    "Instruction",
    "KeyValue",
    "LabelInstruction",
    "MaintainerInstruction",
    "OnbuildInstruction",
    "RunInstruction",
    "RunMountSpec",
    "ShellInstruction",
    "SourceContent",
    "StopsignalInstruction",
    "UserInstruction",
    "VolumeInstruction",
    "WorkdirInstruction",
    "handle_json_args",
    "parse_instruction",
]


@dataclass(frozen=True)
class KeyValue:
    """One ``key=value`` of ENV or LABEL, both as written."""

    key: str
    value: str


@dataclass(frozen=True)
class ArgSpec:
    """One name of an ARG; ``default`` None when no ``=`` was written; ``doc`` from a comment."""

    key: str
    default: str | None = None
    doc: str = ""


@dataclass(frozen=True)
class FromInstruction:
    """``FROM [--platform=p] base [AS name]``; ``name`` lower-cased, ``doc`` from a comment."""

    span: SourceSpan
    base: str
    name: str = ""
    platform: str = ""
    doc: str = ""


@dataclass(frozen=True)
class CmdInstruction:
    """``CMD``: the default command; ``prepend_shell`` when written in shell form."""

    span: SourceSpan
    command: tuple[str, ...]
    prepend_shell: bool


@dataclass(frozen=True)
class EntrypointInstruction:
    """``ENTRYPOINT``: the executable; ``prepend_shell`` when written in shell form."""

    span: SourceSpan
    command: tuple[str, ...]
    prepend_shell: bool


@dataclass(frozen=True)
class ShellInstruction:
    """``SHELL``: the shell that later shell-form instructions run under."""

    span: SourceSpan
    shell: tuple[str, ...]


@dataclass(frozen=True)
class EnvInstruction:
    """``ENV``: the variables it sets, in order."""

    span: SourceSpan
    env: tuple[KeyValue, ...]


@dataclass(frozen=True)
class LabelInstruction:
    """``LABEL``: the labels it sets, in order."""

    span: SourceSpan
    labels: tuple[KeyValue, ...]


@dataclass(frozen=True)
class MaintainerInstruction:
    """``MAINTAINER`` (deprecated): recorded in the history only."""

    span: SourceSpan
    maintainer: str


@dataclass(frozen=True)
class ExposeInstruction:
    """``EXPOSE``: the ports as written (expanded when dispatched)."""

    span: SourceSpan
    ports: tuple[str, ...]


@dataclass(frozen=True)
class VolumeInstruction:
    """``VOLUME``: the mount points it declares."""

    span: SourceSpan
    volumes: tuple[str, ...]


@dataclass(frozen=True)
class UserInstruction:
    """``USER``: the user (and group) later steps run as."""

    span: SourceSpan
    user: str


@dataclass(frozen=True)
class WorkdirInstruction:
    """``WORKDIR``: the working directory, as written."""

    span: SourceSpan
    path: str


@dataclass(frozen=True)
class ArgInstruction:
    """``ARG``: the build arguments it declares, with their defaults."""

    span: SourceSpan
    args: tuple[ArgSpec, ...]


@dataclass(frozen=True)
class OnbuildInstruction:
    """``ONBUILD <instruction>``: ``expression`` is the trigger's text, run by child images."""

    span: SourceSpan
    expression: str


@dataclass(frozen=True)
class StopsignalInstruction:
    """``STOPSIGNAL``: the signal that stops a container of the image, as written (dispatch
    checks it names a signal once ARG and ENV are expanded, as BuildKit does)."""

    span: SourceSpan
    signal: str


Instruction = (
    FromInstruction
    | RunInstruction
    | CmdInstruction
    | EntrypointInstruction
    | ShellInstruction
    | EnvInstruction
    | LabelInstruction
    | MaintainerInstruction
    | ExposeInstruction
    | CopyInstruction
    | VolumeInstruction
    | UserInstruction
    | WorkdirInstruction
    | ArgInstruction
    | OnbuildInstruction
    | StopsignalInstruction
    | HealthcheckInstruction
)

_STAGE_NAME = re.compile(r"^[a-z][a-z0-9\-_.]*$")


def doc_for(comments: tuple[str, ...], name: str) -> str:
    """The text of a ``<name> <text>`` comment above an instruction (BuildKit's doc comments)."""
    if not name:
        return ""
    for comment in comments:
        line = comment.lstrip("#").strip()
        if line.startswith(name + " "):
            return line[len(name) + 1 :]
    return ""


def _parse_from(node: Node) -> FromInstruction:
    args = node.args
    name = ""
    if len(args) == 3 and args[1].lower() == "as":
        name = args[2].lower()
        if not _STAGE_NAME.match(name):
            raise DockerfileError(
                f'invalid name for build stage: "{args[2]}", '
                "name can't start with a number or contain symbols",
                node.span,
            )
    elif len(args) != 1:
        raise DockerfileError("FROM requires either one or three arguments", node.span)
    flags = parse_flags(node, [("platform", "")])
    return FromInstruction(
        span=node.span,
        base=args[0],
        name=name,
        platform=flags.string("platform"),
        doc=doc_for(node.comments, name),
    )


def _key_values(node: Node) -> tuple[KeyValue, ...]:
    """ENV and LABEL: the parser's (key, value, separator) triples."""
    require_at_least_one(node)
    if len(node.args) % 3:
        raise DockerfileError(f"Bad input to {keyword(node)}, too many arguments", node.span)
    pairs = []
    for index in range(0, len(node.args), 3):
        key, value = node.args[index], node.args[index + 1]
        if not key:
            raise DockerfileError(f"{keyword(node)} names can not be blank", node.span)
        pairs.append(KeyValue(key, value))
    parse_flags(node)
    return tuple(pairs)


def _parse_env(node: Node) -> EnvInstruction:
    return EnvInstruction(node.span, _key_values(node))


def _parse_label(node: Node) -> LabelInstruction:
    return LabelInstruction(node.span, _key_values(node))


def _parse_arg(node: Node) -> ArgInstruction:
    require_at_least_one(node)
    specs = []
    for word in node.args:
        key, has_value, value = word.partition("=")
        if has_value and not key:
            raise DockerfileError("ARG names can not be blank", node.span)
        specs.append(ArgSpec(key, value if has_value else None, doc_for(node.comments, key)))
    parse_flags(node)
    return ArgInstruction(node.span, tuple(specs))


def _single(node: Node) -> str:
    require_exactly_one(node)
    parse_flags(node)
    return node.args[0]


def _parse_maintainer(node: Node) -> MaintainerInstruction:
    return MaintainerInstruction(node.span, _single(node))


def _parse_user(node: Node) -> UserInstruction:
    return UserInstruction(node.span, _single(node))


def _parse_workdir(node: Node) -> WorkdirInstruction:
    return WorkdirInstruction(node.span, _single(node))


def _parse_stopsignal(node: Node) -> StopsignalInstruction:
    return StopsignalInstruction(node.span, _single(node))


def _parse_expose(node: Node) -> ExposeInstruction:
    require_at_least_one(node)
    parse_flags(node)
    return ExposeInstruction(node.span, tuple(node.args))


def _parse_volume(node: Node) -> VolumeInstruction:
    require_at_least_one(node)
    parse_flags(node)
    if any(not volume.strip() for volume in node.args):
        raise DockerfileError("VOLUME specified can not be an empty string", node.span)
    return VolumeInstruction(node.span, tuple(node.args))


def _parse_cmd(node: Node) -> CmdInstruction:
    parse_flags(node)
    return CmdInstruction(node.span, handle_json_args(node.args, node.json_form), not node.json_form)


def _parse_entrypoint(node: Node) -> EntrypointInstruction:
    parse_flags(node)
    return EntrypointInstruction(node.span, handle_json_args(node.args, node.json_form), not node.json_form)


def _parse_shell(node: Node) -> ShellInstruction:
    parse_flags(node)
    if not node.json_form:
        raise DockerfileError("SHELL requires the arguments to be in JSON form", node.span)
    if not node.args:
        raise DockerfileError("SHELL requires at least one argument", node.span)
    return ShellInstruction(node.span, tuple(node.args))


def _parse_onbuild(node: Node) -> OnbuildInstruction:
    if node.child is None and not node.args:
        raise DockerfileError("ONBUILD requires at least one argument", node.span)
    parse_flags(node)
    trigger = node.child.keyword.upper() if node.child is not None else node.args[0].split()[0].upper()
    if trigger == "ONBUILD":
        raise DockerfileError("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed", node.span)
    if trigger in ("MAINTAINER", "FROM"):
        raise DockerfileError(f"{trigger} isn't allowed as an ONBUILD trigger", node.span)
    return OnbuildInstruction(node.span, _onbuild_expression(node))


def _onbuild_expression(node: Node) -> str:
    """The trigger as written after ``ONBUILD`` (what the image config records)."""
    if node.text.strip():
        return node.text.strip()
    child = node.child
    if child is None:
        return " ".join(node.args)
    return " ".join([child.original_keyword, *child.flags, child.text or " ".join(child.args)]).strip()


_PARSERS: dict[str, Callable[[Node], Instruction]] = {
    "from": _parse_from,
    "run": parse_run,
    "cmd": _parse_cmd,
    "entrypoint": _parse_entrypoint,
    "shell": _parse_shell,
    "env": _parse_env,
    "label": _parse_label,
    "maintainer": _parse_maintainer,
    "expose": _parse_expose,
    "add": parse_add,
    "copy": parse_copy,
    "volume": _parse_volume,
    "user": _parse_user,
    "workdir": _parse_workdir,
    "arg": _parse_arg,
    "onbuild": _parse_onbuild,
    "stopsignal": _parse_stopsignal,
    "healthcheck": parse_healthcheck,
}


def parse_instruction(node: Node) -> Instruction:
    """Check one node and type it; DockerfileError (with the node's span) if it is invalid."""
    parser = _PARSERS.get(node.keyword.lower())
    if parser is None:
        written = node.original_keyword or node.keyword
        hint = did_you_mean(written.upper(), [name.upper() for name in _PARSERS])
        raise DockerfileError(f"unknown instruction: {written}{hint}", node.span)
    return parser(node)
