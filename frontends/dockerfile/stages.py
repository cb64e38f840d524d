"""The stage table: which instructions belong to which FROM, and which stages a build needs.

This is the part of BuildKit's ``dockerfile2llb`` that runs before anything is dispatched:

* the ARGs before the first FROM (meta args) are evaluated once, with the build args and
  the automatic platform args, and are the only variables a FROM line sees;
* stage names are case-insensitive and a stage may also be named by its index;
* the stages a stage reads (its base, ``COPY --from``, ``RUN --mount from=``) form a graph
  that must be acyclic (``circular dependency detected on stage: <first stage>``);
* ``--target`` picks a stage (with a spelling hint when it is unknown) and only the stages
  it reaches are built.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from builder.errors import DockerfileError
from builder.graph import Platform
from builder.lazyclasses import dataclass
from builder.source import SourceSpan
from frontends.dockerfile.ast import Dockerfile
from frontends.dockerfile.instructions import (
    ArgInstruction,
    CopyInstruction,
    FromInstruction,
    Instruction,
    RunInstruction,
    parse_instruction,
)
from frontends.dockerfile.shell import ShellLexer
from frontends.dockerfile.suggest import did_you_mean

#: Build args every build accepts without an ARG; passed to RUN but never recorded.
PROXY_ARGS = (
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
)
#: Args set by the builder from the platforms; a stage sees them after ``ARG NAME``.
PLATFORM_ARGS = (
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDARCH",
    "BUILDVARIANT",
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETARCH",
    "TARGETVARIANT",
)
_MACHINE_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm"}


def host_platform_now() -> Platform:
    """This machine's platform (``linux/amd64`` on x86-64): the build platform.

    ``os.uname`` rather than ``platform.machine()``: the same answer on Linux without the
    ``platform`` module's import, which compiles regexes every build would pay for."""
    machine = os.uname().machine.lower()
    variant = "v7" if machine == "armv7l" else ""
    return Platform("linux", _MACHINE_ARCH.get(machine, machine), variant)


def parse_platform(text: str, span: SourceSpan | None = None) -> Platform:
    """``os/arch[/variant]`` as written in ``--platform``."""
    parts = text.strip().split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise DockerfileError(f'failed to parse platform "{text}": expected os/arch[/variant]', span)
    return Platform(parts[0].lower(), parts[1].lower(), parts[2].lower() if len(parts) == 3 else "")


def platform_args(target: Platform, build: Platform) -> dict[str, str]:
    """The values of :data:`PLATFORM_ARGS`, in that order."""
    return {
        "BUILDPLATFORM": str(build),
        "BUILDOS": build.os,
        "BUILDARCH": build.architecture,
        "BUILDVARIANT": build.variant,
        "TARGETPLATFORM": str(target),
        "TARGETOS": target.os,
        "TARGETARCH": target.architecture,
        "TARGETVARIANT": target.variant,
    }


@dataclass(frozen=True)
class StageSpec:
    """One FROM and its instructions; ``base`` is the FROM reference after expansion."""

    index: int
    name: str
    from_: FromInstruction
    base: str
    platform: Platform
    instructions: tuple[Instruction, ...]

    @property
    def display_name(self) -> str:
        return self.name or f"stage-{self.index}"


@dataclass(frozen=True)
class StageTable:
    """All stages in file order, the meta args (ARGs before the first FROM) and their values."""

    meta_args: tuple[ArgInstruction, ...]
    global_args: Mapping[str, str]
    stages: tuple[StageSpec, ...]

    def find(self, ref: str) -> StageSpec | None:
        """The stage a ``--from`` or FROM reference names: a name (any case) or an index."""
        lowered = ref.lower()
        for stage in self.stages:
            if stage.name and stage.name == lowered:
                return stage
        if ref.isdigit():
            index = int(ref)
            if index < len(self.stages):
                return self.stages[index]
            raise DockerfileError(f"invalid stage index {index}")
        return None


def type_instructions(dockerfile: Dockerfile) -> tuple[list[ArgInstruction], list[list[Instruction]]]:
    """Type every node: the meta ARGs, then one list per FROM (starting with the FROM)."""
    meta_args: list[ArgInstruction] = []
    stages: list[list[Instruction]] = []
    for node in dockerfile.nodes:
        instruction = parse_instruction(node)
        if isinstance(instruction, FromInstruction):
            stages.append([instruction])
        elif stages:
            stages[-1].append(instruction)
        elif isinstance(instruction, ArgInstruction):
            meta_args.append(instruction)
        else:
            raise DockerfileError("no build stage in current context", node.span)
    return meta_args, stages


