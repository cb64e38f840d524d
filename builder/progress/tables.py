"""Listings such as ``kiln images``, ``kiln ps`` or ``kiln df``: one helper, three shapes.

On a terminal a rich table; otherwise docker's plain columns (padded, three spaces apart),
which scripts can cut; with ``--format json`` one JSON object per row and line, as
``docker images --format json`` prints. Cells keep their type in JSON (a size stays a number)
and are printed with ``str`` elsewhere.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Literal, TextIO

from rich import box
from rich.console import Console
from rich.table import Table

from builder.errors import UsageError
from builder.lazyclasses import dataclass
from builder.progress.select import is_interactive

TableFormat = Literal["table", "json"]


@dataclass(frozen=True)
class Column:
    """A column's heading, its key in JSON output, and which side its cells hug."""

    heading: str
    key: str = ""
    justify: Literal["left", "right"] = "left"

    @property
    def json_key(self) -> str:
        """The key in JSON rows: given, or the heading in docker's CamelCase (``IMAGE ID`` → ``ImageId``)."""
        if self.key:
            return self.key
        return "".join(word.capitalize() for word in re.split(r"[^A-Za-z0-9]+", self.heading) if word)


def render_table(
    columns: Sequence[str | Column],
    rows: Sequence[Sequence[object]],
    *,
    stream: TextIO,
    format: str = "table",
    environ: Mapping[str, str] | None = None,
) -> None:
    """Write ``rows`` under ``columns`` to ``stream`` in the requested ``format``.

    Raises :class:`UsageError` for a format other than ``table`` or ``json``, or a row whose
    length differs from the columns'.
    """
    described = [column if isinstance(column, Column) else Column(column) for column in columns]
    for row in rows:
        if len(row) != len(described):
            raise UsageError(f"a table row has {len(row)} cells for {len(described)} columns")
    if format == "json":
        for row in rows:
            document = {column.json_key: cell for column, cell in zip(described, row, strict=True)}
            stream.write(json.dumps(document, ensure_ascii=False, default=str) + "\n")
    elif format != "table":
        raise UsageError(f"unknown format {format!r}: expected table or json")
    elif is_interactive(stream, environ):
        _rich_table(described, rows, stream)
    else:
        stream.write(plain_columns(described, rows))
    stream.flush()


def plain_columns(columns: Sequence[Column], rows: Sequence[Sequence[object]]) -> str:
    """Headings and cells padded to the widest of each column, three spaces apart."""
    lines = [[column.heading for column in columns], *[[str(cell) for cell in row] for row in rows]]
    widths = [max(len(line[index]) for line in lines) for index in range(len(columns))]
    out = []
    for line in lines:
        cells = [
            cell.rjust(width) if column.justify == "right" else cell.ljust(width)
            for cell, width, column in zip(line, widths, columns, strict=True)
        ]
        out.append("   ".join(cells).rstrip() + "\n")
    return "".join(out)


def _rich_table(columns: Sequence[Column], rows: Sequence[Sequence[object]], stream: TextIO) -> None:
    console = Console(file=stream, force_terminal=True, highlight=False, markup=False, emoji=False)
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for column in columns:
        table.add_column(column.heading, justify=column.justify, no_wrap=True, overflow="ellipsis")
    for row in rows:
        table.add_row(*(str(cell) for cell in row))
    console.print(table)
