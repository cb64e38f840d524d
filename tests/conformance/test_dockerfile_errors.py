"""Every row of ``dockerfile-errors.jsonl`` (corpus README §4.7) must be rejected in time.

A row is rejected no later than its ``stage``: ``parse`` by the parser, ``instruction`` by
typing the first instruction, ``convert`` by building the graph (``options.target``
honoured). The message (without its location) must contain ``error`` and every
``also_contains`` entry; ``error_lines`` must be exactly the lines the error points at.
The counts are printed when the module ends.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from builder.errors import DockerfileError
from builder.resolver import EmptyResolver
from frontends.dockerfile.convert import build_graph
from frontends.dockerfile.instructions import parse_instruction
from frontends.dockerfile.parser import parse
from tests.conftest import SHARED_DIR, require_shared

ERRORS_JSONL = ("conformance", "derived", "dockerfile-errors.jsonl")
STAGES = ("parse", "instruction", "convert")
OUTCOMES: Counter[str] = Counter()


def _rows() -> list[dict[str, Any]]:
    path = SHARED_DIR.joinpath(*ERRORS_JSONL)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


ROWS = _rows()


def reject(row: dict[str, Any]) -> tuple[str, DockerfileError]:
    """The stage at which kiln refused the row's text, and the error; fails if it did not."""
    try:
        dockerfile = parse(row["dockerfile"])
    except DockerfileError as err:
        return "parse", err
    try:
        if dockerfile.nodes:
            parse_instruction(dockerfile.nodes[0])
    except DockerfileError as err:
        return "instruction", err
    target = (row.get("options") or {}).get("target")
    try:
        build_graph(dockerfile, resolver=EmptyResolver(), target=target)
    except DockerfileError as err:
        return "convert", err
    pytest.fail(f"{row['id']}: accepted, but BuildKit rejects it ({row['error']!r})")


def check_row(row: dict[str, Any]) -> None:
    stage, err = reject(row)
    assert STAGES.index(stage) <= STAGES.index(row["stage"]), f"rejected only at {stage}: {err.message}"
    for expected in [row["error"], *row.get("also_contains", [])]:
        if expected is not None:
            assert expected in err.message
    if row.get("error_lines"):
        assert err.span is not None
        lines = list(range(err.span.start_line, err.span.end_line + 1))
        assert lines == row["error_lines"]


@pytest.fixture(scope="module", autouse=True)
def _print_counts() -> Iterator[None]:
    yield
    if OUTCOMES:
        print(f"\ndockerfile-errors.jsonl: {OUTCOMES['passed']}/{len(ROWS)} rows passed")


@pytest.mark.parametrize("row", ROWS, ids=[row["id"] for row in ROWS])
def test_row_is_rejected(row: dict[str, Any]) -> None:
    require_shared(*ERRORS_JSONL)
    OUTCOMES["run"] += 1
    check_row(row)
    OUTCOMES["passed"] += 1


def test_corpus_is_present() -> None:
    require_shared(*ERRORS_JSONL)
    assert len(ROWS) == 65
