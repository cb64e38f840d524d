"""The Dockerfile parser beyond the BuildKit vectors: error locations, encodings, escape token,
heredoc nodes, doc comments, Go quoting and ``kiln debug ast``."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from builder.cli.main import main
from builder.errors import DockerfileError
from builder.source import SourceSpan
from frontends.dockerfile.dump import dump, go_quote
from frontends.dockerfile.parser import parse


def _error(text: str | bytes) -> DockerfileError:
    with pytest.raises(DockerfileError) as raised:
        parse(text)
    return raised.value


# --- error spans ---------------------------------------------------------------------------------


def test_env_error_points_at_the_arguments() -> None:
    error = _error("FROM busybox\n\n  ENV PATH\n")
    assert error.message == "ENV must have two arguments"
    assert error.span == SourceSpan("Dockerfile", 3, 3, 7, "  ENV PATH")
    assert str(error) == "Dockerfile:3:7: ENV must have two arguments\n     3 |   ENV PATH"


def test_json_error_spans_the_continued_instruction() -> None:
    error = _error('FROM a\nCMD ["a", \\\n  1]\n')
    assert error.message == "when using JSON array syntax, arrays must be comprised of strings only"
    assert error.span == SourceSpan("Dockerfile", 2, 3, 5, 'CMD ["a", \\\n  1]')


def test_missing_equals_names_the_word() -> None:
    error = _error("LABEL a=1 b\n")
    assert error.message == 'Syntax error - can\'t find = in "b". Must be of the form: name=value'
    assert error.span == SourceSpan("Dockerfile", 1, 1, 7, "LABEL a=1 b")


def test_onbuild_child_error_column_points_into_the_line() -> None:
    error = _error("FROM a\nONBUILD ENV foo\n")
    assert error.span == SourceSpan("Dockerfile", 2, 2, 13, "ONBUILD ENV foo")


def test_unterminated_heredoc_spans_to_the_end_of_file() -> None:
    error = _error("FROM a\nRUN <<EOF\necho hi\n")
    assert error.message == "unterminated heredoc"
    assert error.span == SourceSpan("Dockerfile", 2, 3, 1, "RUN <<EOF\necho hi")


def test_directive_errors_name_their_line() -> None:
    duplicate = _error("# escape=`\n# ESCAPE=\\\nFROM a\n")
    assert duplicate.message == "only one escape parser directive can be used"
    assert duplicate.span == SourceSpan("Dockerfile", 2, 2, 1, "# ESCAPE=\\")
    invalid = _error("#escape=x\nFROM a\n")
    assert invalid.message == "invalid escape token 'x' does not match ` or \\"
    assert invalid.span == SourceSpan("Dockerfile", 1, 1, 1, "#escape=x")


def test_line_too_long_names_the_line() -> None:
    error = _error("FROM a\nRUN " + "x" * 65532 + "\n")
    assert error.message == "dockerfile line greater than max allowed size of 65535"
    assert error.span is not None
    assert (error.span.start_line, error.span.end_line) == (2, 2)


def test_longest_allowed_line_parses() -> None:
    parsed = parse("RUN " + "x" * 65531 + "\n")
    assert parsed.nodes[0].args == ("x" * 65531,)


def test_no_instructions_error_uses_the_file_name() -> None:
    with pytest.raises(DockerfileError) as raised:
        parse("# only a comment\n", file="app/Dockerfile")
    assert raised.value.message == "file with no instructions"
    assert raised.value.span == SourceSpan("app/Dockerfile", 1, 1)


# --- encodings and line endings ------------------------------------------------------------------


def test_bom_is_dropped_before_directives() -> None:
    parsed = parse(b"\xef\xbb\xbf# escape=`\nFROM a\nRUN echo `\n  hi\n")
    assert parsed.directives.escape == "`"
    assert dump(parsed) == '(from "a")\n(run "echo   hi")'


def test_crlf_line_endings() -> None:
    parsed = parse(b"FROM a\r\nRUN echo \\\r\n  hi\r\nCOPY <<EOF /x\r\nbody\r\nEOF\r\n")
    assert dump(parsed) == '(from "a")\n(run "echo   hi")\n(copy "<<EOF" "/x")'
    assert parsed.nodes[1].span == SourceSpan("Dockerfile", 2, 3, 1, "RUN echo \\\n  hi")
    assert parsed.nodes[2].heredocs[0].content == "body\r\n"


def test_invalid_utf8_survives_to_the_dump() -> None:
    parsed = parse(b"FROM a\nRUN echo \xff\xfe \xe2\x99\xa5\n")
    assert parsed.nodes[1].args[0].encode("utf-8", "surrogateescape") == b"echo \xff\xfe \xe2\x99\xa5"
    assert dump(parsed).splitlines()[1] == '(run "echo \\xff\\xfe ♥")'


def test_backtick_escape_leaves_backslashes_alone() -> None:
    parsed = parse("# escape=`\nFROM a\nCOPY c:\\src\\ `\n  c:\\dest\\\nENV A=x` y B=c:\\d\n")
    assert parsed.nodes[1].args == ("c:\\src\\", "c:\\dest\\")
    assert parsed.nodes[1].span.end_line == 4
    assert parsed.nodes[2].args == ("A", "x` y", "=", "B", "c:\\d", "=")


# --- nodes ---------------------------------------------------------------------------------------


def test_flags_stop_at_double_dash_and_drop_quotes() -> None:
    node = parse('COPY --from="a b" --chown=1 -- --x /dst\n').nodes[0]
    assert node.flags == ("--from=a b", "--chown=1")
    assert node.args == ("--x", "/dst")
    assert node.text == "--x /dst"


def test_unknown_keyword_keeps_one_empty_argument() -> None:
    node = parse("FOO bar baz\n").nodes[0]
    assert (node.keyword, node.original_keyword, node.args, node.text) == ("foo", "FOO", ("",), "bar baz")


def test_onbuild_wraps_a_heredoc_run() -> None:
    parsed = parse("FROM a\nONBUILD RUN <<-EOF sh\n\techo hi\n\tEOF\nUSER me\n")
    onbuild = parsed.nodes[1]
    assert onbuild.child is not None
    assert (onbuild.child.keyword, onbuild.child.args) == ("run", ("<<-EOF sh",))
    assert [(doc.name, doc.content, doc.chomp) for doc in onbuild.heredocs] == [("EOF", "\techo hi\n", True)]
    assert (onbuild.span.start_line, onbuild.span.end_line) == (2, 4)
    assert parsed.nodes[2].keyword == "user"


def test_json_form_is_recorded() -> None:
    parsed = parse('CMD ["a", "b"]\nCMD a b\nCMD [NaN]\n')
    assert [(node.args, node.json_form) for node in parsed.nodes] == [
        (("a", "b"), True),
        (("a b",), False),
        (("[NaN]",), False),
    ]


def test_comments_directly_above_are_kept() -> None:
    parsed = parse("# syntax=x\n\n# base image\n#  pinned\nFROM a\n# stray\n\nRUN b\n")
    assert parsed.nodes[0].comments == ("base image", "pinned")
    assert parsed.nodes[1].comments == ()
    assert parsed.directives.syntax == "x"


def test_empty_continuation_warning_names_the_line() -> None:
    parsed = parse("FROM a\nRUN a \\\n\n  b\n")
    assert parsed.warnings == (
        "Dockerfile:4: Empty continuation line found in: RUN a   b"
        " (Empty continuation lines will become errors in a future release)",
    )


# --- Go quoting ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "quoted"),
    [
        ('say "hi"\\', '"say \\"hi\\"\\\\"'),
        ("\a\b\f\n\r\t\v", '"\\a\\b\\f\\n\\r\\t\\v"'),
        ("\x00\x1b\x7f", '"\\x00\\x1b\\x7f"'),
        ("\x85\u00a0\u2028", '"\\u0085\\u00a0\\u2028"'),
        ("♥ é 日本", '"♥ é 日本"'),
        ("\U000e0001", '"\\U000e0001"'),
        (b"\xff\xc3".decode("utf-8", "surrogateescape"), '"\\xff\\xc3"'),
    ],
)
def test_go_quote(text: str, quoted: str) -> None:
    assert go_quote(text) == quoted


# --- kiln debug ast ------------------------------------------------------------------------------


def test_debug_ast_prints_the_dump(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM busybox AS base\nCOPY --chown=1 a b\n")
    assert main(["debug", "ast", "-f", str(dockerfile)]) == 0
    assert capsys.readouterr().out == '(from "busybox" "AS" "base")\n(copy ["--chown=1"] "a" "b")\n'


def test_debug_ast_reads_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"FROM a\nENV x=1\n")))
    assert main(["debug", "ast", "-f", "-"]) == 0
    assert capsys.readouterr().out == '(from "a")\n(env "x" "1" "=")\n'


def test_debug_ast_defaults_to_dockerfile_in_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "Dockerfile").write_text("FROM a\n")
    monkeypatch.chdir(tmp_path)
    assert main(["debug", "ast"]) == 0
    assert capsys.readouterr().out == '(from "a")\n'


def test_debug_ast_reports_parse_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM a\nENV PATH\n")
    assert main(["debug", "ast", "-f", str(dockerfile)]) == 1
    assert capsys.readouterr().err == (
        f"error: {dockerfile}:2:5: ENV must have two arguments\n     2 | ENV PATH\n"
    )


def test_debug_ast_missing_file_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["debug", "ast", "-f", str(tmp_path / "nope")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_debug_without_subcommand_lists_them(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["debug"]) == 2
    assert "ast" in capsys.readouterr().err


def test_original_is_the_joined_line() -> None:
    parsed = parse("  RUN --network=none echo \\\n  hi  \nONBUILD RUN a\n")
    assert parsed.nodes[0].original == "RUN --network=none echo   hi  "
    assert parsed.nodes[0].text == "echo   hi"
    assert parsed.nodes[1].child is not None
    assert parsed.nodes[1].child.original == "RUN a"
