"""Word expansion beyond the upstream vectors: the escape token, the lexer modes BuildKit
uses for RUN names and heredocs, pattern operators, and the exact error messages."""

from __future__ import annotations

import pytest

from builder.errors import DockerfileError
from frontends.dockerfile.shell import ExpansionError, ShellLexer, env_from_list

ENV = {"FOO": "foo", "EMPTY": "", "SPACED": "a  b", "PATHLIKE": "a.b.c", "URL": "http://x.org"}


# --- backtick as the escape token (Windows-style paths) ---------------------------------


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        (r"C:\dir\$FOO", r"C:\dir\foo"),
        ("`$FOO", "$FOO"),
        ("a``b", "a`b"),
        ("abc`", "abc"),
        (r'"C:\dir\"', "C:\\dir\\"),
        ('"a`"b"', 'a"b'),
        ('"a`$FOO"', "a$FOO"),
        ('"a`xb"', "a`xb"),
        (r"'C:\dir'", r"C:\dir"),
    ],
)
def test_backtick_escape_token(word: str, expected: str) -> None:
    assert ShellLexer("`").process_word(word, ENV) == expected


def test_backtick_escaped_space_does_not_split() -> None:
    assert ShellLexer("`").process_words(r"C:\a` b c", ENV) == [r"C:\a b", "c"]


def test_escape_token_must_be_one_character() -> None:
    with pytest.raises(ValueError, match="one character"):
        ShellLexer("")


# --- modes ----------------------------------------------------------------------------


def test_raw_quotes_keeps_quote_characters() -> None:
    lexer = ShellLexer(raw_quotes=True)
    assert lexer.process_word("""'a $FOO' "b $FOO" c""", ENV) == """'a $FOO' "b foo" c"""
    assert lexer.process_words("""'a b' "c d" e""", ENV) == ["'a b'", '"c d"', "e"]


def test_raw_quotes_still_requires_closing_quote() -> None:
    with pytest.raises(ExpansionError, match="matching single-quote"):
        ShellLexer(raw_quotes=True).process_word("'abc", ENV)


def test_skip_unset_env_leaves_unset_references_as_written() -> None:
    lexer = ShellLexer(skip_unset_env=True)
    assert lexer.process_word("$NOPE ${NOPE} ${NOPE:-x} ${NOPE+y} $FOO", ENV) == (
        "$NOPE ${NOPE} ${NOPE:-x} ${NOPE+y} foo"
    )
    # BuildKit writes both replacement forms back with a single slash.
    assert lexer.process_word("${NOPE/a/b}|${NOPE//a/b}", ENV) == "${NOPE/a/b}|${NOPE/a/b}"


def test_skip_unset_env_defers_modifier_checks_for_unset_names() -> None:
    lexer = ShellLexer(skip_unset_env=True)
    assert lexer.process_word("${NOPE:?message}", ENV) == "${NOPE:?message}"
    assert lexer.process_word("${NOPE:=x}", ENV) == "${NOPE:=x}"
    with pytest.raises(ExpansionError, match=r"unsupported modifier \(:=\)"):
        lexer.process_word("${FOO:=x}", ENV)


def test_raw_escapes_keeps_escape_tokens() -> None:
    lexer = ShellLexer(raw_escapes=True)
    assert lexer.process_word(r"a\$FOO \n", ENV) == r"a\$FOO \n"
    assert lexer.process_word("trailing\\", ENV) == "trailing\\"
    # Inside double quotes an escape before an ordinary character is written twice, as in BuildKit.
    assert lexer.process_word(r'"\a\$"', ENV) == r"\\a\$"


def test_skip_process_quotes_treats_quotes_as_text() -> None:
    lexer = ShellLexer(skip_process_quotes=True)
    assert lexer.process_word("""echo '$FOO' "$FOO" 'open""", ENV) == """echo 'foo' "foo" 'open"""


# --- expansion details ------------------------------------------------------------------


def test_variable_values_split_but_quoted_values_do_not() -> None:
    lexer = ShellLexer()
    assert lexer.process_words("x${SPACED}y", ENV) == ["xa", "by"]
    assert lexer.process_words('x"${SPACED}"y', ENV) == ["xa  by"]
    assert lexer.process_words("'' \"\" a", ENV) == ["a"]


def test_go_whitespace_splits_words_but_file_separators_do_not() -> None:
    lexer = ShellLexer()
    assert lexer.process_words(" a\u00a0b\x1cc\u3000", ENV) == ["a", "b\x1cc"]
    assert lexer.process_words(" $FOO\u00a0b\x1cc ", ENV) == ["foo", "b\x1cc"]