def evaluate_meta_args(
    meta_args: list[ArgInstruction],
    build_args: Mapping[str, str],
    builtin: Mapping[str, str],
    lexer: ShellLexer,
) -> dict[str, str]:
    """The global scope: builtin platform args, then each meta ARG (a build arg wins)."""
    scope = dict(builtin)
    for instruction in meta_args:
        for spec in instruction.args:
            if spec.key in build_args:
                scope[spec.key] = build_args[spec.key]
            elif spec.default is not None:
                try:
                    scope[spec.key] = lexer.process_word(spec.default, scope)
                except DockerfileError as err:
                    raise DockerfileError(err.message, instruction.span) from err
    return scope


def build_stage_table(
    dockerfile: Dockerfile,
    *,
    build_args: Mapping[str, str],
    target_platform: Platform,
    build_platform: Platform,
) -> StageTable:
    """Type the instructions, evaluate the meta args and expand every FROM line."""
    lexer = ShellLexer(dockerfile.directives.escape)
    meta_args, grouped = type_instructions(dockerfile)
    if not grouped:
        raise DockerfileError("dockerfile contains no stages to build")
    global_args = evaluate_meta_args(
        meta_args, build_args, platform_args(target_platform, build_platform), lexer
    )
    stages = []
    for index, (first, *rest) in enumerate(grouped):
        assert isinstance(first, FromInstruction)
        try:
            base = lexer.process_word(first.base, global_args)
            platform_text = lexer.process_word(first.platform, global_args) if first.platform else ""
        except DockerfileError as err:
            raise DockerfileError(err.message, first.span) from err
        if not base.strip():
            raise DockerfileError(f"base name ({first.base}) should not be blank", first.span)
        platform = parse_platform(platform_text, first.span) if platform_text else target_platform
        stages.append(StageSpec(index, first.name, first, base, platform, tuple(rest)))
    return StageTable(tuple(meta_args), global_args, tuple(stages))


def stage_dependencies(table: StageTable) -> dict[int, list[int]]:
    """For each stage, the stages it reads, in the order they are first named.

    A FROM names only an earlier stage (a later name is an image reference); ``--from``
    may name any stage, which is how a cycle can arise.
    """
    deps: dict[int, list[int]] = {}
    for stage in table.stages:
        reads: list[int] = []
        base = table.find(stage.base) if not stage.base.isdigit() else None
        if base is not None and base.index < stage.index:
            reads.append(base.index)
        for instruction in stage.instructions:
            for ref in _from_refs(instruction):
                try:
                    found = table.find(ref)
                except DockerfileError as err:
                    raise DockerfileError(err.message, instruction.span) from err
                if found is not None and found.index not in reads:
                    reads.append(found.index)
        deps[stage.index] = reads
    return deps


def _from_refs(instruction: Instruction) -> list[str]:
    if isinstance(instruction, CopyInstruction) and instruction.from_:
        return [instruction.from_]
    if isinstance(instruction, RunInstruction):
        return [mount.from_ for mount in instruction.mounts if mount.from_]
    return []


def check_cycles(table: StageTable, deps: Mapping[int, list[int]]) -> None:
    """Refuse a cycle, naming the stage the search started from (as BuildKit does)."""
    visited: set[int] = set()

    def visit(index: int, path: set[int]) -> bool:
        if index in visited:
            return False
        visited.add(index)
        path.add(index)
        for dep in deps[index]:
            if dep in path or visit(dep, path):
                return True
        path.discard(index)
        return False

    for stage in table.stages:
        if visit(stage.index, set()):
            raise DockerfileError(f"circular dependency detected on stage: {stage.display_name}")


def select_target(table: StageTable, target: str | None) -> StageSpec:
    """The stage ``--target`` names (case-insensitive), or the last stage."""
    if not target:
        return table.stages[-1]
    lowered = target.lower()
    for stage in table.stages:
        if stage.name == lowered:
            return stage
    names = [stage.name for stage in table.stages if stage.name]
    raise DockerfileError(f'target stage "{target}" could not be found' + did_you_mean(target, names))


def needed_stages(target: StageSpec, deps: Mapping[int, list[int]]) -> list[int]:
    """The indexes of the stages ``target`` reaches (itself included), in file order."""
    needed: set[int] = set()
    pending = [target.index]
    while pending:
        index = pending.pop()
        if index not in needed:
            needed.add(index)
            pending.extend(deps[index])
    return sorted(needed)
