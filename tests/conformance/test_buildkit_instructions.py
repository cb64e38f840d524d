"""``buildkit-instructions.json`` (corpus README §4.4): typed instructions, flags, conversion.

One test per case of every section; the counts per section are printed when the module
ends.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from builder.errors import DockerfileError
from builder.resolver import EmptyResolver
from builder.source import SourceSpan
from frontends.dockerfile.ast import Node
from frontends.dockerfile.convert import build_graph
from frontends.dockerfile.flags import BFlags
from frontends.dockerfile.instructions import (
    ArgInstruction,
    CopyInstruction,
    FromInstruction,
    HealthcheckInstruction,
    RunInstruction,
    handle_json_args,
    parse_instruction,
)
from frontends.dockerfile.instructions_run import parse_device
from frontends.dockerfile.parser import parse
from frontends.dockerfile.stages import type_instructions
from tests.conftest import SHARED_DIR, require_shared

CORPUS = ("conformance", "derived", "buildkit-instructions.json")
SPAN = SourceSpan("Dockerfile", 1, 1)
OUTCOMES: Counter[str] = Counter()


def _sections() -> dict[str, Any]:
    path = SHARED_DIR.joinpath(*CORPUS)
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


DATA = _sections()


def _cases(section: str) -> list[Any]:
    return list(DATA.get(section, {}).get("cases", []))


@pytest.fixture(scope="module", autouse=True)
def _print_counts() -> Iterator[None]:
    yield
    for section, count in sorted(OUTCOMES.items()):
        total = len(_cases(section)) or 1  # doc_comments is one case without a list
        print(f"\nbuildkit-instructions.json {section}: {count}/{total} passed", end="")
    print()


def _passed(section: str) -> None:
    OUTCOMES[section] += 1


def _assert_message(message: str, expected: str, match: str) -> None:
    if match == "exact":
        assert message == expected
    else:
        assert expected in message


def _first_instruction(text: str) -> Any:
    return parse_instruction(parse(text).nodes[0])


@pytest.mark.parametrize("case", _cases("instruction_errors"), ids=lambda case: case["name"])
def test_instruction_errors(case: dict[str, Any]) -> None:
    require_shared(*CORPUS)
    with pytest.raises(DockerfileError) as caught:
        _first_instruction(case["dockerfile"])
    _assert_message(caught.value.message, case["expected_error"], case["match"])
    _passed("instruction_errors")


@pytest.mark.parametrize("case", _cases("instruction_errors_from_args"), ids=lambda case: case["instruction"])
def test_instruction_errors_from_args(case: dict[str, Any]) -> None:
    require_shared(*CORPUS)
    name = case["instruction"]
    node = Node(name.lower(), name, (), tuple(case["args"]), SPAN)
    with pytest.raises(DockerfileError) as caught:
        parse_instruction(node)
    _assert_message(caught.value.message, case["expected_error"], case["match"])
    _passed("instruction_errors_from_args")


@pytest.mark.parametrize("case", _cases("instruction_ok"), ids=lambda case: case["dockerfile"])
def test_instruction_ok(case: dict[str, Any]) -> None:
    require_shared(*CORPUS)
    instruction = _first_instruction(case["dockerfile"])
    build_graph(parse("FROM scratch\n" + case["dockerfile"]), resolver=EmptyResolver())
    if "flags_used" in case:
        assert isinstance(instruction, RunInstruction)
        assert list(instruction.flags_used) == case["flags_used"]
    if "healthcheck_test" in case:
        assert isinstance(instruction, HealthcheckInstruction)
        assert list(instruction.test) == case["healthcheck_test"]
    _passed("instruction_ok")


def test_doc_comments() -> None:
    require_shared(*CORPUS)
    section = DATA["doc_comments"]
    expect = section["expect"]
    meta_args, stages = type_instructions(parse(section["dockerfile"]))
    assert meta_args[0].args[0].key == expect["meta_arg0_key"]
    assert meta_args[0].args[0].doc == expect["meta_arg0_doc"]
    first, cmd0, cmd1 = stages[0]
    assert isinstance(first, FromInstruction) and first.doc == expect["stage0_doc"]
    assert isinstance(cmd0, ArgInstruction) and isinstance(cmd1, ArgInstruction)
    assert {"key": cmd0.args[0].key, "doc": cmd0.args[0].doc} == expect["stage0_cmd0_arg0"]
    assert [{"key": spec.key, "doc": spec.doc} for spec in cmd1.args] == expect["stage0_cmd1_args"]
    _passed("doc_comments")


@pytest.mark.parametrize("case", _cases("copy_heredoc"), ids=lambda case: case["dockerfile"])
def test_copy_heredoc(case: dict[str, Any]) -> None:
    require_shared(*CORPUS)
    instruction = _first_instruction(case["dockerfile"])
    assert isinstance(instruction, CopyInstruction)
    assert instruction.dest == case["dest_path"]
    assert list(instruction.source_paths) == case["source_paths"]
    contents = [
        {"path": content.path, "data": content.data, "expand": content.expand}
        for content in instruction.source_contents
    ]
    assert contents == case["source_contents"]
    _passed("copy_heredoc")


@pytest.mark.parametrize("case", _cases("run_heredoc"), ids=lambda case: case["dockerfile"])
def test_run_heredoc(case: dict[str, Any]) -> None:
    require_shared(*CORPUS)
    instruction = _first_instruction(case["dockerfile"])
    assert isinstance(instruction, RunInstruction)
    assert instruction.prepend_shell == case["prepend_shell"]
    assert list(instruction.command) == case["cmd_line"]
    files = [{"name": doc.name, "data": doc.content, "chomp": doc.chomp} for doc in instruction.heredocs]
    assert files == case["files"]
    _passed("run_heredoc")


@pytest.mark.parametrize("case", _cases("run_device_flag"), ids=lambda case: case["input"])
def test_run_device_flag(case: dict[str, Any]) -> None:
    require_shared(*CORPUS)
    if "error" in case:
        with pytest.raises(DockerfileError) as caught:
            parse_device(case["input"], SPAN)
        assert caught.value.message == case["error"]
    else:
        device = parse_device(case["input"], SPAN)
        assert (device.name, device.required) == (case["name"], case["required"])
    _passed("run_device_flag")


def _declared_flags(case: dict[str, Any]) -> BFlags:
    flags = BFlags()
    for declared in case["declared"]:
        if declared["type"] == "bool":
            flags.add_bool(declared["name"], declared["default"])
        else:
            flags.add_string(declared["name"], declared["default"])
    return flags


@pytest.mark.parametrize("case", _cases("builder_flags"), ids=lambda case: " ".join(case["args"]) or "none")
def test_builder_flags(case: dict[str, Any]) -> None:
    require_shared(*CORPUS)
    flags = _declared_flags(case)
    kinds = {declared["name"]: declared["type"] for declared in case["declared"]}
    if not case["ok"]:
        with pytest.raises(DockerfileError) as caught:
            flags.parse(case["args"])
        assert caught.value.message == case["error_message_in_code"]
    else:
        flags.parse(case["args"])
        for name, value in case.get("values", {}).items():
            actual = flags.boolean(name) if kinds[name] == "bool" else flags.string(name)
            assert actual == value
        if "used" in case:
            assert list(flags.used()) == case["used"]
    _passed("builder_flags")


@pytest.mark.parametrize("case", _cases("handle_json_args"), ids=lambda case: repr(case["args"]))
def test_handle_json_args(case: dict[str, Any]) -> None:
    require_shared(*CORPUS)
    assert list(handle_json_args(case["args"], case["json"])) == case["expected"]
    _passed("handle_json_args")


@pytest.mark.parametrize("case", _cases("conversion_errors"), ids=lambda case: case["dockerfile"][:40])
def test_conversion_errors(case: dict[str, Any]) -> None:
    require_shared(*CORPUS)
    dockerfile = parse(case["dockerfile"])
    expected = case["expected_error"]
    if expected is None:
        build_graph(dockerfile, resolver=EmptyResolver(), target=case.get("target"))
    else:
        with pytest.raises(DockerfileError) as caught:
            build_graph(dockerfile, resolver=EmptyResolver(), target=case.get("target"))
        if isinstance(expected, str):
            _assert_message(caught.value.message, expected, case["match"])
    _passed("conversion_errors")


def test_conversion_target_is_case_insensitive() -> None:
    """The "unknown target" file builds with target ``Foo`` (stage names ignore case)."""
    require_shared(*CORPUS)
    case = next(case for case in _cases("conversion_errors") if case.get("target") == "nosuch")
    graph = build_graph(parse(case["dockerfile"]), resolver=EmptyResolver(), target="Foo")
    assert graph.target == 0
    assert [stage.index for stage in graph.stages] == [0]


@pytest.mark.parametrize("case", _cases("error_source_lines"), ids=lambda case: case["name"])
def test_error_source_lines(case: dict[str, Any]) -> None:
    require_shared(*CORPUS)
    with pytest.raises(DockerfileError) as caught:
        build_graph(parse(case["dockerfile"]), resolver=EmptyResolver())
    span = caught.value.span
    assert span is not None
    assert list(range(span.start_line, span.end_line + 1)) == case["error_lines"]
    _passed("error_source_lines")
