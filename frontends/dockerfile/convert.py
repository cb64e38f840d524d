"""The Dockerfile frontend's entry point: a parsed Dockerfile → a :class:`BuildGraph`.

The steps are BuildKit's ``dockerfile2llb``: type every instruction, evaluate the global
ARGs and the FROM lines, check the stage graph (no cycles, a known target), then dispatch
only the stages the target needs, in file order, each seeing the final config of the
stages before it.
"""

from __future__ import annotations

from collections.abc import Mapping

from builder.errors import DockerfileError
from builder.graph import BuildGraph, Platform
from builder.resolver import ImageResolver
from frontends.dockerfile._dispatch_state import BuildContext
from frontends.dockerfile._goformat import go_list
from frontends.dockerfile.ast import Dockerfile
from frontends.dockerfile.dispatch import dispatch_stage
from frontends.dockerfile.shell import ShellLexer
from frontends.dockerfile.stages import (
    PLATFORM_ARGS,
    PROXY_ARGS,
    StageTable,
    build_stage_table,
    check_cycles,
    host_platform_now,
    needed_stages,
    platform_args,
    select_target,
    stage_dependencies,
)

#: Build args the builder itself reads; never reported as unused.
_BUILDER_ARGS = frozenset({*PROXY_ARGS, *PLATFORM_ARGS, "SOURCE_DATE_EPOCH"})


def build_graph(
    dockerfile: Dockerfile,
    *,
    resolver: ImageResolver,
    target: str | None = None,
    build_args: Mapping[str, str] = {},
    platform: Platform | None = None,
    build_contexts: Mapping[str, str] = {},
) -> BuildGraph:
    """Convert a parsed Dockerfile; DockerfileError (with the lines at fault) if it is invalid."""
    build_platform = host_platform_now()
    target_platform = platform or build_platform
    table = build_stage_table(
        dockerfile, build_args=build_args, target_platform=target_platform, build_platform=build_platform
    )
    _check_source_date_epoch(table, build_args)
    deps = stage_dependencies(table)
    check_cycles(table, deps)
    target_stage = select_target(table, target)
    escape = dockerfile.directives.escape
    meta_keys = [spec.key for instruction in table.meta_args for spec in instruction.args]
    build = BuildContext(
        table=table,
        build_args=build_args,
        arg_values={**platform_args(target_platform, build_platform), **build_args},
        meta_values={key: table.global_args[key] for key in meta_keys if key in table.global_args},
        build_contexts=build_contexts,
        lexer=ShellLexer(escape),
        heredoc_lexer=ShellLexer(escape, raw_escapes=True, skip_process_quotes=True),
    )
    stages = tuple(
        dispatch_stage(build, table.stages[index], resolver, escape)
        for index in needed_stages(target_stage, deps)
    )
    warnings = list(dockerfile.warnings)
    unused = sorted(set(build_args) - build.used_args - set(meta_keys) - _BUILDER_ARGS)
    if unused:
        warnings.append(f"[Warning] One or more build-args {go_list(unused)} were not consumed")
    return BuildGraph(stages=stages, target=target_stage.index, warnings=tuple(warnings))


def _check_source_date_epoch(table: StageTable, build_args: Mapping[str, str]) -> None:
    """SOURCE_DATE_EPOCH, from a build arg or a global ARG default, must be a Unix time."""
    value = build_args.get("SOURCE_DATE_EPOCH", table.global_args.get("SOURCE_DATE_EPOCH"))
    if value is not None and value != "" and not value.isdigit():
        raise DockerfileError(f"invalid SOURCE_DATE_EPOCH: {value}")
