"""BuildKit's shell-lexer vectors: ``envVarTest``, ``wordsTest`` and ``buildkit-shell-lex.json``.

The line readers follow the corpus README (§2, §3) exactly, since trailing spaces and the
``|`` counts are part of the data. Case ids are ``envVarTest:<line>``, ``wordsTest:<line>``
and ``buildkit-shell-lex.json:<section>:<index>``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from frontends.dockerfile.shell import ExpansionError, ShellLexer, env_from_list
from tests.conftest import SHARED_DIR, require_shared

SHELL_DIR = ("conformance", "buildkit", "frontend", "dockerfile", "shell")
LEX_JSON = ("conformance", "derived", "buildkit-shell-lex.json")
# Go's unicode.IsSpace, which strings.TrimSpace uses (str.strip also strips U+001C..U+001F).
GO_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u2028\u2029\u202f\u205f\u3000"
)
ENV_VAR_TEST_ENV = {"PWD": "/home", "SHELL": "bash", "KOREAN": "한국어", "NULL": ""}

OUTCOMES: Counter[str] = Counter()


@dataclass(frozen=True)
class VectorCase:
    case_id: str
    platform: str
    source: str
    expected: str


@dataclass(frozen=True)
class WordsCase:
    case_id: str
    source: str
    env: tuple[str, ...]
    expected: tuple[str, ...]


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """Lines as Go's bufio.Scanner gives them: split on LF, one trailing CR dropped."""
    text = path.read_bytes().decode("utf-8")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for number, line in enumerate(lines, start=1):
        yield number, line.removesuffix("\r")


def _env_var_cases() -> list[VectorCase]:
    path = SHARED_DIR.joinpath(*SHELL_DIR, "envVarTest")
    if not path.exists():
        return []
    cases = []
    for number, line in _lines(path):
        if line.startswith("#"):
            continue
        trimmed = line.strip(GO_SPACE)
        if not trimmed:
            continue
        fields = trimmed.split("|")
        assert len(fields) == 3, f"envVarTest:{number} has {len(fields)} fields"
        platform, source, expected = (field.strip(GO_SPACE) for field in fields)
        assert platform in ("A", "U", "W"), f"envVarTest:{number}: bad platform {platform!r}"
        cases.append(VectorCase(f"envVarTest:{number}", platform, source, expected))
    return cases


def _words_cases() -> list[WordsCase]:
    path = SHARED_DIR.joinpath(*SHELL_DIR, "wordsTest")
    if not path.exists():
        return []
    env: list[str] = []
    cases = []
    for number, line in _lines(path):
        if line.startswith("#"):
            continue
        if line.startswith("ENV "):
            env.append(line[3:].lstrip(" "))
            continue
        parts = line.split("|")
        assert len(parts) == 2, f"wordsTest:{number} must have exactly one |"
        source = parts[0].strip(GO_SPACE)
        expected = tuple(parts[1].lstrip(" ").split(","))
        cases.append(WordsCase(f"wordsTest:{number}", source, tuple(env), expected))
    return cases


def _lex_json_cases() -> list[tuple[str, str, dict[str, Any]]]:
    path = SHARED_DIR.joinpath(*LEX_JSON)
    if not path.exists():
        return []
    data = json.loads(path.read_bytes())
    cases = []
    for section, body in data.items():
        if section.startswith("_"):
            continue
        for index, case in enumerate(body["cases"]):
            cases.append((f"buildkit-shell-lex.json:{section}:{index}", section, case))
    return cases


ENV_VAR_CASES = _env_var_cases()
WORDS_CASES = _words_cases()
LEX_JSON_CASES = _lex_json_cases()


@pytest.fixture(scope="module", autouse=True)
def _report_counts() -> Iterator[None]:
    """Print how many vectors of each data set passed or were skipped (README §6.5)."""
    OUTCOMES.clear()
    yield
    lines = [f"  {key}: {count}" for key, count in sorted(OUTCOMES.items())]
    print("\nshell vectors:\n" + "\n".join(lines))


def _record(data_set: str, outcome: str) -> None:
    OUTCOMES[f"{data_set} {outcome}"] += 1


def test_corpus_is_complete() -> None:
    """The README's inventory: 230 envVarTest lines (2 Windows-only), 24 wordsTest cases,
    47 + 6 + 3 + 7 cases in the JSON file."""
    require_shared(*SHELL_DIR)
    assert len(ENV_VAR_CASES) == 230
    assert Counter(case.platform for case in ENV_VAR_CASES) == {"A": 226, "U": 2, "W": 2}
    assert len(WORDS_CASES) == 24
    assert Counter(section for _, section, _ in LEX_JSON_CASES) == {
        "process_word_with_matches": 47,
        "mandatory_env_vars": 6,
        "platform_filename": 3,
        "env_list_semantics": 7,
    }


@pytest.mark.parametrize("case", ENV_VAR_CASES, ids=[case.case_id for case in ENV_VAR_CASES])
def test_env_var_vector(case: VectorCase) -> None:
    if case.platform == "W":
        _record("envVarTest", "skipped")
        pytest.skip("Windows-only")
    lexer = ShellLexer("\\")
    if case.expected == "error":
        with pytest.raises(ExpansionError):
            lexer.process_word(case.source, ENV_VAR_TEST_ENV)
    else:
        assert lexer.process_word(case.source, ENV_VAR_TEST_ENV) == case.expected
    _record("envVarTest", "passed")


@pytest.mark.parametrize("case", WORDS_CASES, ids=[case.case_id for case in WORDS_CASES])
def test_words_vector(case: WordsCase) -> None:
    lexer = ShellLexer("\\")
    env = env_from_list(case.env)
    if case.expected == ("error",):
        with pytest.raises(ExpansionError):
            lexer.process_words(case.source, env)
    else:
        assert lexer.process_words(case.source, env) == list(case.expected)
    _record("wordsTest", "passed")


@pytest.mark.parametrize(
    ("section", "case"),
    [(section, case) for _, section, case in LEX_JSON_CASES],
    ids=[case_id for case_id, _, _ in LEX_JSON_CASES],
)
def test_lex_json_case(section: str, case: dict[str, Any]) -> None:
    lexer = ShellLexer("\\")
    if section == "process_word_with_matches":
        if case.get("error"):
            with pytest.raises(ExpansionError):
                lexer.process_word_with_matches(case["input"], case["env"])
        else:
            result, matched, unmatched = lexer.process_word_with_matches(case["input"], case["env"])
            assert (result, matched, unmatched) == (
                case["expected"],
                set(case["matched"]),
                set(case["unmatched"]),
            )
    elif section == "mandatory_env_vars":
        env = env_from_list(case["env"])
        if "error_contains" in case:
            with pytest.raises(ExpansionError) as failure:
                lexer.process_word(case["input"], env)
            assert case["error_contains"] in str(failure.value)
        else:
            assert lexer.process_word(case["input"], env) == case["expected"]
    elif section == "platform_filename":
        assert lexer.process_word(case["input"], case["env"]) == case["expected"]
    elif section == "env_list_semantics":
        assert env_from_list(case["env"]).get(case["name"], "") == case["value"]
    else:
        pytest.fail(f"unknown section {section}")
    _record("buildkit-shell-lex.json", "passed")
