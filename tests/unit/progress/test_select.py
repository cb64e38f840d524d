"""make_renderer: the live view on a person's terminal, plain lines in CI or a pipe."""

from __future__ import annotations

import io

import pytest

from builder.errors import UsageError
from builder.events import Notice
from builder.progress.jsonlines import JsonLinesRenderer
from builder.progress.metadata import MetadataCollector
from builder.progress.plain import PlainRenderer
from builder.progress.select import QuietRenderer, Tee, make_renderer
from builder.progress.tty import TtyRenderer


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_auto_picks_tty_on_a_terminal_outside_ci() -> None:
    assert isinstance(make_renderer("auto", FakeTerminal(), environ={"TERM": "xterm"}), TtyRenderer)


@pytest.mark.parametrize("environ", [{"CI": "true"}, {"TERM": "dumb"}])
def test_auto_picks_plain_in_ci_or_on_a_dumb_terminal(environ: dict[str, str]) -> None:
    assert isinstance(make_renderer("auto", FakeTerminal(), environ=environ), PlainRenderer)


def test_auto_picks_plain_for_a_pipe() -> None:
    assert isinstance(make_renderer("auto", io.StringIO(), environ={}), PlainRenderer)


def test_explicit_modes() -> None:
    stream = io.StringIO()
    assert isinstance(make_renderer("tty", stream, environ={"CI": "1"}), TtyRenderer)
    assert isinstance(make_renderer("plain", FakeTerminal()), PlainRenderer)
    assert isinstance(make_renderer("json", stream), JsonLinesRenderer)
    assert isinstance(make_renderer("quiet", stream), QuietRenderer)


def test_quiet_prints_nothing() -> None:
    stream = io.StringIO()
    renderer = make_renderer("quiet", stream)
    renderer(Notice("unused"))
    renderer.close()
    assert stream.getvalue() == ""


def test_unknown_mode_is_a_usage_error() -> None:
    with pytest.raises(UsageError) as raised:
        make_renderer("fancy", io.StringIO())
    assert str(raised.value) == "unknown progress mode 'fancy': expected one of auto, tty, plain, json, quiet"


def test_tee_feeds_every_sink_and_closes_those_that_close() -> None:
    stream = io.StringIO()
    collector = MetadataCollector()
    seen: list[object] = []
    tee = Tee(PlainRenderer(stream), collector, seen.append)
    tee(Notice("unused"))
    tee.close()
    assert stream.getvalue() == "warning: unused\n"
    assert collector.report()["warnings"] == ["unused"]
    assert seen == [Notice("unused")]
