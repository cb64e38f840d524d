"""``--progress=tty``: a live view of the build on a terminal, then a summary that stays.

Events only update a :class:`BuildModel` under a lock, which costs microseconds; drawing
happens on rich's refresh thread a few times a second. So a step that prints 100,000 lines
neither slows the build nor floods the terminal: the view shows the last few lines of each
running step, and the summary after the build shows where every layer came from.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping

from rich.console import Console, RenderableType
from rich.live import Live
from rich.text import Text

from builder.events import Event, Notice
from builder.progress._text import clean_text
from builder.progress.live_view import render_live
from builder.progress.model import BuildModel
from builder.progress.summary import failure_report, summary_table, totals_line

#: Redraws per second of the live view; higher costs CPU a build could use.
REFRESH_PER_SECOND = 8


class TtyRenderer:
    """Draws the live view on ``console`` from the first event until :meth:`close`.

    ``sources`` maps a Dockerfile's name (a span's ``file``) to its text, so a failure can
    show the lines around the failing instruction. ``auto_refresh=False`` leaves redrawing
    to :meth:`refresh` (tests drive it with a fake clock).
    """

    def __init__(
        self,
        console: Console,
        *,
        clock: Callable[[], float] = time.monotonic,
        sources: Mapping[str, str] | None = None,
        auto_refresh: bool = True,
    ) -> None:
        self.console = console
        self._sources = dict(sources or {})
        self._model = BuildModel(clock)
        self._lock = threading.Lock()
        self._live = Live(
            console=console,
            auto_refresh=auto_refresh,
            refresh_per_second=REFRESH_PER_SECOND,
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
            get_renderable=self.view,
        )
        self._started = False
        self._closed = False

    def __call__(self, event: Event) -> None:
        with self._lock:
            if self._closed:
                return
            self._model.apply(event)
            if not self._started:
                # start() only spawns the refresh thread, which waits for this lock to draw
                self._started = True
                self._live.start()
        if isinstance(event, Notice):
            # printed above the live view; outside the lock, as printing redraws the view
            self._live.console.print(Text(f"warning: {clean_text(event.message)}", style="yellow"))

    def view(self) -> RenderableType:
        """The live view as it is now (rich calls this on every refresh)."""
        with self._lock:
            return render_live(self._model, self.console.height)

    def refresh(self) -> None:
        """Redraw now (only needed when built with ``auto_refresh=False``)."""
        if self._started and not self._closed:
            self._live.refresh()

    def close(self) -> None:
        """Stop the live view and print the summary, and the failure report if a step failed.

        Call once the build ended, successfully or not (a ``finally`` block); later events are
        ignored.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._model.cancel_unfinished()
        if self._started:
            self._live.stop()
        self.print_summary()

    def print_summary(self) -> None:
        """The summary table, the totals line and every failure report."""
        with self._lock:
            if not self._model.steps:
                return
            self.console.print(summary_table(self._model))
            for step in self._model.failed_steps:
                self.console.print(failure_report(step, self._sources))
            self.console.print(totals_line(self._model))