def test_leading_byte_order_mark_is_ignored() -> None:
    assert ShellLexer().process_word("\ufeff$FOO", ENV) == "foo"
    assert ShellLexer().process_word("a\ufeffb", ENV) == "a\ufeffb"


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("${PATHLIKE#*.}", "b.c"),
        ("${PATHLIKE##*.}", "c"),
        ("${PATHLIKE%.*}", "a.b"),
        ("${PATHLIKE%%.*}", "a"),
        ("${PATHLIKE%%nomatch}", "a.b.c"),
        ("${URL/http:\\/\\//https://}", "https://x.org"),
        ("${PATHLIKE/./-}", "a-b.c"),
        ("${PATHLIKE//./-}", "a-b-c"),
        ("${NOPE//./-}", ""),
    ],
)
def test_pattern_operators(word: str, expected: str) -> None:
    assert ShellLexer().process_word(word, ENV) == expected


def test_replace_all_follows_go_regexp() -> None:
    lexer = ShellLexer()
    # An empty match right after a match is not replaced (Python's re.sub would give "xx").
    assert lexer.process_word("${FOO//*/x}", ENV) == "x"
    # The replacement of // expands $0 (the match) and $$; a single / inserts it literally.
    assert lexer.process_word("${FOO//?/'[$0]'}", ENV) == "[f][o][o]"
    assert lexer.process_word("${FOO//o/'$$'}", ENV) == "f$$"
    assert lexer.process_word("${FOO//o/'$1${x}$'}", ENV) == "f$$"
    assert lexer.process_word("${FOO/o/'$0'}", ENV) == "f$0o"


def test_with_matches_reports_names_by_outcome() -> None:
    result, matched, unmatched = ShellLexer().process_word_with_matches("$FOO${NOPE:-$EMPTY}", ENV)
    assert (result, matched, unmatched) == ("foo", {"FOO", "EMPTY"}, {"NOPE"})
    assert ShellLexer().process_word_with_matches("plain", ENV) == ("plain", set(), set())


def test_env_from_list() -> None:
    assert env_from_list(["A=1", "B", "C=x=y", "A=2", "D="]) == {"A": "2", "B": "", "C": "x=y", "D": ""}


# --- error messages ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "message"),
    [
        ("${}", 'failed to process "${}": syntax error: bad substitution'),
        ("é\t${:}", 'failed to process "é\\t${:}": syntax error: bad substitution'),
        ("a${", """failed to process "a${": syntax error: missing '}'"""),
        ("${FOO:-abc", """failed to process "${FOO:-abc": syntax error: missing '}'"""),
        ("${FOO:-'abc}", """failed to process "${FOO:-'abc}": syntax error: missing '}'"""),
        ("${FOO", 'failed to process "${FOO": unsupported modifier (\ufffd) in substitution'),
        ("${FOO=x}", 'failed to process "${FOO=x}": unsupported modifier (=) in substitution'),
        ("${FOO:=x}", 'failed to process "${FOO:=x}": unsupported modifier (:=) in substitution'),
        ("${FOO:#x}", 'failed to process "${FOO:#x}": unsupported modifier (:#) in substitution'),
        ("${FOO/x", """failed to process "${FOO/x": syntax error: missing '/' in ${}"""),
        (
            "'abc",
            """failed to process "'abc": """
            "unexpected end of statement while looking for matching single-quote",
        ),
        (
            'x"abc',
            """failed to process "x\\"abc": """
            "unexpected end of statement while looking for matching double-quote",
        ),
        ("${NOPE?}", 'failed to process "${NOPE?}": NOPE: is not allowed to be unset'),
        ("${EMPTY:?}", 'failed to process "${EMPTY:?}": EMPTY: is not allowed to be empty'),
        ("${NOPE:?need $FOO}", 'failed to process "${NOPE:?need $FOO}": NOPE: need foo'),
        ("${NOPE:-${EMPTY:?}}", 'failed to process "${NOPE:-${EMPTY:?}}": EMPTY: is not allowed to be empty'),
        ("${NOPE:-${EMPTY:?}", """failed to process "${NOPE:-${EMPTY:?}": syntax error: missing '}'"""),
        (
            "${FOO#a\\b}",
            """failed to process "${FOO#a\\\\b}": """
            """invalid pattern (a\\b) in substitution: invalid escape '\\b'""",
        ),
    ],
)
def test_error_messages(word: str, message: str) -> None:
    with pytest.raises(ExpansionError) as failure:
        ShellLexer().process_word(word, ENV)
    assert str(failure.value) == message
    assert isinstance(failure.value, DockerfileError)
