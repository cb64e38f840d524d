"""Choosing how progress is shown: ``--progress=auto|tty|plain|json`` and ``-q``.

``auto`` picks the live view when the stream is a terminal and ``CI`` is not set (a CI log
keeps every line), and plain lines otherwise, as ``docker build`` does.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import Literal, Protocol, TextIO, get_args

from builder.errors import UsageError
from builder.events import Event

ProgressMode = Literal["auto", "tty", "plain", "json", "quiet"]
PROGRESS_MODES: tuple[str, ...] = get_args(ProgressMode)


class Renderer(Protocol):
    """An event sink that must be closed when the build ends (to print what it held back)."""

    def __call__(self, event: Event) -> None: ...

    def close(self) -> None: ...


class QuietRenderer:
    """Shows nothing; the build command itself prints the image id."""

    def __call__(self, event: Event) -> None:
        """Drop the event."""

    def close(self) -> None:
        """Nothing to finish."""


class Tee:
    """Sends each event to several sinks in turn (a renderer and a metadata collector)."""

    def __init__(self, *sinks: Callable[[Event], None]) -> None:
        self._sinks = sinks

    def __call__(self, event: Event) -> None:
        for sink in self._sinks:
            sink(event)

    def close(self) -> None:
        for sink in self._sinks:
            close = getattr(sink, "close", None)
            if callable(close):
                close()


def is_interactive(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """A terminal a person watches: the stream is a tty, ``CI`` is unset, ``TERM`` is not dumb."""
    env = os.environ if environ is None else environ
    if env.get("CI") or env.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def make_renderer(
    mode: str,
    stream: TextIO,
    *,
    clock: Callable[[], float] = time.monotonic,
    sources: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Renderer:
    """The renderer for ``mode``, writing to ``stream``.

    ``sources`` maps Dockerfile names to their text, for the live view's failure report.
    Raises :class:`UsageError` for an unknown mode.
    """
    if mode not in PROGRESS_MODES:
        raise UsageError(f"unknown progress mode {mode!r}: expected one of {', '.join(PROGRESS_MODES)}")
    if mode == "auto":
        mode = "tty" if is_interactive(stream, environ) else "plain"
    # Each renderer loads only when chosen: every build pays its imports at start-up.
    if mode == "quiet":
        return QuietRenderer()
    if mode == "plain":
        from builder.progress.plain import PlainRenderer

        return PlainRenderer(stream)
    if mode == "json":
        from builder.progress.jsonlines import JsonLinesRenderer

        return JsonLinesRenderer(stream, clock)
    # rich loads only for the live view: plain, JSON and quiet builds never need it.
    from rich.console import Console

    from builder.progress.tty import TtyRenderer

    console = Console(file=stream, force_terminal=True, highlight=False, markup=False, emoji=False)
    return TtyRenderer(console, clock=clock, sources=sources)
