"""``.dockerignore`` conformance: every row and section of the shared dockerignore vectors.

Data sets (see the corpus README §4.5, §4.6, §4.8):

* ``dockerignore-matches.jsonl``: (patterns, path) → excluded or error, one row per case;
* ``dockerignore-patterns.json``: the same matches by section, plus pattern-list building,
  the late pattern error and reading a ``.dockerignore`` file;
* ``dockerignore-context-walk.json``: context trees walked through the filter.

Case ids follow the README: ``<file>:<id>`` and ``<json file>:<section>:<index>``.
``test_counts`` prints passed/failed/skipped per data set (visible with ``-s`` or ``-rA``).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from builder.context import BuildContext, EntryKind
from builder.errors import ContextError
from builder.patterns import PatternMatcher, clean_path, read_ignore_file
from tests.conftest import require_shared

MATCHES_FILE = "dockerignore-matches.jsonl"
PATTERNS_FILE = "dockerignore-patterns.json"
WALK_FILE = "dockerignore-context-walk.json"

Case = dict[str, Any]


def _derived(name: str) -> Path:
    return require_shared("conformance", "derived", name)


def _load_json(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(_derived(name).read_text(encoding="utf-8"))
    return loaded


def _skip_reason(case: Case) -> str | None:
    if case.get("platform") == "unix" and sys.platform == "win32":
        return "backslash is a path separator on Windows"
    return None


# --- adapters (README §6) -------------------------------------------------------------


def excluded(patterns: list[str], path: str, *, legacy: bool = False) -> tuple[bool, str | None]:
    """(excluded, error message): the legacy ``Matches`` entry point cleans the path and
    never excludes ``.``; the current one decides the path as given."""
    try:
        matcher = PatternMatcher(patterns)
        if legacy:
            path = clean_path(path)
            if path == ".":
                return False, None
        return matcher.excluded(path), None
    except ContextError as err:
        return False, str(err)


# --- dockerignore-matches.jsonl -------------------------------------------------------


def _match_rows() -> list[Case]:
    try:
        text = _derived(MATCHES_FILE).read_text(encoding="utf-8")
    except pytest.skip.Exception:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def check_match_row(row: Case) -> None:
    got, error = excluded(row["patterns"], row["path"], legacy=row["function"] == "Matches")
    assert (got, error) == (row["excluded"], row["error"])


@pytest.mark.parametrize(
    "row", [pytest.param(row, id=f"{MATCHES_FILE}:{row['id']}") for row in _match_rows()]
)
def test_matches_row(row: Case) -> None:
    if reason := _skip_reason(row):
        pytest.skip(reason)
    check_match_row(row)


# --- dockerignore-patterns.json -------------------------------------------------------


def check_matches_case(case: Case) -> None:
    assert excluded(case["patterns"], case["path"]) == (case["match"], None)


def check_legacy_case(case: Case) -> None:
    got = excluded(case["patterns"], case["path"], legacy=True)
    assert got == (case["match"], case.get("error"))


def check_pattern_list_case(case: Case) -> None:
    if "error" in case:
        with pytest.raises(ContextError) as raised:
            PatternMatcher(case["patterns"])
        assert str(raised.value) == case["error"]
        return
    matcher = PatternMatcher(case["patterns"])
    if "active_patterns" in case:
        assert len(matcher.patterns) == case["active_patterns"]
    if "has_exclusions" in case:
        assert matcher.has_exclusions is case["has_exclusions"]


def check_late_pattern_error(case: Case) -> None:
    matcher = PatternMatcher(case["patterns"])
    assert case["create_ok"] is True
    for _ in range(2):
        with pytest.raises(ContextError) as raised:
            matcher.excluded(case["path"])
        assert str(raised.value) == case["error"]


def check_dockerignore_file(case: Case) -> None:
    assert read_ignore_file(case["content"]) == case["patterns"]


PATTERN_SECTIONS: dict[str, Callable[[Case], None]] = {
    "matches": check_matches_case,
    "legacy_matches_function": check_legacy_case,
    "pattern_list": check_pattern_list_case,
    "late_pattern_error": check_late_pattern_error,
    "dockerignore_file": check_dockerignore_file,
}


def _section_cases(section: dict[str, Any]) -> list[Case]:
    if "cases" in section:
        cases: list[Case] = section["cases"]
        return cases
    return [section]


def _pattern_cases() -> list[tuple[str, int, Case]]:
    try:
        document = _load_json(PATTERNS_FILE)
    except pytest.skip.Exception:
        return []
    return [
        (name, index, case)
        for name, section in document.items()
        if name != "_derived_from"
        for index, case in enumerate(_section_cases(section))
    ]


@pytest.mark.parametrize(
    ("section", "index", "case"),
    [
        pytest.param(section, index, case, id=f"{PATTERNS_FILE}:{section}:{index}")
        for section, index, case in _pattern_cases()
    ],
)
def test_patterns_section(section: str, index: int, case: Case) -> None:
    if reason := _skip_reason(case):
        pytest.skip(reason)
    PATTERN_SECTIONS[section](case)


def test_every_patterns_section_has_a_checker() -> None:
    document = _load_json(PATTERNS_FILE)
    assert set(document) - {"_derived_from"} == set(PATTERN_SECTIONS)


# --- dockerignore-context-walk.json ---------------------------------------------------


def materialise(root: Path, case: Case) -> None:
    """Create the case's tree (and its ignore files) under ``root``."""
    for path, kind in case["tree"]:
        target = root / path
        if kind == "dir":
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(f"content of {path}\n")
    if "dockerignore" in case:
        (root / ".dockerignore").write_text(case["dockerignore"])
    for name, text in case.get("ignore_files", {}).items():
        (root / name).write_text(text)


