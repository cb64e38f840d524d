"""Step output as lines of clean text, shared by every renderer.

Steps write bytes in arbitrary chunks; a renderer wants whole lines without terminal control
sequences (a colour code or a carriage-return progress bar would corrupt a CI log or a live
view). Partial lines are kept per step until their newline arrives or the step ends.
"""

from __future__ import annotations

import re

#: CSI sequences (colours, cursor moves), OSC sequences (titles, links) and other two-byte escapes.
_ESCAPE_SEQUENCE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")

#: C0 controls but the tab, DEL, and C1 controls: deleted by ``str.translate``.
_DROPPED_CONTROLS = dict.fromkeys([*range(0x09), *range(0x0A, 0x20), 0x7F, *range(0x80, 0xA0)])


def printable(raw: bytes) -> str:
    """Decode one line of output and keep only what a log can show.

    A carriage return rewrites the line on a terminal, so only the text after the last one is
    kept (what a person would have seen); escape sequences and other control characters are
    dropped, tabs are kept.
    """
    text = raw.decode("utf-8", errors="replace")
    if text.isprintable():
        return text
    text = text.rstrip("\r").rsplit("\r", 1)[-1]
    text = _ESCAPE_SEQUENCE.sub("", text)
    return text.translate(_DROPPED_CONTROLS)


def clean_text(text: str) -> str:
    """A step name or a message without escape sequences or control characters; a newline
    becomes a space, so one event stays one line."""
    if text.isprintable():
        return text
    text = _ESCAPE_SEQUENCE.sub("", text.replace("\r\n", " ").replace("\n", " "))
    return text.translate(_DROPPED_CONTROLS)


class LineSplitter:
    """Turns per-step chunks into complete lines; not thread-safe (callers hold their lock)."""

    def __init__(self) -> None:
        self._partial: dict[int, bytes] = {}

    def feed(self, step: int, chunk: bytes) -> list[str]:
        """The lines ``chunk`` completes for ``step``; an unfinished tail waits for more."""
        return [printable(line) for line in self.feed_raw(step, chunk)]

    def feed_raw(self, step: int, chunk: bytes) -> list[bytes]:
        """As :meth:`feed`, but the lines undecoded (a caller keeping only a few decodes those)."""
        buffered = self._partial.pop(step, b"") + chunk if step in self._partial else chunk
        *complete, rest = buffered.split(b"\n")
        if rest:
            self._partial[step] = rest
        return complete

    def finish(self, step: int) -> list[str]:
        """The step ended: its unfinished last line, if any, as a line of its own."""
        rest = self._partial.pop(step, b"")
        return [printable(rest)] if rest else []
