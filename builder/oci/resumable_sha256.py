"""A SHA-256 whose running state can be saved and resumed: splicing a layer without rehashing it.

A layer's diff id is the sha256 of its whole tar. When a layer is rebuilt from the previous
one with only a few files changed, the bytes before the first change are the same, and so is
the hash state after them; but ``hashlib`` cannot save or restore a state, so the whole prefix
(hundreds of MB) would be hashed again. This module hashes with OpenSSL's low-level
``SHA256_Init``/``SHA256_Update``/``SHA256_Final`` through ``ctypes``, on the very libcrypto
that Python's ``_hashlib`` uses, and exposes the ``SHA256_CTX`` it works on: a writer saves
:meth:`ResumableSha256.state` every few MB, and a later splice resumes from the last saved
state before the first changed byte with :meth:`ResumableSha256.from_state`.

The saved state is portable and checked, not a raw copy of the C struct: a tag, a format
version, the byte count, the eight chaining words (big-endian, as the SHA-256 spec writes
them), the bytes of the unfinished block, and a CRC. A state written on one machine resumes
on any other, and a truncated or corrupted one is refused with :class:`ValueError` instead
of silently giving a wrong digest.

``ctypes`` is loaded on first use, never on import: most kiln commands never splice, and
start-up time matters. Where the library cannot be loaded (no libcrypto, a layout that fails
the self-test), :func:`resumable_available` says so and :class:`ResumableSha256` raises
:class:`ResumableHashUnavailableError`; callers then hash from the start with ``hashlib``.
"""

from __future__ import annotations

import functools
import struct
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    import ctypes
    from collections.abc import Callable, Iterator

__all__ = ["ResumableHashUnavailableError", "ResumableSha256", "resumable_available"]

_BLOCK_SIZE: Final = 64
_DIGEST_SIZE: Final = 32
# openssl/sha.h: unsigned int h[8]; unsigned int Nl, Nh; unsigned int data[16]; unsigned int num, md_len;
_CTX_FORMAT: Final = struct.Struct("=8I2I64s2I")
_CTX_SIZE: Final = 112

_STATE_TAG: Final = b"kiln-sha256-state"
_STATE_VERSION: Final = 1
# tag, version, bytes hashed so far, chaining value; then the unfinished block, then a CRC32.
_STATE_HEADER: Final = struct.Struct(f">{len(_STATE_TAG)}sBQ32s")
_STATE_CRC: Final = struct.Struct(">I")
# SHA-256 counts bits in 64 bits: longer messages cannot be hashed at all.
_MAX_BYTE_COUNT: Final = (1 << 61) - 1

# Chunks smaller than this are gathered, and hashed this many bytes at a time: one ctypes
# call costs about as much as hashing a kilobyte.
_SMALL_CHUNK: Final = 32 * 1024
_PENDING_CAPACITY: Final = 128 * 1024

# Python buffer flag: a C-contiguous buffer of bytes, what hashlib asks for too.
_PYBUF_SIMPLE: Final = 0

Bytes = bytes | bytearray | memoryview


class ResumableHashUnavailableError(RuntimeError):
    """OpenSSL's SHA-256 could not be loaded: hash with ``hashlib`` from the start instead."""


