"""Dockerfile text → :class:`~frontends.dockerfile.ast.Dockerfile`, reproducing BuildKit's parser.

:mod:`.lines` turns physical lines into logical instruction lines; this module splits each
into keyword, flags and argument text, applies the keyword's argument rule
(:mod:`.arguments`), wraps ONBUILD's instruction as a child node and reads heredoc bodies for
RUN/COPY/ADD in shell form. Every error is a :class:`~builder.errors.DockerfileError` with
BuildKit's message and the span of the offending lines.
"""

from __future__ import annotations

import re
from dataclasses import replace

from builder.errors import DockerfileError
from builder.lazyclasses import dataclass
from builder.source import SourceSpan
from frontends.dockerfile.arguments import ARGUMENT_RULES, extract_builder_flags, no_arguments_kept
from frontends.dockerfile.ast import Directives, Dockerfile, Heredoc, Node
from frontends.dockerfile.heredoc import heredocs_from_line
from frontends.dockerfile.lines import LineReader, LogicalLine, go_trim_left_space, go_trim_space

NO_INSTRUCTIONS = "file with no instructions"
EMPTY_CONTINUATION_DETAIL = "Empty continuation lines will become errors in a future release"

#: Instructions whose shell form may carry heredocs, and those that may wrap one.
HEREDOC_KEYWORDS = frozenset({"run", "copy", "add"})
HEREDOC_WRAPPERS = frozenset({"onbuild"})

_KEYWORD_SEPARATOR_RE = re.compile(r"[\t\v\f\r ]+")


@dataclass(frozen=True)
class _Where:
    """Where a logical line sits, so node builders can make spans and error locations."""

    reader: LineReader
    line: LogicalLine

    def span(self, end_line: int | None = None) -> SourceSpan:
        last = self.line.end_line if end_line is None else end_line
        return self.reader.span(self.line.start_line, last, self.line.start_column)

    def error_span(self, offset: int) -> SourceSpan:
        """The instruction's span with the column of ``offset`` in the joined text.

        Continuation pieces are joined without separators, so offsets past the first line
        are reported at the instruction's start.
        """
        first_line = self.reader.line_text(self.line.start_line, self.line.start_line)
        column = self.line.start_column
        if 0 <= offset < len(first_line) - (self.line.start_column - 1):
            column += offset
        return replace(self.span(), start_column=column)


def _split_command(line: str) -> tuple[str, tuple[str, ...], str, int]:
    """``(keyword, flags, argument text, offset of the argument text in line)``."""
    trimmed = go_trim_space(line)
    lead = len(line) - len(go_trim_left_space(line))
    parts = _KEYWORD_SEPARATOR_RE.split(trimmed, maxsplit=1)
    if len(parts) < 2:
        return parts[0], (), "", len(line)
    rest, flags = extract_builder_flags(parts[1])
    arguments = go_trim_space(rest)
    # the argument text is a suffix of the trimmed line
    return parts[0], flags, arguments, lead + len(trimmed) - len(arguments)


def _node_from_line(
    line: str, escape: str, where: _Where, comments: tuple[str, ...] = (), line_offset: int = 0
) -> Node:
    """One node (and for ONBUILD its child) from a joined instruction line.

    ``line_offset`` is where ``line`` starts in the logical line (non-zero for ONBUILD's child),
    so error columns point into the file.
    """
    keyword, flags, text, offset = _split_command(line)
    offset += line_offset
    lowered = keyword.lower()
    child: Node | None = None
    values: tuple[str, ...] = ()
    json_form = False
    if lowered == "onbuild":
        if text:
            child = _node_from_line(text, escape, where, line_offset=offset)
    else:
        rule = ARGUMENT_RULES.get(lowered, no_arguments_kept)
        try:
            arguments = rule(text, escape)
        except DockerfileError as err:
            raise DockerfileError(err.message, where.error_span(offset)) from err
        values, json_form = arguments.values, arguments.json_form
    return Node(
        keyword=lowered,
        original_keyword=keyword,
        flags=flags,
        args=values,
        span=where.span(),
        json_form=json_form,
        text=text,
        child=child,
        comments=comments,
        original=line,
    )


def _can_contain_heredoc(node: Node) -> bool:
    """RUN/COPY/ADD in shell form, directly or wrapped by ONBUILD (BuildKit's canContainHeredoc)."""
    if node.keyword in HEREDOC_WRAPPERS and node.child is not None:
        node = node.child
    return node.keyword in HEREDOC_KEYWORDS and not node.json_form


def _read_heredocs(node: Node, where: _Where) -> Node:
    """Attach the bodies of the heredocs the node's line opens; they follow it in the file."""
    if not _can_contain_heredoc(node) or "<<" not in where.line.text:
        return node
    operators = heredocs_from_line(where.line.text)
    if not operators:
        return node
    heredocs: list[Heredoc] = []
    end_line = where.line.end_line
    for operator in operators:
        body = where.reader.read_heredoc_body(operator.name, operator.chomp, where.line.start_line)
        end_line = body.end_line
        heredocs.append(
            Heredoc(
                name=operator.name,
                content=body.content,
                expand=operator.expand,
                chomp=operator.chomp,
                file_descriptor=operator.file_descriptor,
            )
        )
    return replace(node, heredocs=tuple(heredocs), span=where.span(end_line))


def _directives(reader: LineReader) -> Directives:
    found = {directive.name: directive.value for directive in reader.directives}
    return Directives(escape=reader.escape, syntax=found.get("syntax", ""), check=found.get("check", ""))


def parse(data: bytes | str, file: str = "Dockerfile") -> Dockerfile:
    """Parse a whole Dockerfile; raise :class:`DockerfileError` with BuildKit's message.

    ``bytes`` are decoded as UTF-8 with ``surrogateescape`` so that invalid bytes survive into
    the nodes; a ``str`` is taken as already decoded.
    """
    text = data.decode("utf-8", "surrogateescape") if isinstance(data, bytes) else data
    reader = LineReader(text, file)
    nodes: list[Node] = []
    warnings: list[str] = []
    while (line := reader.next_logical_line()) is not None:
        where = _Where(reader, line)
        if line.had_empty_continuation:
            warnings.append(
                f"{file}:{line.end_line}: Empty continuation line found in: {line.text}"
                f" ({EMPTY_CONTINUATION_DETAIL})"
            )
        node = _node_from_line(line.text, reader.escape, where, line.comments)
        nodes.append(_read_heredocs(node, where))
    if not nodes:
        last_line = max(reader.lines_read, 1)
        raise DockerfileError(NO_INSTRUCTIONS, SourceSpan(file, last_line, last_line))
    return Dockerfile(tuple(nodes), _directives(reader), tuple(warnings), file)
