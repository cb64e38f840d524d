"""The stage table: global ARGs in FROM, ARG scope per stage, build args, platform args,
stage references, ``--target`` pruning and the stage-graph errors."""

from __future__ import annotations

import pytest

from builder.errors import DockerfileError
from builder.graph import BuildGraph, ConfigOp, CopyOp, Exec, ImageBase, Platform, StageBase, StageSource
from builder.resolver import EmptyResolver
from frontends.dockerfile.convert import build_graph
from frontends.dockerfile.parser import parse

ARM64 = Platform("linux", "arm64", "v8")


def graph(text: str, **options: object) -> BuildGraph:
    return build_graph(parse(text), resolver=EmptyResolver(), **options)  # type: ignore[arg-type]


def execs(result: BuildGraph, stage: int = -1) -> list[Exec]:
    return [op for op in result.stages[stage].ops if isinstance(op, Exec)]


def test_global_arg_is_used_in_from_and_overridden_by_a_build_arg() -> None:
    text = "ARG BASE=alpine\nARG TAG=${BASE}-1\nFROM $BASE:$TAG\n"
    assert graph(text).stages[0].base == ImageBase("alpine:alpine-1")
    assert graph(text, build_args={"BASE": "debian"}).stages[0].base == ImageBase("debian:debian-1")


def test_platform_args_are_usable_in_from() -> None:
    result = graph("FROM --platform=$TARGETPLATFORM busybox:$TARGETARCH$TARGETVARIANT\n", platform=ARM64)
    assert result.stages[0].base == ImageBase("busybox:arm64v8")
    assert result.stages[0].platform == ARM64


def test_global_arg_is_not_in_a_stage_until_declared_again() -> None:
    result = graph("ARG V=1\nFROM busybox\nRUN echo $V\nARG V\nRUN echo $V\n")
    first, second = execs(result)
    assert first.build_args == ()
    assert second.build_args == ("V=1",)
    assert second.created_by == "RUN |1 V=1 /bin/sh -c echo $V # buildkit"
    history = [op.created_by for op in result.stages[0].ops if isinstance(op, ConfigOp) and op.in_history]
    assert history == ["ARG V=1"]


def test_build_arg_beats_the_default_but_history_shows_the_default() -> None:
    result = graph("FROM busybox\nARG foo=0 bar=1\nRUN echo\n", build_args={"foo": "9"})
    arg_op = result.stages[0].ops[1]
    assert arg_op.created_by == "ARG foo=0 bar=1"
    assert execs(result)[0].build_args == ("foo=9", "bar=1")


def test_stage_arg_default_is_expanded_with_earlier_args() -> None:
    result = graph('FROM busybox\nARG quoted="a b"\nARG expanded=$quoted\nRUN true\n')
    assert execs(result)[0].build_args == ("quoted=a b", "expanded=a b")


def test_declared_arg_without_value_is_empty_in_scope() -> None:
    result = graph("FROM busybox\nARG x\nRUN true\n")
    assert execs(result)[0].build_args == ("x=",)
    assert result.stages[0].ops[1].created_by == "ARG x"


def test_platform_args_inside_a_stage_need_an_arg_and_ignore_defaults() -> None:
    result = graph("FROM busybox\nARG TARGETARCH=riscv\nARG BUILDOS\nRUN true\n", platform=ARM64)
    assert execs(result)[0].build_args[0] == "TARGETARCH=arm64"
    assert execs(result)[0].build_args[1] == "BUILDOS=linux"


def test_args_do_not_carry_into_a_stage_built_on_this_one() -> None:
    result = graph("FROM busybox AS lower\nARG a=1\nFROM lower\nRUN true\n")
    assert execs(result)[0].build_args == ()


def test_proxy_build_args_reach_run_but_not_history_or_warnings() -> None:
    result = graph("FROM busybox\nRUN true\n", build_args={"HTTP_PROXY": "http://p:3128"})
    run = execs(result)[0]
    assert "HTTP_PROXY=http://p:3128" in run.env
    assert run.build_args == ()
    assert result.warnings == ()


def test_unused_build_args_are_reported() -> None:
    result = graph("ARG used\nFROM busybox\n", build_args={"used": "1", "zeta": "2", "alpha": "3"})
    assert result.warnings == ("[Warning] One or more build-args [alpha zeta] were not consumed",)


def test_stage_names_are_case_insensitive_and_indexes_work() -> None:
    result = graph("FROM busybox AS Build\nFROM BUILD\nCOPY --from=0 /a /b\nCOPY --from=bUiLd /c /d\n")
    last = result.stages[-1]
    assert last.base == StageBase(0)
    assert [op.source for op in last.ops if isinstance(op, CopyOp)] == [StageSource(0), StageSource(0)]
    assert last.reads == frozenset({0})


def test_from_a_later_stage_name_is_an_image() -> None:
    result = graph("FROM later AS first\nFROM busybox AS later\n", target="first")
    assert [stage.index for stage in result.stages] == [0]
    assert result.stages[0].base == ImageBase("later")


def test_target_prunes_to_the_stages_it_needs() -> None:
    text = (
        "FROM busybox AS a\nFROM busybox AS b\nCOPY --from=a /x /x\n"
        "FROM busybox AS c\nFROM b AS d\nRUN --mount=from=c,target=/m true\nFROM busybox AS e\n"
    )
    assert [stage.index for stage in graph(text, target="b").stages] == [0, 1]
    pruned = graph(text, target="D")
    assert [stage.index for stage in pruned.stages] == [0, 1, 2, 3]
    assert pruned.target == 3
    assert [stage.index for stage in graph(text).stages] == [4]


def test_unknown_target_suggests_a_stage() -> None:
    with pytest.raises(DockerfileError) as caught:
        graph("FROM scratch AS build\nFROM scratch\n", target="bulid")
    assert caught.value.message == 'target stage "bulid" could not be found (did you mean build?)'


def test_copy_from_a_later_stage_is_refused() -> None:
    with pytest.raises(DockerfileError) as caught:
        graph("FROM busybox AS target\nCOPY --from=build / /out\nFROM busybox AS build\nFROM target\n")
    assert caught.value.message == (
        'cannot copy from stage "build", it needs to be defined before current stage "target"'
    )
    assert caught.value.span is not None and caught.value.span.start_line == 2


def test_cycle_names_the_first_stage() -> None:
    with pytest.raises(DockerfileError) as caught:
        graph("FROM busybox AS a\nCOPY --from=b / /\nFROM busybox AS b\nCOPY --from=a / /\n")
    assert caught.value.message == "circular dependency detected on stage: a"


def test_invalid_stage_index() -> None:
    with pytest.raises(DockerfileError) as caught:
        graph("FROM busybox\nCOPY --from=3 / /\n")
    assert caught.value.message == "invalid stage index 3"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ARG a=1\n", "dockerfile contains no stages to build"),
        ("RUN true\nFROM busybox\n", "no build stage in current context"),
        ("FROM ${EMPTY}\n", "base name (${EMPTY}) should not be blank"),
        ("ARG SOURCE_DATE_EPOCH=soon\nFROM scratch\n", "invalid SOURCE_DATE_EPOCH: soon"),
        ("FROM busybox AS 1st\n", 'invalid name for build stage: "1st", name can\'t start with a number'),
        ("FROM a b\n", "FROM requires either one or three arguments"),
    ],
)
def test_stage_table_errors(text: str, message: str) -> None:
    with pytest.raises(DockerfileError) as caught:
        graph(text)
    assert caught.value.message.startswith(message)