class _Library:
    """The loaded libcrypto functions and the ctypes pieces that drive them.

    Kept apart from :class:`ResumableSha256` so that the one-time work (finding the library,
    declaring argument types, the self-test) is done once per process, not per hash.
    """

    update: Callable[[int, bytes | int | None, int], int]

    def __init__(self, crypto: ctypes.CDLL) -> None:
        import ctypes

        self._addressof = ctypes.addressof
        self._byref = ctypes.byref
        self._memmove = ctypes.memmove
        self._char = ctypes.c_char
        self._context_type: type[ctypes.Array[ctypes.c_char]] = ctypes.c_char * _CTX_SIZE
        self._digest_type: type[ctypes.Array[ctypes.c_char]] = ctypes.c_char * _DIGEST_SIZE
        self._init = crypto.SHA256_Init
        self._init.argtypes = (ctypes.c_void_p,)
        self._init.restype = ctypes.c_int
        update = crypto.SHA256_Update
        update.argtypes = (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
        update.restype = ctypes.c_int
        self.update = update
        self._final = crypto.SHA256_Final
        self._final.argtypes = (ctypes.c_void_p, ctypes.c_void_p)
        self._final.restype = ctypes.c_int
        # A read-only memoryview (over bytes, say) has no zero-copy route through ctypes' own
        # from_buffer, which wants a writable buffer, and an array type per length would pile
        # up in ctypes' type cache; asking Python for the buffer's address works for every
        # bytes-like object, without a copy.
        self._get_buffer = ctypes.pythonapi.PyObject_GetBuffer
        self._get_buffer.argtypes = (ctypes.py_object, ctypes.c_void_p, ctypes.c_int)
        self._get_buffer.restype = ctypes.c_int
        self._release_buffer = ctypes.pythonapi.PyBuffer_Release
        self._release_buffer.argtypes = (ctypes.c_void_p,)
        self._release_buffer.restype = None

        class PyBuffer(ctypes.Structure):
            """Python's ``Py_buffer`` (unchanged since 3.3, in the limited API since 3.11)."""

            _fields_ = (
                ("buf", ctypes.c_void_p),
                ("obj", ctypes.c_void_p),
                ("len", ctypes.c_ssize_t),
                ("itemsize", ctypes.c_ssize_t),
                ("readonly", ctypes.c_int),
                ("ndim", ctypes.c_int),
                ("format", ctypes.c_char_p),
                ("shape", ctypes.c_void_p),
                ("strides", ctypes.c_void_p),
                ("suboffsets", ctypes.c_void_p),
                ("internal", ctypes.c_void_p),
            )

        self._py_buffer: type[ctypes.Structure] = PyBuffer

    def new_context(self) -> ctypes.Array[ctypes.c_char]:
        """A zeroed block of memory the size of ``SHA256_CTX``."""
        return self._context_type()

    def address(self, context: ctypes.Array[ctypes.c_char]) -> int:
        return self._addressof(context)

    def init(self, context: ctypes.Array[ctypes.c_char]) -> None:
        self._init(self._addressof(context))

    def update_buffer(self, address: int, data: Bytes) -> None:
        """Hash any bytes-like object in place. Raises ``TypeError`` for what is not one
        (``str``) and ``BufferError`` for a non-contiguous view, as ``hashlib`` does."""
        view = self._py_buffer()
        view_ref = self._byref(view)
        self._get_buffer(data, view_ref, _PYBUF_SIMPLE)
        try:
            self.update(address, view.buf, view.len)
        finally:
            self._release_buffer(view_ref)

    def final(self, context: ctypes.Array[ctypes.c_char]) -> bytes:
        """The digest of ``context``'s message; ``context`` itself is left as it was."""
        scratch = self._context_type.from_buffer_copy(context)
        out = self._digest_type()
        self._final(out, self._addressof(scratch))
        return out.raw

    def pin(self, buffer: bytearray) -> tuple[object, int]:
        """``buffer``'s address, and the export that keeps it there (a bytearray with an
        export cannot be resized) for as long as it is held."""
        export = self._char.from_buffer(buffer)
        return export, self._addressof(export)

    def read(self, context: ctypes.Array[ctypes.c_char]) -> bytes:
        raw: bytes = context.raw
        return raw

    def write(self, context: ctypes.Array[ctypes.c_char], raw: bytes) -> None:
        self._memmove(context, raw, _CTX_SIZE)


def _library_candidates() -> Iterator[str]:
    """Where libcrypto may be, the one ``_hashlib`` is linked against first.

    Importing ``_hashlib`` maps its libcrypto; its path in ``/proc/self/maps`` names exactly
    that file, whatever its version suffix. The sonames after it cover systems without
    ``/proc``; ``find_library`` comes last and only if needed, as it may run ``ldconfig``.
    """
    try:
        import _hashlib  # noqa: F401  (maps the libcrypto hashlib uses)

        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            mapped = {line.rpartition(" ")[2].strip() for line in maps}
        yield from sorted(path for path in mapped if path.rpartition("/")[2].startswith("libcrypto.so"))
    except (ImportError, OSError):
        pass
    yield from ("libcrypto.so.3", "libcrypto.so.1.1")
    import ctypes.util

    found = ctypes.util.find_library("crypto")
    if found is not None:
        yield found


def _self_test(library: _Library) -> str | None:
    """Why ``library`` cannot be trusted, or ``None``: the struct layout is only declared,
    so check it on a known message before any hash depends on it."""
    import hashlib

    message = bytes(range(200))
    context = library.new_context()
    library.init(context)
    library.update(library.address(context), message[:100], 100)
    *_, nl, nh, block, num, md_len = _CTX_FORMAT.unpack(library.read(context))
    if (nl, nh, num, md_len, block[:36]) != (800, 0, 36, _DIGEST_SIZE, message[64:100]):
        return "SHA256_CTX does not have the layout of openssl/sha.h"
    resumed = ResumableSha256.from_state(_state_from_raw(library.read(context)), _library=library)
    resumed.update(message[100:])
    if resumed.digest() != hashlib.sha256(message).digest():
        return "a resumed SHA-256 differs from hashlib's"
    return None


@functools.cache
def _shared_library() -> _Library | str:
    """The loaded library, or the reason it could not be loaded (found once per process)."""
    try:
        import ctypes
    except ImportError as error:
        return f"ctypes is unavailable: {error}"
    reasons: list[str] = []
    for candidate in _library_candidates():
        try:
            library = _Library(ctypes.CDLL(candidate))
        except (OSError, AttributeError) as error:
            reasons.append(f"{candidate}: {error}")
            continue
        failure = _self_test(library)
        if failure is None:
            return library
        reasons.append(f"{candidate}: {failure}")
    return "no usable libcrypto (" + "; ".join(reasons or ["none found"]) + ")"


def _loaded_library() -> _Library:
    library = _shared_library()
    if isinstance(library, str):
        raise ResumableHashUnavailableError(f"resumable SHA-256 is unavailable: {library}")
    return library


def resumable_available() -> bool:
    """Whether :class:`ResumableSha256` works here (loads the library on first call)."""
    return not isinstance(_shared_library(), str)


def _byte_count(raw: bytes) -> int:
    """How many bytes a ``SHA256_CTX`` has hashed: it counts bits, in two 32-bit halves."""
    low_bits: int
    high_bits: int
    low_bits, high_bits = struct.unpack_from("=2I", raw, 32)
    return ((high_bits << 32) | low_bits) >> 3


def _state_from_raw(raw: bytes) -> bytes:
    """The portable, checked state of an OpenSSL ``SHA256_CTX``."""
    import zlib

    fields = _CTX_FORMAT.unpack(raw)
    chaining = struct.pack(">8I", *fields[:8])
    block: bytes = fields[10][: fields[11]]
    body = _STATE_HEADER.pack(_STATE_TAG, _STATE_VERSION, _byte_count(raw), chaining) + block
    return body + _STATE_CRC.pack(zlib.crc32(body))


def _raw_from_state(state: Bytes) -> bytes:
    """The ``SHA256_CTX`` a saved state describes; ``ValueError`` for anything else."""
    import zlib

    if not isinstance(state, bytes | bytearray | memoryview):
        raise TypeError(f"a SHA-256 state is bytes, not {type(state).__name__}")
    state = bytes(state)
    minimum = _STATE_HEADER.size + _STATE_CRC.size
    if len(state) < minimum or not state.startswith(_STATE_TAG):
        raise ValueError("not a saved SHA-256 state (missing tag or too short)")
    _tag, version, byte_count, chaining = _STATE_HEADER.unpack_from(state)
    if version != _STATE_VERSION:
        raise ValueError(f"saved SHA-256 state has format version {version}, expected {_STATE_VERSION}")
    block_length = byte_count % _BLOCK_SIZE
    if len(state) != minimum + block_length:
        raise ValueError(
            f"saved SHA-256 state is {len(state)} bytes, expected {minimum + block_length} "
            f"for {byte_count} bytes hashed (truncated or padded)"
        )
    body, (crc,) = state[: -_STATE_CRC.size], _STATE_CRC.unpack_from(state, len(state) - _STATE_CRC.size)
    if zlib.crc32(body) != crc:
        raise ValueError("saved SHA-256 state is corrupt (checksum mismatch)")
    if byte_count > _MAX_BYTE_COUNT:
        raise ValueError(f"saved SHA-256 state counts {byte_count} bytes, more than SHA-256 allows")
    bit_count = byte_count << 3
    block = body[_STATE_HEADER.size :]
    return _CTX_FORMAT.pack(
        *struct.unpack(">8I", chaining),
        bit_count & 0xFFFFFFFF,
        bit_count >> 32,
        block.ljust(_BLOCK_SIZE, b"\0"),
        block_length,
        _DIGEST_SIZE,
    )


class ResumableSha256:
    """SHA-256 like ``hashlib.sha256()``, plus :meth:`state` and :meth:`from_state`.

    As fast as hashlib: the same OpenSSL code hashes, and large chunks are not copied on
    the way in. A call through ctypes costs about a microsecond more than hashlib's, which
    a tar stream of 512-byte headers would feel, so chunks under ``_SMALL_CHUNK`` bytes are
    gathered in a buffer and hashed ``_PENDING_CAPACITY`` bytes at a time. Like hashlib, the
    GIL is released while OpenSSL hashes; unlike hashlib's objects, one object is not
    locked: use it from one thread at a time.
    """

    __slots__ = (
        "_address",
        "_context",
        "_library",
        "_pending_address",
        "_pending_length",
        "_pending_view",
        "_pin",
    )

    name: Final = "sha256"
    digest_size: Final = _DIGEST_SIZE
    block_size: Final = _BLOCK_SIZE

    def __init__(self, data: Bytes = b"", *, _library: _Library | None = None) -> None:
        """Start a new hash of ``data``. Raises :class:`ResumableHashUnavailableError` when
        libcrypto could not be loaded."""
        library = _library if _library is not None else _loaded_library()
        self._library = library
        self._context = library.new_context()
        self._address = library.address(self._context)
        library.init(self._context)
        # Never resized (the pin forbids it), so its address stays valid for OpenSSL.
        pending = bytearray(_PENDING_CAPACITY)
        self._pin, self._pending_address = library.pin(pending)
        # Assigning into a memoryview costs a third of assigning into the bytearray.
        self._pending_view = memoryview(pending)
        self._pending_length = 0
        if data:
            self.update(data)

    def update(self, data: Bytes) -> None:
        """Hash ``data`` next. Raises ``TypeError`` for what is not bytes-like (``str``) and
        ``BufferError`` for a non-contiguous view, as ``hashlib`` does."""
        if isinstance(data, bytes | bytearray):
            size = len(data)
        elif isinstance(data, memoryview) and data.format == "B" and data.ndim == 1 and data.c_contiguous:
            size = data.nbytes
        else:
            # Views of other shapes, arrays, mmaps: OpenSSL reads them where they lie, or
            # Python refuses them (str, a non-contiguous view) with hashlib's errors.
            self._flush()
            self._library.update_buffer(self._address, data)
            return
        if size < _SMALL_CHUNK:
            end = self._pending_length + size
            if end > _PENDING_CAPACITY:
                self._flush()
                end = size
            self._pending_view[end - size : end] = data
            self._pending_length = end
            return
        self._flush()
        if isinstance(data, bytes):
            self._library.update(self._address, data, size)
        else:
            self._library.update_buffer(self._address, data)

    def _flush(self) -> None:
        """Hash the gathered small chunks."""
        if self._pending_length:
            self._library.update(self._address, self._pending_address, self._pending_length)
            self._pending_length = 0

    def digest(self) -> bytes:
        """The digest of everything hashed so far; more can be hashed after it."""
        self._flush()
        return self._library.final(self._context)

    def hexdigest(self) -> str:
        return self.digest().hex()

    def copy(self) -> ResumableSha256:
        """An independent hash with the same state."""
        self._flush()
        twin = ResumableSha256(_library=self._library)
        self._library.write(twin._context, self._library.read(self._context))
        return twin

    @property
    def byte_count(self) -> int:
        """How many bytes have been hashed: where in the stream :meth:`state` was taken."""
        return _byte_count(self._library.read(self._context)) + self._pending_length

    def state(self) -> bytes:
        """The saved state (53 to 116 bytes): :meth:`from_state` continues from it."""
        self._flush()
        return _state_from_raw(self._library.read(self._context))

    @classmethod
    def from_state(cls, state: Bytes, *, _library: _Library | None = None) -> ResumableSha256:
        """Resume a hash from :meth:`state`'s bytes. Raises ``ValueError`` for anything not
        written by :meth:`state` (truncated, corrupt, another format or version), and
        :class:`ResumableHashUnavailableError` when libcrypto could not be loaded."""
        raw = _raw_from_state(state)
        resumed = cls(_library=_library)
        resumed._library.write(resumed._context, raw)
        return resumed
