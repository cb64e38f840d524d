"""BuildKit's parser vectors: ``testfiles``, ``testfiles-negative``, ``testfile-line``, the parser
sections of ``buildkit-parser-heredocs.json`` and ``buildkit-parser-misc.json``, and the
``parse``-stage rows of ``dockerfile-errors.jsonl`` (corpus README §1, §4.1, §4.2, §4.7).

Case ids are the folder name, ``<json file>:<section>:<index>`` and
``dockerfile-errors.jsonl:<id>``. The per-data-set counts are printed when the module ends.
"""

from __future__ import annotations

import difflib
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from builder.errors import DockerfileError
from frontends.dockerfile.arguments import parse_json_array, parse_words
from frontends.dockerfile.directives import detect_directive
from frontends.dockerfile.dump import dump
from frontends.dockerfile.heredoc import UnbalancedQuoteError, chomp, heredocs_from_line, parse_heredoc_word
from frontends.dockerfile.lines import LineReader
from frontends.dockerfile.parser import parse
from tests.conftest import SHARED_DIR, require_shared

PARSER_DIR = ("conformance", "buildkit", "frontend", "dockerfile", "parser")
HEREDOCS_JSON = "buildkit-parser-heredocs.json"
MISC_JSON = "buildkit-parser-misc.json"
ERRORS_JSONL = "dockerfile-errors.jsonl"

#: The messages BuildKit's code gives the negative files (README §1.1).
NEGATIVE_MESSAGES = {
    "empty_dockerfile": "file with no instructions",
    "only_comments": "file with no instructions",
    "env_no_value": "ENV must have two arguments",
    "shykes-nested-json": "when using JSON array syntax, arrays must be comprised of strings only",
}

OUTCOMES: Counter[str] = Counter()


def _parser_path(*parts: str) -> Path:
    return SHARED_DIR.joinpath(*PARSER_DIR, *parts)


def _folders(kind: str) -> list[str]:
    folder = _parser_path(kind)
    return sorted(path.name for path in folder.iterdir()) if folder.is_dir() else []


def _derived(name: str) -> dict[str, Any]:
    path = SHARED_DIR / "conformance" / "derived" / name
    if not path.exists():
        return {}
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def _parse_error_rows() -> list[dict[str, Any]]:
    path = SHARED_DIR / "conformance" / "derived" / ERRORS_JSONL
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return [row for row in rows if row["stage"] == "parse"]


def _json_cases(name: str, data: dict[str, Any], section: str, key: str) -> list[Any]:
    """``pytest.param`` per entry of ``data[section][key]`` with id ``<file>:<section>:<index>``."""
    entries = data.get(section, {}).get(key, []) if data else []
    return [pytest.param(entry, id=f"{name}:{section}:{index}") for index, entry in enumerate(entries)]


POSITIVE = _folders("testfiles")
NEGATIVE = _folders("testfiles-negative")
HEREDOCS = _derived(HEREDOCS_JSON)
MISC = _derived(MISC_JSON)
PARSE_ERRORS = _parse_error_rows()


@pytest.fixture(scope="module", autouse=True)
def _report_counts() -> Iterator[None]:
    """Print how many vectors of each data set passed (README §6.5)."""
    OUTCOMES.clear()
    yield
    lines = [f"  {key}: {count}" for key, count in sorted(OUTCOMES.items())]
    print("\nparser vectors:\n" + "\n".join(lines))


def _passed(data_set: str) -> None:
    OUTCOMES[f"{data_set} passed"] += 1


def test_corpus_is_complete() -> None:
    """The README's inventory: 33 result files, 4 negative files, 13 parse-stage error rows."""
    require_shared(*PARSER_DIR)
    assert len(POSITIVE) == 33
    assert sorted(NEGATIVE_MESSAGES) == NEGATIVE
    assert len(PARSE_ERRORS) == 13
    assert len(HEREDOCS["extracts_heredoc"]["children"]) == 27


@pytest.mark.parametrize("case", POSITIVE)
def test_testfiles_dump(case: str) -> None:
    require_shared(*PARSER_DIR, "testfiles", case)
    expected = _parser_path("testfiles", case, "result").read_bytes().decode("utf-8", "surrogateescape")
    actual = dump(parse(_parser_path("testfiles", case, "Dockerfile").read_bytes())) + "\n"
    diff = "".join(
        difflib.unified_diff(
            expected.splitlines(keepends=True), actual.splitlines(keepends=True), "result", "dump"
        )
    )
    assert actual == expected, f"{case}: dump differs from result\n{diff}"
    _passed("testfiles")


