"""Start putting a large blob on disk while it is still being written.

A blob is fsynced before it is renamed into place (a crash must never leave a named blob
with missing content). For a layer of hundreds of megabytes that final fsync waited for
all of it at once: ~0.5 s for 300 MB on this kind of disk, after ~0.5 s of writing during
which the disk sat idle. Once a blob passes a few tens of megabytes, a background thread
asks the kernel to write out what has arrived so far, every few tens of milliseconds, so
the disk works while the layer writer hashes and reads; the final fsync then has little
left (300 MB: 1.0–1.2 s → 0.7 s measured here). Small blobs never start the thread.
"""

from __future__ import annotations

import os
import threading
from typing import BinaryIO

#: A blob starts being written out once this many bytes have been written.
THRESHOLD = 32 << 20
#: How often the background thread flushes what has arrived.
INTERVAL = 0.05


class EarlyWriteback:
    """A write-only file object over ``raw`` that flushes it to disk in the background
    once it is large; call :meth:`finish` before ``raw`` is closed."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.written = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def write(self, chunk: bytes | bytearray | memoryview) -> int:
        count = self.raw.write(chunk)
        self.written += count
        if self._thread is None and self.written >= THRESHOLD:
            self._thread = threading.Thread(target=self._write_out, name="blob-writeback", daemon=True)
            self._thread.start()
        return count

    def flush(self) -> None:
        self.raw.flush()

    def fileno(self) -> int:
        return self.raw.fileno()

    def finish(self) -> None:
        """Stop the background flushing (the caller's own fsync makes the blob durable)."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None

    def _write_out(self) -> None:
        descriptor = self.raw.fileno()
        while not self._stop.wait(INTERVAL):
            try:
                os.fdatasync(descriptor)
            except OSError:
                return  # the final fsync reports any real trouble
