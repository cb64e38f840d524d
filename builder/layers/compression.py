"""Layer compression: gzip (the default, read by everything), zstd, or none.

Writers compress into a stream and leave it open; readers sniff the magic bytes, so a
layer is read right whatever its media type claims (Docker itself does the same). zstd runs
multithreaded (``threads=-1``: one worker per core); zstd's multithreaded output depends on
the parameters but not on the number of workers, so digests stay reproducible.
"""

from __future__ import annotations

import io
import queue
import threading
from typing import BinaryIO, Literal, Protocol

from builder.errors import LayerError
from builder.oci.digest import ByteSink

# zstandard, isal and the parallel gzip writer (which loads concurrent.futures, and with it
# logging) are imported where a compressor or decompressor is made: a build that keeps its
# layers uncompressed in the store loads none of them (15 ms of its start-up).

Compression = Literal["gzip", "zstd", "none"]
COMPRESSIONS: tuple[Compression, ...] = ("gzip", "zstd", "none")

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
ZSTD_LEVEL = 3


class CompressingWriter(Protocol):
    """What the layer writer writes tar bytes into; ``close`` flushes but keeps ``out`` open."""

    def write(self, chunk: bytes | bytearray | memoryview, /) -> int: ...

    def close(self) -> None: ...


class _PassThrough:
    def __init__(self, out: ByteSink) -> None:
        self._out = out

    def write(self, chunk: bytes | bytearray | memoryview, /) -> int:
        self._out.write(chunk)
        return len(chunk)

    def close(self) -> None:
        flush = getattr(self._out, "flush", None)
        if flush is not None:
            flush()


class _BackgroundWriter:
    """Runs another writer on its own thread, fed through a short queue.

    The layer writer's thread reads files and hashes the tar; this one compresses and
    hashes the blob, so the two halves of the pipeline use both cores instead of taking
    turns. Chunks are copied on the way in (the caller reuses its buffer). An error on the
    thread is raised by the next ``write`` or by ``close``.
    """

    _QUEUE_CHUNKS = 8

    def __init__(self, inner: CompressingWriter) -> None:
        self._inner = inner
        self._chunks: queue.Queue[bytes | None] = queue.Queue(self._QUEUE_CHUNKS)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="kiln-compress", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (chunk := self._chunks.get()) is not None:
            if self._error is None:
                try:
                    self._inner.write(chunk)
                except BaseException as err:  # re-raised on the caller's thread
                    self._error = err

    def _raise_pending(self) -> None:
        if self._error is not None:
            raise self._error

    def write(self, chunk: bytes | bytearray | memoryview, /) -> int:
        self._raise_pending()
        self._chunks.put(bytes(chunk))
        return len(chunk)

    def close(self) -> None:
        self._chunks.put(None)
        self._thread.join()
        self._raise_pending()
        self._inner.close()


class _ZstdWriter:
    def __init__(self, out: ByteSink) -> None:
        import zstandard

        compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL, threads=-1, write_checksum=True)
        self._stream = compressor.stream_writer(out, closefd=False, write_return_read=True)  # type: ignore[arg-type]

    def write(self, chunk: bytes | bytearray | memoryview, /) -> int:
        return int(self._stream.write(chunk))

    def close(self) -> None:
        self._stream.close()  # type: ignore[no-untyped-call]


def open_compressor(compression: Compression, out: ByteSink) -> CompressingWriter:
    """A writer compressing into ``out`` (left open by ``close``)."""
    if compression == "gzip":
        from builder.layers._parallel_gzip import ParallelGzipWriter

        return ParallelGzipWriter(out)
    if compression == "zstd":
        return _BackgroundWriter(_ZstdWriter(out))
    if compression == "none":
        return _PassThrough(out)
    raise LayerError(f"unknown layer compression {compression!r}: expected gzip, zstd or none")


def detect_compression(head: bytes) -> Compression:
    """Which compression the first bytes of a blob show; a bare tar is ``"none"``."""
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    return "none"


class _PrefixedReader(io.RawIOBase):
    """Gives back bytes already read from a stream (the sniffed magic), then the rest of it."""

    def __init__(self, prefix: bytes, stream: BinaryIO) -> None:
        self._prefix = prefix
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        if self._prefix:
            count = min(len(self._prefix), len(view))
            view[:count] = self._prefix[:count]
            self._prefix = self._prefix[count:]
            return count
        chunk = self._stream.read(len(view))
        view[: len(chunk)] = chunk
        return len(chunk)


def open_decompressed(stream: BinaryIO) -> tuple[BinaryIO, Compression]:
    """The uncompressed bytes of a layer blob, and the compression found.

    Reads sequentially only, so ``stream`` may be a pipe or an HTTP body.
    """
    head = stream.read(4)
    compression = detect_compression(head)
    raw = io.BufferedReader(_PrefixedReader(head, stream), buffer_size=1 << 20)
    if compression == "gzip":
        from isal import igzip

        gzip_reader = igzip.IGzipFile(fileobj=raw, mode="rb")  # type: ignore[no-untyped-call]
        return gzip_reader, compression  # type: ignore[return-value]
    if compression == "zstd":
        import zstandard

        reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True, closefd=False)
        return reader, compression
    return raw, compression
