"""Finding heredoc operators (``<<EOF``, ``<<-EOF``, ``3<<'EOF'``) in an instruction line.

BuildKit splits the joined instruction line like a shell (quotes and escapes kept, variables
left alone, backslash as the escape whatever the ``# escape=`` directive says), then treats
every word matching ``^(\\d*)<<(-?)\\s*([^<]*)$`` whose remainder is one shell word as a
heredoc. Whitespace right after ``<<`` stays in the operator's word, so ``<<  EOF`` is one
operator; ``<<- EOF`` is two words and therefore no heredoc (corpus README §4.1).
"""

from __future__ import annotations

import re
from functools import cache

from builder.errors import DockerfileError
from builder.lazyclasses import dataclass
from frontends.dockerfile.lines import GO_SPACE

_HEREDOC_RE = re.compile(r"(\d*)<<(-?)[ \t\n\f\r]*([^<]*)\Z")
_OPEN_OPERATOR_RE = re.compile(r"<<[" + GO_SPACE + r"]*\Z")


@cache
def _leading_tabs() -> re.Pattern[str]:
    """Only ``<<-`` heredocs strip tabs: compiled on the first one, not at import."""
    return re.compile(r"^\t+", re.MULTILINE)


_DOUBLE_QUOTE_ESCAPABLE = '"$\\'


@dataclass(frozen=True)
class HeredocOperator:
    """A heredoc operator found in a line: the terminator name and how the body is read."""

    name: str
    expand: bool
    chomp: bool
    file_descriptor: int


class UnbalancedQuoteError(DockerfileError):
    """A quote opened in a heredoc word or line is never closed."""


def _read_quoted(text: str, start: int, keep_quotes: bool) -> tuple[str, int]:
    """Read the quoted section opening at ``text[start]``; return its text and the next index."""
    quote = text[start]
    pieces = [quote] if keep_quotes else []
    index = start + 1
    while index < len(text):
        char = text[index]
        if char == quote:
            if keep_quotes:
                pieces.append(quote)
            return "".join(pieces), index + 1
        if quote == '"' and char == "\\" and index + 1 < len(text):
            following = text[index + 1]
            if following in _DOUBLE_QUOTE_ESCAPABLE:
                if keep_quotes:
                    pieces.append(char)
                pieces.append(following)
                index += 2
                continue
        pieces.append(char)
        index += 1
    raise UnbalancedQuoteError(f"unexpected end of statement while looking for matching {quote}")


def shell_words(text: str, keep_quotes: bool) -> list[str]:
    """Split ``text`` into shell words without expanding variables.

    With ``keep_quotes`` the quotes and escape characters stay in the words (BuildKit's
    ``RawQuotes`` + ``RawEscapes``) and whitespace right after ``<<`` joins the operator's word;
    without it quotes are removed and escapes processed. Raises :class:`UnbalancedQuoteError`.
    """
    words: list[str] = []
    word: list[str] = []
    in_word = False
    index = 0
    while index < len(text):
        char = text[index]
        if char in ("'", '"'):
            quoted, index = _read_quoted(text, index, keep_quotes)
            word.append(quoted)
            in_word = True
            continue
        if char == "\\":
            if index + 1 >= len(text):
                break
            if keep_quotes:
                word.append(char)
            word.append(text[index + 1])
            in_word = True
            index += 2
            continue
        if char in GO_SPACE and not (keep_quotes and _OPEN_OPERATOR_RE.search("".join(word))):
            if in_word and "".join(word):
                words.append("".join(word))
                word = []
                in_word = False
        else:
            word.append(char)
            in_word = True
        index += 1
    if "".join(word):
        words.append("".join(word))
    return words


def parse_heredoc_word(word: str) -> HeredocOperator | None:
    """The heredoc a single word opens, or None when it is not a heredoc operator.

    ``expand`` is false when any part of the name was quoted: the name then has fewer quote
    characters with quotes removed than with quotes kept. Raises :class:`UnbalancedQuoteError`.
    """
    match = _HEREDOC_RE.match(word)
    if match is None:
        return None
    digits, dash, rest = match.groups()
    if not rest:
        return None
    names = shell_words(rest, keep_quotes=False)
    if len(names) != 1:
        return None
    raw_names = shell_words(rest, keep_quotes=True)
    name, raw_name = names[0], raw_names[0]
    quote_count = name.count("'") + name.count('"')
    raw_quote_count = raw_name.count("'") + raw_name.count('"')
    return HeredocOperator(
        name=name,
        expand=quote_count == raw_quote_count,
        chomp=dash == "-",
        file_descriptor=int(digits) if digits else 0,
    )


def heredocs_from_line(line: str) -> list[HeredocOperator]:
    """Every heredoc operator in a joined instruction line, in order.

    A line whose quotes do not balance has no heredocs (BuildKit ignores the splitter's error).
    """
    try:
        words = shell_words(line, keep_quotes=True)
    except UnbalancedQuoteError:
        return []
    operators: list[HeredocOperator] = []
    for word in words:
        operator = parse_heredoc_word(word)
        if operator is not None:
            operators.append(operator)
    return operators


def chomp(content: str) -> str:
    """Remove the leading tabs (only tabs) of every line, as ``<<-`` asks."""
    return _leading_tabs().sub("", content)