@pytest.mark.parametrize("case", NEGATIVE)
def test_testfiles_negative(case: str) -> None:
    require_shared(*PARSER_DIR, "testfiles-negative", case)
    with pytest.raises(DockerfileError) as raised:
        parse(_parser_path("testfiles-negative", case, "Dockerfile").read_bytes())
    assert raised.value.message == NEGATIVE_MESSAGES[case]
    _passed("testfiles-negative")


def test_testfile_line_ranges() -> None:
    require_shared(*PARSER_DIR, "testfile-line")
    expected = MISC["line_numbers"]
    parsed = parse(_parser_path("testfile-line", "Dockerfile").read_bytes())
    ranges = [(node.span.start_line, node.span.end_line) for node in parsed.nodes]
    assert ranges == [(child["start_line"], child["end_line"]) for child in expected["children"]]
    assert (ranges[0][0], ranges[-1][1]) == (expected["root"]["start_line"], expected["root"]["end_line"])
    _passed("testfile-line")


# --- buildkit-parser-heredocs.json ---------------------------------------------------------------


def _heredoc_children() -> list[Any]:
    children = HEREDOCS.get("extracts_heredoc", {}).get("children", [])
    return [
        pytest.param(child, id=f"{HEREDOCS_JSON}:extracts_heredoc:{index}")
        for index, child in enumerate(children)
    ]


@pytest.mark.parametrize("child", _heredoc_children())
def test_extracts_heredoc(child: dict[str, Any]) -> None:
    require_shared("conformance", "derived", HEREDOCS_JSON)
    parsed = parse(HEREDOCS["extracts_heredoc"]["dockerfile"])
    node = parsed.nodes[child["child_index"]]
    actual = [
        {
            "name": heredoc.name,
            "content": heredoc.content,
            "expand": heredoc.expand,
            "chomp": heredoc.chomp,
            "file_descriptor": heredoc.file_descriptor,
        }
        for heredoc in node.heredocs
    ]
    assert actual == (child["heredocs"] or [])
    _passed(f"{HEREDOCS_JSON}:extracts_heredoc")


def test_json_form_has_no_heredocs() -> None:
    require_shared("conformance", "derived", HEREDOCS_JSON)
    section = HEREDOCS["json_form_has_no_heredocs"]
    parsed = parse(section["dockerfile"])
    for index in section["child_indexes"]:
        assert parsed.nodes[index].json_form
        assert parsed.nodes[index].heredocs == ()
    _passed(f"{HEREDOCS_JSON}:json_form_has_no_heredocs")


@pytest.mark.parametrize(
    "case",
    [pytest.param(case, id=f"{HEREDOCS_JSON}:chomp:{i}") for i, case in enumerate(HEREDOCS.get("chomp", []))],
)
def test_heredoc_chomp(case: dict[str, str]) -> None:
    assert chomp(case["input"]) == case["expected"]
    _passed(f"{HEREDOCS_JSON}:chomp")


@pytest.mark.parametrize("case", _json_cases(HEREDOCS_JSON, HEREDOCS, "heredoc_word", "valid"))
def test_heredoc_word_valid(case: dict[str, str]) -> None:
    operator = parse_heredoc_word(case["word"])
    assert operator is not None
    assert operator.name == case["name"]
    _passed(f"{HEREDOCS_JSON}:heredoc_word")


@pytest.mark.parametrize("case", _json_cases(HEREDOCS_JSON, HEREDOCS, "heredoc_word", "invalid"))
def test_heredoc_word_invalid(case: dict[str, str]) -> None:
    with pytest.raises(UnbalancedQuoteError):
        parse_heredoc_word(case["word"])
    _passed(f"{HEREDOCS_JSON}:heredoc_word")


@pytest.mark.parametrize("case", _json_cases(HEREDOCS_JSON, HEREDOCS, "heredoc_word", "not_heredoc"))
def test_heredoc_word_not_heredoc(case: dict[str, str]) -> None:
    assert parse_heredoc_word(case["word"]) is None
    _passed(f"{HEREDOCS_JSON}:heredoc_word")


@pytest.mark.parametrize("case", _json_cases(HEREDOCS_JSON, HEREDOCS, "heredocs_from_line", "cases"))
def test_heredocs_from_line(case: dict[str, Any]) -> None:
    """``faithful_names`` (what BuildKit's code really finds) wins over the weaker ``names``."""
    expected = case.get("faithful_names", case["names"])
    assert [operator.name for operator in heredocs_from_line(case["line"])] == expected
    _passed(f"{HEREDOCS_JSON}:heredocs_from_line")


# --- buildkit-parser-misc.json -------------------------------------------------------------------


