"""Physical lines → logical instruction lines, the way BuildKit's parser reads a Dockerfile.

This layer knows nothing about instructions: it strips the BOM, reads the parser directives at
the top (``# syntax=``, ``# escape=``, ``# check=``), drops comment lines (also between
continuation lines), joins continuations exactly as BuildKit does (no separator, continuation
lines keep their leading whitespace), records the comment lines directly above an instruction,
and hands out heredoc bodies when the parser asks for them.

Text is handled as ``str`` decoded from UTF-8 with ``surrogateescape``, so bytes that are not
UTF-8 survive unchanged into the AST (and ``go_quote`` can print them as ``\\xHH``).
"""

from __future__ import annotations

import re
from dataclasses import field

from builder.errors import DockerfileError
from builder.lazyclasses import dataclass
from builder.source import SourceSpan

#: Go's ``unicode.IsSpace``; Python's ``str.isspace`` also accepts U+001C..U+001F.
GO_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)

#: BuildKit reads lines with a 64 KiB scanner buffer; a longer line (terminator included) fails.
MAX_LINE_BYTES = 65536
LINE_TOO_LONG = "dockerfile line greater than max allowed size of 65535"

ALLOWED_DIRECTIVES = frozenset({"syntax", "escape", "check"})

# Go's `\s` is ASCII-only and excludes VT; `\Z` because Python's `$` also matches before "\n".
_DIRECTIVE_RE = re.compile(r"#[\t\n\f\r ]*([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)[\t\n\f\r ]*\Z")


def go_trim_space(text: str) -> str:
    """``strings.TrimSpace``: trim Go whitespace from both ends."""
    return text.strip(GO_SPACE)


def go_trim_left_space(text: str) -> str:
    """``strings.TrimLeftFunc(s, unicode.IsSpace)``."""
    return text.lstrip(GO_SPACE)


def trim_newline(raw_line: str) -> str:
    """Drop every trailing CR and LF, as BuildKit's ``trimNewline`` does."""
    return raw_line.rstrip("\r\n")


def is_comment(raw_line: str) -> bool:
    """A comment line has ``#`` as its first non-whitespace character."""
    return go_trim_left_space(trim_newline(raw_line)).startswith("#")


@dataclass(frozen=True)
class Directive:
    """One parser directive: lower-cased name, value, and the 1-based line it was on."""

    name: str
    value: str
    line: int


def match_directive(line: str, comment_prefix: str = "#") -> tuple[str, str] | None:
    """``(name lower-cased, value)`` when ``line`` has the directive shape, else None."""
    if not line.startswith(comment_prefix):
        return None
    match = _DIRECTIVE_RE.match("#" + line[len(comment_prefix) :])
    if match is None:
        return None
    return match.group(1).lower(), match.group(2)


def continuation_pattern(escape: str) -> re.Pattern[str]:
    """BuildKit's continuation rule: an unescaped escape token, then only spaces and tabs."""
    token = re.escape(escape)
    return re.compile(rf"([^{token}]){token}[ \t]*\Z|^{token}[ \t]*\Z")


@dataclass(frozen=True)
class LogicalLine:
    """One instruction's joined text and where it came from.

    ``text`` is the first line left-stripped, with every continuation piece appended verbatim
    (no separator). ``start_column`` is the 1-based column where ``text`` begins on the first
    line. ``comments`` are the comment lines directly above (``#`` and surrounding space
    removed). ``had_empty_continuation`` marks a whitespace-only line inside the continuation.
    """

    text: str
    start_line: int
    end_line: int
    start_column: int
    comments: tuple[str, ...] = ()
    had_empty_continuation: bool = False


@dataclass(frozen=True)
class HeredocBody:
    """The raw lines of one heredoc body (newlines kept) and the line of its terminator."""

    content: str
    end_line: int


def split_physical_lines(text: str) -> list[str]:
    """Split at LF only, keeping each line's ending; a last line without LF is kept as is."""
    pieces = text.split("\n")
    lines = [piece + "\n" for piece in pieces[:-1]]
    if pieces[-1]:
        lines.append(pieces[-1])
    return lines


def _utf8_length(line: str) -> int:
    return len(line.encode("utf-8", "surrogateescape"))