def _kept_files(context: BuildContext) -> set[str]:
    return {entry.path for entry in context.walk() if entry.kind is not EntryKind.DIR}


def _open_context(root: Path, case: Case, dockerfile_name: str = "Dockerfile") -> BuildContext:
    if "exclude" in case:
        return BuildContext(root, PatternMatcher(case["exclude"]))
    return BuildContext.open(root, root / dockerfile_name)


def check_walk_case(root: Path, case: Case) -> None:
    materialise(root, case)
    if case.get("error"):
        with pytest.raises(ContextError):
            list(_open_context(root, case).walk())
        return
    context = _open_context(root, case)
    if "walk" in case:
        walked = [[str(entry.kind), entry.path] for entry in context.walk()]
        assert walked == case["walk"]
    for path in case.get("open_ok", []):
        with context.open_file(path) as opened:
            assert opened.read() == f"content of {path}\n".encode()
        assert context.exists(path)
    for path in case.get("open_missing", []):
        with pytest.raises(ContextError):
            context.open_file(path)
        assert not context.exists(path)
    builds = case.get("builds", [{"dockerfile_name": "Dockerfile", **case}])
    for build in builds:
        if "present" not in build:
            continue
        kept = _kept_files(_open_context(root, case, build["dockerfile_name"]))
        assert set(build["present"]) <= kept
        assert not set(build["absent"]) & kept


def _walk_cases() -> list[tuple[int, Case]]:
    try:
        document = _load_json(WALK_FILE)
    except pytest.skip.Exception:
        return []
    return list(enumerate(document["cases"]))


@pytest.mark.parametrize(
    ("index", "case"),
    [pytest.param(index, case, id=f"{WALK_FILE}:cases:{index}") for index, case in _walk_cases()],
)
def test_context_walk(index: int, case: Case, tmp_path: Path) -> None:
    check_walk_case(tmp_path, case)


# --- counts ---------------------------------------------------------------------------


def _run(outcomes: Counter[str], check: Callable[[], None], skip: str | None) -> None:
    if skip is not None:
        outcomes["skipped"] += 1
        return
    try:
        check()
    except AssertionError:
        outcomes["failed"] += 1
    else:
        outcomes["passed"] += 1


def test_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Run every case once more and print the per-data-set tally; nothing may fail."""
    tallies: dict[str, Counter[str]] = {}
    rows = _match_rows()
    tallies[MATCHES_FILE] = Counter()
    for row in rows:
        _run(tallies[MATCHES_FILE], partial(check_match_row, row), _skip_reason(row))
    tallies[PATTERNS_FILE] = Counter()
    for section, _, case in _pattern_cases():
        check = PATTERN_SECTIONS[section]
        _run(tallies[PATTERNS_FILE], partial(check, case), _skip_reason(case))
    tallies[WALK_FILE] = Counter()
    for index, case in _walk_cases():
        case_root = tmp_path / f"case{index}"
        case_root.mkdir()
        _run(tallies[WALK_FILE], partial(check_walk_case, case_root, case), None)
    with capsys.disabled():
        print()
        for name, outcomes in tallies.items():
            print(
                f"{name}: {outcomes['passed']} passed, {outcomes['failed']} failed, "
                f"{outcomes['skipped']} skipped"
            )
    assert len(rows) == 138
    assert all(outcomes["failed"] == 0 for outcomes in tallies.values())