@pytest.mark.parametrize("case", _json_cases(MISC_JSON, MISC, "parse_words", "cases"))
def test_parse_words(case: dict[str, Any]) -> None:
    assert parse_words(case["input"]) == case["words"]
    _passed(f"{MISC_JSON}:parse_words")


def test_empty_continuation_warnings() -> None:
    require_shared("conformance", "derived", MISC_JSON)
    section = MISC["empty_continuation_warnings"]
    parsed = parse(section["dockerfile"])
    assert len(parsed.warnings) == section["warning_count"]
    for warning, fragments in zip(parsed.warnings, section["warnings"], strict=True):
        for fragment in fragments:
            assert fragment in warning
        assert section["detail_contains"] in warning
    _passed(f"{MISC_JSON}:empty_continuation_warnings")


def test_line_too_long() -> None:
    require_shared("conformance", "derived", MISC_JSON)
    section = MISC["line_too_long"]
    text = section["prefix"] + section["repeat_char"] * section["repeat_count"] + section["suffix"]
    with pytest.raises(DockerfileError) as raised:
        parse(text)
    assert raised.value.message == section["error"]
    _passed(f"{MISC_JSON}:line_too_long")


@pytest.mark.parametrize("case", _json_cases(MISC_JSON, MISC, "json_arrays", "valid"))
def test_json_arrays_valid(case: dict[str, Any]) -> None:
    arguments = parse_json_array(case["text"])
    assert arguments is not None
    assert list(arguments.values) == case["values"]
    _passed(f"{MISC_JSON}:json_arrays")


@pytest.mark.parametrize("text", _json_cases(MISC_JSON, MISC, "json_arrays", "invalid_not_strings"))
def test_json_arrays_not_strings(text: str) -> None:
    with pytest.raises(DockerfileError) as raised:
        parse_json_array(text)
    assert raised.value.message == "when using JSON array syntax, arrays must be comprised of strings only"
    _passed(f"{MISC_JSON}:json_arrays")


@pytest.mark.parametrize("case", _json_cases(MISC_JSON, MISC, "directives", "cases"))
def test_directives(case: dict[str, Any]) -> None:
    reader = LineReader(case["text"])
    while reader.next_logical_line() is not None:
        pass
    assert [[directive.name, directive.value] for directive in reader.directives] == case["directives"]
    _passed(f"{MISC_JSON}:directives")


def _detect_cases() -> list[Any]:
    return [
        *_json_cases(MISC_JSON, MISC, "detect_syntax", "cases"),
        *_json_cases(MISC_JSON, MISC, "detect_syntax_bom", "cases"),
    ]


def _check_found(found: Any, case: dict[str, Any]) -> None:
    if not case["found"]:
        assert found is None
        return
    assert found is not None
    assert found.ref == case["ref"]
    if "cmdline" in case:
        assert found.cmdline == case["cmdline"]
    if "line" in case:
        assert found.line == case["line"]


@pytest.mark.parametrize("case", _detect_cases())
def test_detect_syntax(case: dict[str, Any]) -> None:
    _check_found(detect_directive(case["text"], "syntax"), case)
    _passed(f"{MISC_JSON}:detect_syntax")


@pytest.mark.parametrize("case", _json_cases(MISC_JSON, MISC, "parse_directive_check", "cases"))
def test_parse_directive_check(case: dict[str, Any]) -> None:
    _check_found(detect_directive(case["text"], "check", other_forms=False), case)
    _passed(f"{MISC_JSON}:parse_directive_check")


@pytest.mark.parametrize("case", _json_cases(MISC_JSON, MISC, "name_val", "cases"))
def test_name_val(case: dict[str, Any]) -> None:
    text = f"{case['instruction']} {case['args']}\n"
    if case.get("error"):
        with pytest.raises(DockerfileError) as raised:
            parse(text)
        assert raised.value.message == case["error_message_in_code"]
    else:
        assert list(parse(text).nodes[0].args) == case["nodes"]
    _passed(f"{MISC_JSON}:name_val")


# --- dockerfile-errors.jsonl ---------------------------------------------------------------------


@pytest.mark.parametrize("row", [pytest.param(row, id=f"{ERRORS_JSONL}:{row['id']}") for row in PARSE_ERRORS])
def test_parse_stage_errors(row: dict[str, Any]) -> None:
    with pytest.raises(DockerfileError) as raised:
        parse(row["dockerfile"])
    message = raised.value.message
    if row["error"] is not None:
        assert row["error"] in message
    for fragment in row.get("also_contains", []):
        assert fragment in message
    if "error_lines" in row:
        span = raised.value.span
        assert span is not None
        assert list(range(span.start_line, span.end_line + 1)) == row["error_lines"]
    _passed(ERRORS_JSONL)
