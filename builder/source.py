"""Where something came from in a build definition: a file and a range of its lines.

Kept apart from the graph and the errors so both can carry a location without importing
each other.
"""

from __future__ import annotations

from builder.lazyclasses import dataclass


@dataclass(frozen=True)
class SourceSpan:
    """A 1-based, inclusive range of lines (and the column of the first character) in a file.

    ``text`` holds the original physical lines of the range, so an error or a progress view
    can show them without reading the file again.
    """

    file: str
    start_line: int
    end_line: int
    start_column: int = 1
    text: str = ""

    def describe(self) -> str:
        """``Dockerfile:3`` or ``Dockerfile:3-5``: how a message names this place."""
        if self.end_line > self.start_line:
            return f"{self.file}:{self.start_line}-{self.end_line}"
        return f"{self.file}:{self.start_line}"
