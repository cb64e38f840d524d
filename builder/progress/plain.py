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
)


def _human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1000
    return f"{size}B"


class PlainRenderer:
    """Writes ``#N [stage i/n] INSTR``, ``#N CACHED``, ``#N DONE 0.3s`` and ``#N <output>``.

    Partial output lines are buffered per step so lines of two concurrent steps never mix.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._partial: dict[int, bytes] = {}

    def __call__(self, event: Event) -> None:
        with self._lock:
            for line in self._lines(event):
                self._stream.write(line + "\n")
            self._stream.flush()

    def _lines(self, event: Event) -> list[str]:
        if isinstance(event, StepStarted):
            return [f"#{event.step} {event.name}"]
        if isinstance(event, StepCached):
            return [f"#{event.step} CACHED"]
        if isinstance(event, StepLog):
            buffered = self._partial.pop(event.step, b"") + event.data
            *complete, rest = buffered.split(b"\n")
            if rest:
                self._partial[event.step] = rest
            return [f"#{event.step} {_printable(line)}" for line in complete]
        if isinstance(event, StepDone):
            lines = self._flush(event.step)
            detail = f" {_human_size(event.layer_size)}" if event.layer_digest else ""
            return [*lines, f"#{event.step} DONE {event.seconds:.1f}s{detail}"]
        if isinstance(event, StepFailed):
            lines = self._flush(event.step)
            return [*lines, f"#{event.step} ERROR {event.message}"]
        if isinstance(event, BuildFinished):
            names = ", ".join(event.names)
            where = f" as {names}" if names else ""
            return [
                f"built {event.image_id}{where} in {event.seconds:.1f}s "
                f"({event.cached_steps}/{event.total_steps} steps cached)"
            ]
        if isinstance(event, Notice):
            return [f"warning: {event.message}"]
        return []

    def _flush(self, step: int) -> list[str]:
        rest = self._partial.pop(step, b"")
        return [f"#{step} {_printable(rest)}"] if rest else []


def _printable(raw: bytes) -> str:
    """Decode output and drop control characters (keeping tabs) so CI logs stay clean."""
    text = raw.decode("utf-8", errors="replace").rstrip("\r")
    return "".join(ch for ch in text if ch == "\t" or (ch >= " " and ch != "\x7f"))
