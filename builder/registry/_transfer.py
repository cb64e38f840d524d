"""File-like wrappers that report progress while bytes move, and stop when told to.

Pull feeds the store a :class:`ResponseReader` (the store hashes and verifies what it
reads); push hands ``requests`` a :class:`ProgressFile` as an upload body. Both emit
:class:`~builder.events.TransferProgress` at most once per mebibyte and once at the end.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import BinaryIO

from builder.errors import RegistryError
from builder.events import EventSink, TransferProgress

_REPORT_EVERY = 1 << 20
_READ_CHUNK = 1 << 20


class ProgressCounter:
    """Counts bytes of one blob and emits throttled progress events to a sink."""

    def __init__(self, sink: EventSink, ref: str, digest: str, total_bytes: int, direction: str) -> None:
        self.sink = sink
        self.ref = ref
        self.digest = digest
        self.total_bytes = total_bytes
        self.direction = direction
        self.done_bytes = 0
        self._reported = -1

    def add(self, count: int) -> None:
        self.done_bytes += count
        if self.done_bytes - self._reported >= _REPORT_EVERY or self.done_bytes == self.total_bytes:
            self.report()

    def report_skipped(self) -> None:
        """The blob was already where it was going: report it whole, marked skipped."""
        self.done_bytes = self.total_bytes
        self.report(skipped=True)

    def report(self, *, skipped: bool = False) -> None:
        self._reported = self.done_bytes
        self.sink(
            TransferProgress(
                self.ref, self.digest, self.done_bytes, self.total_bytes, self.direction, skipped
            )
        )


class ResponseReader:
    """A ``read(n)`` view of a streamed HTTP body that refuses more bytes than announced.

    The size check stops a lying or broken registry from filling the disk before the digest
    check could refuse the blob; ``abort`` (set when a sibling download fails or the user
    interrupts) ends the copy at the next chunk.
    """

    def __init__(
        self, chunks: Iterator[bytes], counter: ProgressCounter, abort: threading.Event, what: str
    ) -> None:
        self._chunks = chunks
        self._counter = counter
        self._abort = abort
        self._what = what

    def read(self, size: int = -1) -> bytes:
        del size  # chunks come at the size they were asked for from requests
        if self._abort.is_set():
            raise RegistryError(f"download of {self._what} was stopped")
        chunk = next(self._chunks, b"")
        if chunk:
            if self._counter.done_bytes + len(chunk) > self._counter.total_bytes:
                raise RegistryError(
                    f"{self._what} is larger than the {self._counter.total_bytes} bytes its descriptor says"
                )
            self._counter.add(len(chunk))
        return chunk


class ProgressFile:
    """An upload body: ``read`` a stored blob (or a range of it) while counting progress."""

    def __init__(self, stream: BinaryIO, length: int, counter: ProgressCounter) -> None:
        self._stream = stream
        self._remaining = length
        self._length = length
        self._counter = counter

    def __len__(self) -> int:
        return self._length

    def read(self, size: int = -1) -> bytes:
        if self._remaining <= 0:
            return b""
        wanted = self._remaining if size is None or size < 0 else min(size, self._remaining)
        chunk = self._stream.read(min(wanted, _READ_CHUNK) if size and size > 0 else wanted)
        self._remaining -= len(chunk)
        self._counter.add(len(chunk))
        return chunk

    def close(self) -> None:
        self._stream.close()
