"""Plain progress: one line per event, numbered per step like BuildKit's ``--progress=plain``.

No control characters and no clipping, so a CI log shows every line a step printed.
"""

from __future__ import annotations

import threading
from typing import TextIO

from builder.events import (
    BuildFinished,
    Event,
    Notice,
    StepCached,
    StepDone,
    StepFailed,
    StepLog,
    StepStarted,
    TransferProgress,
)
from builder.progress._text import LineSplitter, clean_text
from builder.progress.units import human_size, short_digest


class PlainRenderer:
    """Writes ``#N [stage i/n] INSTR``, ``#N CACHED``, ``#N DONE 0.3s`` and ``#N <output>``.

    As in BuildKit, a cached step ends with its ``CACHED`` line (no ``DONE`` follows).
    Partial output lines are buffered per step so lines of two concurrent steps never mix.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._lines = LineSplitter()
        self._cached: set[int] = set()

    def __call__(self, event: Event) -> None:
        with self._lock:
            lines = self._render(event)
            if lines:
                self._stream.write("".join(line + "\n" for line in lines))
                self._stream.flush()

    def close(self) -> None:
        """Nothing is held back: every line was written when its event came."""
        with self._lock:
            self._stream.flush()

    def _render(self, event: Event) -> list[str]:
        if isinstance(event, StepStarted):
            return [f"#{event.step} {clean_text(event.name)}"]
        if isinstance(event, StepCached):
            self._cached.add(event.step)
            return [f"#{event.step} CACHED"]
        if isinstance(event, StepLog):
            return [f"#{event.step} {line}" for line in self._lines.feed(event.step, event.data)]
        if isinstance(event, StepDone):
            rest = [f"#{event.step} {line}" for line in self._lines.finish(event.step)]
            if event.step in self._cached:
                return rest
            detail = f" {human_size(event.layer_size)}" if event.layer_digest else ""
            return [*rest, f"#{event.step} DONE {event.seconds:.1f}s{detail}"]
        if isinstance(event, StepFailed):
            rest = [f"#{event.step} {line}" for line in self._lines.finish(event.step)]
            return [*rest, f"#{event.step} ERROR {clean_text(event.message)}"]
        if isinstance(event, BuildFinished):
            names = clean_text(", ".join(event.names))
            where = f" as {names}" if names else ""
            return [
                f"built {event.image_id}{where} in {event.seconds:.1f}s "
                f"({event.cached_steps}/{event.total_steps} steps cached)"
            ]
        if isinstance(event, Notice):
            return [f"warning: {clean_text(event.message)}"]
        if isinstance(event, TransferProgress):
            return _transfer_lines(event)
        return []


def _transfer_lines(event: TransferProgress) -> list[str]:
    """Only a blob's end is worth a line in a log: pulls and pushes report every mebibyte."""
    what = clean_text(f"{event.direction} {event.ref} {short_digest(event.digest)}")
    if event.skipped:
        return [f"{what} already present"]
    if event.done_bytes >= event.total_bytes:
        return [f"{what} {human_size(event.total_bytes)} done"]
    return []
