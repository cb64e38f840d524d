"""Dockerfile word expansion: BuildKit's shell lexer (``frontend/dockerfile/shell``).

Every word of an instruction goes through here: ``$VAR`` and ``${VAR...}`` are replaced
from the stage's environment, quotes and escapes are removed, and for the instructions that
take several words the result is split on unquoted whitespace. The behaviour, including
the error cases, is BuildKit's; the conformance corpus (``envVarTest``, ``wordsTest``,
``buildkit-shell-lex.json``) pins it down.

Why a hand-written scanner and no lark grammar: BuildKit defines this language
operationally, as one left-to-right pass with one character of look-ahead, and much of
the observable behaviour follows from that pass rather than from a grammar. What a
backslash means depends on the enclosing operator (kept raw inside ``#``, ``%`` and ``/``
patterns, dropped elsewhere, special only before ``"``, ``$`` and itself inside double
quotes); ``}`` ends a modifier word only when it is not quoted or escaped, so the word is a
full recursive expansion; and which error is reported (``missing '}'`` or the inner one)
depends on whether the inner scan stopped at the end of the input. A grammar would need a
context-dependent lexer plus a fix-up for each of these, and it would parse every plain
word that needs no work at all; the scanner below instead returns such words after one
regex search (under 1 µs on a slow 2-core machine) and expands a typical
``${APP_DIR:-/opt}/lib`` in about 12 µs there.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from builder.errors import DockerfileError
from frontends.dockerfile._shell_patterns import (
    GO_EOF_RUNE,
    PatternError,
    replace,
    trim_prefix,
    trim_suffix,
)
from frontends.dockerfile.dump import go_quote

# Go's unicode.IsSpace: Python's str.isspace() also accepts U+001C..U+001F.
_GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_SPACE_RUN = f"[{_GO_SPACE}]+"  # (compiled on first use: the class takes 0.5 ms to compile)
# The one-character special parameters of POSIX sh (never set in a Dockerfile).
_SPECIAL_PARAMETERS = frozenset("@*#?-$!0")
_ASCII_NAME_CHARS = re.compile(r"[A-Za-z0-9_]*")
_MISSING_BRACE = "syntax error: missing '}'"


class ExpansionError(DockerfileError):
    """A word that cannot be expanded; the message reads like BuildKit's
    (``failed to process "${FOO:?}": FOO: is not allowed to be empty``)."""


def env_from_list(pairs: Iterable[str]) -> dict[str, str]:
    """The environment a ``KEY=VALUE`` list defines (an image config's ``Env``).

    Split at the first ``=``; a bare ``KEY`` is defined and empty; a later duplicate wins.
    """
    env: dict[str, str] = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        env[key] = value
    return env


class _Words:
    """Splits the expanded text into words as it is produced (BuildKit's ``wordsStruct``).

    Unquoted literal text and variable values split on whitespace; quoted text and
    escaped characters never do. Empty words are dropped, even ``''``.
    """

    __slots__ = ("current", "in_word", "words")

    def __init__(self) -> None:
        self.words: list[str] = []
        self.current = ""
        self.in_word = False

    def add_splitting(self, text: str) -> None:
        for index, run in enumerate(re.split(_SPACE_RUN, text)):
            # Whitespace ends a word only when the word has text: after '' it is skipped.
            if index and self.in_word and self.current:
                self.words.append(self.current)
                self.current = ""
                self.in_word = False
            if run:
                self.current += run
                self.in_word = True

    def add_verbatim(self, text: str) -> None:
        self.current += text
        self.in_word = True

    def finish(self) -> list[str]:
        if self.current:
            self.words.append(self.current)
        return self.words


class ShellLexer:
    """Expands Dockerfile words the way BuildKit's ``shell.Lex`` does.

    ``escape`` is the Dockerfile's escape token (``\\`` or `````); with ````` a backslash is
    an ordinary character, as Windows paths need. ``raw_quotes`` keeps quote characters in
    the result (BuildKit uses it for the display name of a RUN step); ``skip_unset_env``
    leaves a reference to an unset variable as written. ``raw_escapes`` keeps escape tokens
    (heredoc bodies of COPY), and ``skip_process_quotes`` treats quotes as ordinary
    characters (heredoc bodies). The options are fixed when the lexer is made; it holds no
    per-word state, so one lexer may be shared.
    """

    def __init__(
        self,
        escape: str = "\\",
        *,
        raw_quotes: bool = False,
        skip_unset_env: bool = False,
        raw_escapes: bool = False,
        skip_process_quotes: bool = False,
    ) -> None:
        if len(escape) != 1:
            raise ValueError(f"escape token must be one character, not {escape!r}")
        self.escape = escape
        self.raw_quotes = raw_quotes
        self.skip_unset_env = skip_unset_env
        self.raw_escapes = raw_escapes
        self.process_quotes = not skip_process_quotes
        quotes = "'\"" if self.process_quotes else ""
        specials = "$" + quotes + escape
        # A word without any of these (nor a byte order mark, looked for apart: with it in
        # the class the pattern takes ten times as long to compile) expands to itself.
        self._needs_work = re.compile(f"[{re.escape(specials)}]")
        self._literal_runs = {
            stop: re.compile(f"[^{re.escape(specials + stop)}]+") for stop in ("", "}", "/")
        }
        self._double_quoted_run = re.compile(f"[^{re.escape('$' + chr(34) + escape)}]+")

    def process_word(self, word: str, env: Mapping[str, str]) -> str:
        """``word`` expanded as one word: quotes removed, whitespace kept, nothing split."""
        if not self._needs_work.search(word) and "\ufeff" not in word:
            return word
        return _Expansion(self, word, env).run(None)

    def process_words(self, word: str, env: Mapping[str, str]) -> list[str]:
        """``word`` expanded, then split on whitespace that was neither quoted nor escaped
        (whitespace from a variable's value splits too); empty words are dropped."""
        if not self._needs_work.search(word) and "\ufeff" not in word:
            return [run for run in re.split(_SPACE_RUN, word) if run]
        words = _Words()
        _Expansion(self, word, env).run(words)
        return words.finish()

    def process_word_with_matches(self, word: str, env: Mapping[str, str]) -> tuple[str, set[str], set[str]]:
        """``process_word`` plus the names it referenced that ``env`` defines (matched)
        and does not define (unmatched), e.g. to warn about undefined build args."""
        if not self._needs_work.search(word) and "\ufeff" not in word:
            return word, set(), set()
        expansion = _Expansion(self, word, env)
        result = expansion.run(None)
        return result, expansion.matched, expansion.unmatched


class _Expansion:
    """The state of expanding one word: the text, the read position, names looked up.

    Each method mirrors one step of BuildKit's scanner and leaves the position where that
    step leaves it, because which error is reported depends on it.
    """

    __slots__ = ("env", "length", "lexer", "matched", "pos", "raw_escapes", "text", "unmatched")

    def __init__(self, lexer: ShellLexer, text: str, env: Mapping[str, str]) -> None:
        self.lexer = lexer
        self.text = text
        self.length = len(text)
        self.env = env
        # Go's text/scanner skips a byte order mark at the start of its input.
        self.pos = 1 if text.startswith("\ufeff") else 0
        self.raw_escapes = lexer.raw_escapes
        self.matched: set[str] = set()
        self.unmatched: set[str] = set()

    def run(self, words: _Words | None) -> str:
        try:
            return self.until("", self.raw_escapes, words)
        except ExpansionError as err:
            raise ExpansionError(f"failed to process {go_quote(self.text)}: {err.message}") from err

    def until(self, stop: str, raw_escapes: bool, words: _Words | None) -> str:
        """Expand up to ``stop`` (consumed) or, when ``stop`` is empty, to the end."""
        saved_raw_escapes = self.raw_escapes
        self.raw_escapes = raw_escapes
        try:
            return self._until(stop, words)
        finally:
            self.raw_escapes = saved_raw_escapes

    def _until(self, stop: str, words: _Words | None) -> str:
        text, length = self.text, self.length
        escape = self.lexer.escape
        process_quotes = self.lexer.process_quotes
        literal_run = self.lexer._literal_runs[stop]
        result: list[str] = []
        while self.pos < length:
            char = text[self.pos]
            if char == stop:
                self.pos += 1
                return "".join(result)
            if char == "$":
                value = self.dollar()
                result.append(value)
                if words is not None:
                    words.add_splitting(value)
            elif process_quotes and char in ("'", '"'):
                value = self.single_quoted() if char == "'" else self.double_quoted()
                result.append(value)
                if words is not None:
                    words.add_verbatim(value)
            elif char == escape:
                self.pos += 1
                if self.raw_escapes:
                    result.append(char)
                    if words is not None:
                        words.add_verbatim(char)
                if self.pos >= length:
                    break  # a trailing escape token is dropped
                escaped = text[self.pos]
                self.pos += 1
                result.append(escaped)
                if words is not None:
                    words.add_verbatim(escaped)
            else:
                run = literal_run.match(text, self.pos)
                assert run is not None  # char is not special, so the run has one character
                self.pos = run.end()
                result.append(run.group())
                if words is not None:
                    words.add_splitting(run.group())
        if stop:
            raise ExpansionError(f"unexpected end of statement while looking for matching {stop}")
        return "".join(result)

    def until_or(self, stop: str, raw_escapes: bool, at_end_message: str) -> str:
        """``until`` inside ``${...}``: a failure that ran off the end reads ``at_end_message``."""
        try:
            return self.until(stop, raw_escapes, None)
        except ExpansionError:
            if self.pos >= self.length:
                raise ExpansionError(at_end_message) from None
            raise

    def single_quoted(self) -> str:
        """Everything up to the next ``'`` as written: no escapes, no expansion."""
        start = self.pos + 1
        end = self.text.find("'", start)
        if end < 0:
            self.pos = self.length
            raise ExpansionError("unexpected end of statement while looking for matching single-quote")
        self.pos = end + 1
        body = self.text[start:end]
        return f"'{body}'" if self.lexer.raw_quotes else body

    def double_quoted(self) -> str:
        """Up to the next unescaped ``"``: variables expand; the escape token escapes only
        ``"``, ``$`` and itself and stays literal before anything else."""
        text, length = self.text, self.length
        escape = self.lexer.escape
        literal_run = self.lexer._double_quoted_run
        raw_quotes = self.lexer.raw_quotes
        result: list[str] = ['"'] if raw_quotes else []
        self.pos += 1
        while True:
            if self.pos >= length:
                raise ExpansionError("unexpected end of statement while looking for matching double-quote")
            char = text[self.pos]
            if char == '"':
                self.pos += 1
                if raw_quotes:
                    result.append(char)
                return "".join(result)
            if char == "$":
                result.append(self.dollar())
                continue
            if char != escape:
                run = literal_run.match(text, self.pos)
                assert run is not None
                self.pos = run.end()
                result.append(run.group())
                continue
            self.pos += 1
            if self.raw_escapes:
                result.append(char)
            if self.pos >= length:
                continue  # reported as the unterminated quote on the next turn
            if text[self.pos] in ('"', "$", escape):
                char = text[self.pos]
                self.pos += 1
            result.append(char)

    def name(self) -> str:
        """A parameter name: letters, digits and ``_``; digits first make a positional name
        (all the digits); a special parameter is one character; empty when none follows."""
        text, length = self.text, self.length
        start = self.pos
        if start >= length:
            return ""
        first = text[start]
        if first.isdecimal():
            end = start + 1
            while end < length and text[end].isdecimal():
                end += 1
            self.pos = end
            return text[start:end]
        if first in _SPECIAL_PARAMETERS:
            self.pos = start + 1
            return first
        run = _ASCII_NAME_CHARS.match(text, start)
        end = run.end() if run else start
        while end < length and (text[end] == "_" or text[end].isalpha() or text[end].isdecimal()):
            end += 1
        self.pos = end
        return text[start:end]

    def lookup(self, name: str) -> str | None:
        """The value of ``name``, or None when unset; records the name as matched or not."""
        try:
            value = self.env[name]
        except KeyError:
            self.unmatched.add(name)
            return None
        self.matched.add(name)
        return value

    def next_char(self) -> str:
        """The next character, consumed; ``""`` at the end."""
        if self.pos >= self.length:
            return ""
        char = self.text[self.pos]
        self.pos += 1
        return char

    def dollar(self) -> str:
        """``$NAME``, ``${...}``, or a lone ``$`` kept as written."""
        self.pos += 1
        if self.text[self.pos : self.pos + 1] != "{":
            name = self.name()
            if not name:
                return "$"
            value = self.lookup(name)
            if value is None:
                return "$" + name if self.lexer.skip_unset_env else ""
            return value
        self.pos += 1
        following = self.text[self.pos : self.pos + 1]
        if not following:
            raise ExpansionError(_MISSING_BRACE)
        if following in ("{", "}", ":"):
            raise ExpansionError("syntax error: bad substitution")
        name = self.name()
        operator = self.next_char()
        if operator == "}":
            value = self.lookup(name)
            if value is None:
                return "${" + name + "}" if self.lexer.skip_unset_env else ""
            return value
        if operator == "/":
            return self.substitution(name)
        spelled = operator or GO_EOF_RUNE
        null_is_unset = operator == ":"
        if null_is_unset:
            operator = self.next_char()
            spelled += operator or GO_EOF_RUNE
        elif operator not in ("+", "-", "?", "#", "%"):
            raise ExpansionError(f"unsupported modifier ({spelled}) in substitution")
        return self.modifier(name, operator, spelled, null_is_unset)

    def modifier(self, name: str, operator: str, spelled: str, null_is_unset: bool) -> str:
        """``${NAME<op>word}`` for ``- + ? # %`` and their ``:`` forms (``:`` = empty is unset)."""
        is_pattern = operator in ("#", "%")
        if null_is_unset and is_pattern:
            raise ExpansionError(f"unsupported modifier ({spelled}) in substitution")
        word = self.until_or("}", is_pattern, _MISSING_BRACE)
        value = self.lookup(name)
        if value is None and self.lexer.skip_unset_env:
            return "${" + name + spelled + word + "}"
        is_set = value is not None and not (null_is_unset and value == "")
        if operator == "-":
            return value if is_set and value is not None else word
        if operator == "+":
            return word if is_set else ""
        if operator == "?":
            if value is None:
                raise ExpansionError(f"{name}: {word or 'is not allowed to be unset'}")
            if not is_set:
                raise ExpansionError(f"{name}: {word or 'is not allowed to be empty'}")
            return value
        if is_pattern:
            greedy = word.startswith(operator)
            pattern = word[1:] if greedy else word
            trim = trim_suffix if operator == "%" else trim_prefix
            try:
                return trim(pattern, value or "", greedy)
            except PatternError as err:
                raise ExpansionError(f"invalid pattern ({pattern}) in substitution: {err.message}") from err
        raise ExpansionError(f"unsupported modifier ({spelled}) in substitution")

    def substitution(self, name: str) -> str:
        """``${NAME/pattern/replacement}`` (first match) and ``${NAME//pattern/replacement}`` (all)."""
        replace_all = self.text[self.pos : self.pos + 1] == "/"
        if replace_all:
            self.pos += 1
        pattern = self.until_or("/", True, "syntax error: missing '/' in ${}")
        replacement = self.until_or("}", True, _MISSING_BRACE)
        value = self.lookup(name)
        if value is None:
            if self.lexer.skip_unset_env:
                return "${" + name + "/" + pattern + "/" + replacement + "}"
            value = ""
        try:
            return replace(pattern, value, replacement, replace_all)
        except PatternError as err:
            raise ExpansionError(f"invalid pattern ({pattern}) in substitution: {err.message}") from err
