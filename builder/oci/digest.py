"""Content digests: the ``sha256:<64 hex>`` names every blob, config and layer goes by.

Only sha256 is accepted: it is what every registry and runtime kiln talks to writes, and
the store lays blobs out under ``blobs/sha256/``. A :class:`Digest` is a ``str`` so it drops
into JSON and SQL as is, but it can only be made from a well-formed value.
"""

from __future__ import annotations

import hashlib
import re
from typing import Protocol

from builder.errors import ImageFormatError

ALGORITHM = "sha256"
_DIGEST_PATTERN = re.compile(r"sha256:[0-9a-f]{64}")


class Digest(str):
    """A validated ``sha256:<64 lowercase hex>`` string.

    Upper-case hex is refused rather than folded: the OCI spec makes the encoded part
    lowercase, and two spellings of one digest would give two store keys.
    """

    __slots__ = ()

    def __new__(cls, value: str) -> Digest:
        if not isinstance(value, str) or _DIGEST_PATTERN.fullmatch(value) is None:
            raise ImageFormatError(f"invalid digest {value!r}: expected sha256:<64 lowercase hex digits>")
        return super().__new__(cls, value)

    @property
    def algorithm(self) -> str:
        return ALGORITHM

    @property
    def hex(self) -> str:
        """The encoded part, used as a file name under ``blobs/sha256/``."""
        return self[len(ALGORITHM) + 1 :]

    @classmethod
    def from_hex(cls, hex_digest: str) -> Digest:
        return cls(f"{ALGORITHM}:{hex_digest}")


def is_digest(value: object) -> bool:
    """Whether ``value`` is a well-formed sha256 digest string."""
    return isinstance(value, str) and _DIGEST_PATTERN.fullmatch(value) is not None


def sha256_digest(content: bytes | bytearray | memoryview) -> Digest:
    """The digest of bytes held in memory (configs, manifests)."""
    return Digest.from_hex(hashlib.sha256(content).hexdigest())


class ByteSink(Protocol):
    """Anything bytes can be written to: a file, a socket wrapper, a compressor."""

    def write(self, chunk: bytes | bytearray | memoryview, /) -> object: ...


class ByteSource(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class HashingReader:
    """Passes reads of ``stream`` through while hashing them: a reader (``tarfile``, an
    archive writer) consumes the bytes once and their digest comes with them."""

    def __init__(self, stream: ByteSource) -> None:
        self._stream = stream
        self._hash = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        chunk = self._stream.read(size)
        self._hash.update(chunk)
        return chunk

    def digest(self) -> Digest:
        """The digest of everything read so far."""
        return Digest.from_hex(self._hash.hexdigest())


class HashingWriter:
    """Passes bytes through to ``out`` while hashing and counting them.

    The store and the layer writer use it so that a blob's digest and size come from the
    very bytes written, in the same pass: hash while writing, never read back.
    ``out`` may be ``None`` to only hash and count.
    """

    def __init__(self, out: ByteSink | None = None) -> None:
        self._out = out
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes | bytearray | memoryview) -> int:
        self._hash.update(chunk)
        length = len(chunk) if not isinstance(chunk, memoryview) else chunk.nbytes
        self.size += length
        if self._out is not None:
            self._out.write(chunk)
        return length

    def flush(self) -> None:
        flush = getattr(self._out, "flush", None)
        if flush is not None:
            flush()

    def digest(self) -> Digest:
        """The digest of everything written so far."""
        return Digest.from_hex(self._hash.hexdigest())