@dataclass
class LineReader:
    """A cursor over a Dockerfile's physical lines, handing out logical lines and heredoc bodies.

    The parser calls :meth:`next_logical_line` for each instruction and, when that instruction
    carries heredocs, :meth:`read_heredoc_body` once per heredoc, which consumes the lines that
    follow. The escape token may change while the directive block is read, so the continuation
    rule is looked up per line.
    """

    text: str
    file: str = "Dockerfile"
    escape: str = "\\"
    directives: list[Directive] = field(default_factory=list)
    lines: list[str] = field(init=False)
    position: int = field(default=0, init=False)
    directives_done: bool = field(default=False, init=False)
    _continuation: re.Pattern[str] = field(init=False)

    def __post_init__(self) -> None:
        self.lines = split_physical_lines(self.text)
        if self.lines and self.lines[0].startswith("\ufeff"):
            self.lines[0] = self.lines[0][1:]
        self._continuation = continuation_pattern(self.escape)

    @property
    def lines_read(self) -> int:
        """How many physical lines have been consumed (the 1-based number of the last one)."""
        return self.position

    def line_text(self, start_line: int, end_line: int) -> str:
        """The physical lines ``start_line..end_line`` without their line endings."""
        return "\n".join(trim_newline(line) for line in self.lines[start_line - 1 : end_line])

    def span(self, start_line: int, end_line: int | None = None, column: int = 1) -> SourceSpan:
        """A span over lines of this file, carrying their text."""
        last = start_line if end_line is None else end_line
        return SourceSpan(self.file, start_line, last, column, self.line_text(start_line, last))

    def _next_raw(self) -> str | None:
        if self.position >= len(self.lines):
            return None
        raw = self.lines[self.position]
        self.position += 1
        if len(raw) * 4 >= MAX_LINE_BYTES - 1:
            size = _utf8_length(raw)
            if size > MAX_LINE_BYTES or (size == MAX_LINE_BYTES and not raw.endswith("\n")):
                raise DockerfileError(LINE_TOO_LONG, SourceSpan(self.file, self.position, self.position))
        return raw

    def _check_directive(self, stripped: str) -> None:
        """Feed one left-stripped first line to the directive block (BuildKit's DirectiveParser)."""
        if self.directives_done:
            return
        found = match_directive(stripped)
        if found is None or found[0] not in ALLOWED_DIRECTIVES:
            self.directives_done = True
            return
        name, value = found
        if any(directive.name == name for directive in self.directives):
            raise DockerfileError(f"only one {name} parser directive can be used", self.span(self.position))
        if name == "escape":
            if value not in ("`", "\\"):
                raise DockerfileError(
                    f"invalid escape token '{value}' does not match ` or \\", self.span(self.position)
                )
            self.escape = value
            self._continuation = continuation_pattern(value)
        self.directives.append(Directive(name, value, self.position))

    def _trim_continuation(self, line: str) -> tuple[str, bool]:
        """``(line without the continuation token, whether the instruction ends here)``."""
        if self._continuation.search(line) is None:
            return line, True
        return self._continuation.sub(lambda match: match.group(1) or "", line), False

    def next_logical_line(self) -> LogicalLine | None:
        """The next instruction line, or None at the end of the file."""
        comments: list[str] = []
        while (raw := self._next_raw()) is not None:
            if is_comment(raw):
                comment = go_trim_space(go_trim_left_space(trim_newline(raw))[1:])
                if comment:
                    comments.append(comment)
                else:
                    comments = []
            stripped = go_trim_left_space(trim_newline(raw))
            self._check_directive(stripped)
            first = "" if stripped.startswith("#") else stripped
            start_line = self.position
            line, ended = self._trim_continuation(first)
            if ended and line == "":
                if not stripped:
                    comments = []
                continue
            column = len(trim_newline(raw)) - len(stripped) + 1
            return self._finish_continuation(line, ended, start_line, column, tuple(comments))
        return None

    def _finish_continuation(
        self, line: str, ended: bool, start_line: int, column: int, comments: tuple[str, ...]
    ) -> LogicalLine:
        had_empty = False
        while not ended and (raw := self._next_raw()) is not None:
            if is_comment(raw):
                continue
            piece = trim_newline(raw)
            if not go_trim_left_space(piece):
                had_empty = True
                continue
            piece, ended = self._trim_continuation(piece)
            line += piece
        return LogicalLine(line, start_line, self.position, column, comments, had_empty)

    def read_heredoc_body(self, name: str, chomp: bool, start_line: int) -> HeredocBody:
        """Consume the lines up to the terminator ``name`` (tabs ignored before it for ``<<-``)."""
        content: list[str] = []
        while (raw := self._next_raw()) is not None:
            candidate = trim_newline(raw)
            if chomp:
                candidate = candidate.lstrip("\t")
            if candidate == name:
                return HeredocBody("".join(content), self.position)
            content.append(raw)
        last = max(self.position, start_line)
        raise DockerfileError("unterminated heredoc", self.span(start_line, last))
