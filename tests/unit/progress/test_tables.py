"""render_table: plain columns for pipes, a rich table on a terminal, JSON lines on request."""

from __future__ import annotations

import io
import json

import pytest

from builder.errors import UsageError
from builder.progress.tables import Column, render_table

COLUMNS: list[str | Column] = ["REPOSITORY", "TAG", "IMAGE ID", Column("SIZE", key="Size", justify="right")]
ROWS = [["demo", "latest", "0123456789ab", "5.37MB"], ["busybox", "1.36", "fedcba987654", "1.2kB"]]


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_columns_for_a_pipe() -> None:
    stream = io.StringIO()
    render_table(COLUMNS, ROWS, stream=stream)
    assert stream.getvalue().splitlines() == [
        "REPOSITORY   TAG      IMAGE ID         SIZE",
        "demo         latest   0123456789ab   5.37MB",
        "busybox      1.36     fedcba987654    1.2kB",
    ]


def test_rich_table_on_a_terminal() -> None:
    stream = FakeTerminal()
    render_table(COLUMNS, ROWS, stream=stream, environ={"TERM": "xterm"})
    output = stream.getvalue()
    assert "\x1b[" in output
    text_rows = [line for line in output.splitlines() if "demo" in line or "busybox" in line]
    assert len(text_rows) == 2
    assert "0123456789ab" in text_rows[0]
    assert text_rows[1].rstrip().endswith("1.2kB")


def test_json_lines_keep_cell_types_and_use_camel_case_keys() -> None:
    stream = io.StringIO()
    render_table(["IMAGE ID", Column("SIZE", key="Size")], [["0123", 5370000]], stream=stream, format="json")
    assert [json.loads(line) for line in stream.getvalue().splitlines()] == [
        {"ImageId": "0123", "Size": 5370000}
    ]


def test_empty_listing_prints_only_the_headings() -> None:
    stream = io.StringIO()
    render_table(["CONTAINER ID", "IMAGE"], [], stream=stream)
    assert stream.getvalue() == "CONTAINER ID   IMAGE\n"


def test_bad_format_and_ragged_rows_are_usage_errors() -> None:
    with pytest.raises(UsageError) as raised:
        render_table(["A"], [["1"]], stream=io.StringIO(), format="yaml")
    assert str(raised.value) == "unknown format 'yaml': expected table or json"
    with pytest.raises(UsageError) as raised:
        render_table(["A", "B"], [["1"]], stream=io.StringIO())
    assert str(raised.value) == "a table row has 1 cells for 2 columns"
