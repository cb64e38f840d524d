"""Resumable SHA-256: the same digests as hashlib, however the input is cut, typed or resumed.

A layer splice trusts a saved state to stand for hundreds of MB it does not hash again, so a
state must resume to exactly hashlib's digest of the whole stream, and anything that is not a
state written here must be refused rather than resumed into a wrong diff id.
"""

from __future__ import annotations

import array
import hashlib
import random
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from builder.oci import resumable_sha256
from builder.oci.resumable_sha256 import (
    ResumableHashUnavailableError,
    ResumableSha256,
    resumable_available,
)

needs_library = pytest.mark.skipif(not resumable_available(), reason="libcrypto's SHA256_* cannot be loaded")

SMALL = resumable_sha256._SMALL_CHUNK
CAPACITY = resumable_sha256._PENDING_CAPACITY
HEADER_SIZE = 8 + len(b"kiln-sha256-state") + 1 + 32  # tag, version, count, chaining value
CRC_SIZE = 4


def _stream(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def _random_cuts(data: bytes, rng: random.Random) -> list[bytes]:
    """``data`` cut into chunks of mixed sizes: empty, tiny, around a block, around the
    small-chunk threshold and the gathering buffer's capacity, large."""
    sizes = [0, 1, 55, 56, 63, 64, 65, 511, 4096, SMALL - 1, SMALL, SMALL + 1, CAPACITY - 1, CAPACITY + 3]
    chunks = []
    position = 0
    while position < len(data):
        size = rng.choice(sizes) if rng.random() < 0.8 else rng.randrange(0, 300_000)
        chunks.append(data[position : position + size])
        position += size
    return chunks


@needs_library
@pytest.mark.parametrize(
    "length", [0, 1, 55, 56, 63, 64, 65, 1000, SMALL - 1, SMALL, CAPACITY + 1, 3_000_001]
)
def test_one_update_matches_hashlib(length: int) -> None:
    data = _stream(length)
    hasher = ResumableSha256()
    hasher.update(data)
    assert hasher.hexdigest() == hashlib.sha256(data).hexdigest()
    assert hasher.digest() == hashlib.sha256(data).digest()
    assert hasher.byte_count == length
    assert ResumableSha256(data).digest() == hashlib.sha256(data).digest()


@needs_library
@pytest.mark.parametrize("seed", range(8))
def test_random_cuts_match_hashlib(seed: int) -> None:
    rng = random.Random(seed)
    data = _stream(rng.randrange(1, 1_500_000), seed)
    hasher = ResumableSha256()
    for chunk in _random_cuts(data, rng):
        hasher.update(chunk)
    assert hasher.digest() == hashlib.sha256(data).digest()
    assert hasher.byte_count == len(data)


@needs_library
@pytest.mark.parametrize("last_sizes", [(1,), (2,), (1, 1), (1, 2), (SMALL - 1,), (SMALL,)])
def test_small_chunks_filling_the_buffer_to_its_end(last_sizes: tuple[int, ...]) -> None:
    pieces = [SMALL - 1] * (CAPACITY // (SMALL - 1))
    pieces.append(CAPACITY - 1 - sum(pieces))
    data = _stream(CAPACITY - 1 + sum(last_sizes))
    hasher = ResumableSha256()
    position = 0
    for size in [*pieces, *last_sizes]:
        hasher.update(data[position : position + size])
        position += size
    assert hasher.byte_count == len(data)
    assert hasher.digest() == hashlib.sha256(data).digest()


def test_available_where_hashlib_uses_openssl() -> None:
    """Guards the skips above: on Linux with OpenSSL the library must load, so that a
    broken self-test fails here instead of quietly skipping every test."""
    import ssl

    if not sys.platform.startswith("linux") or not ssl.OPENSSL_VERSION.startswith("OpenSSL"):
        pytest.skip("expected only where hashlib runs on OpenSSL, on Linux")
    assert resumable_available(), resumable_sha256._shared_library()


@needs_library
@pytest.mark.parametrize("seed", range(6))
def test_state_taken_anywhere_resumes_to_the_digest_of_the_whole(seed: int) -> None:
    rng = random.Random(seed)
    data = _stream(1_200_000, seed)
    expected = hashlib.sha256(data).digest()
    hasher = ResumableSha256()
    position = 0
    saved: list[tuple[int, bytes]] = [(0, hasher.state())]
    for chunk in _random_cuts(data, rng):
        hasher.update(chunk)
        position += len(chunk)
        if rng.random() < 0.3:
            saved.append((position, hasher.state()))
    assert hasher.digest() == expected
    for offset, state in saved:
        resumed = ResumableSha256.from_state(state)
        assert resumed.byte_count == offset
        for chunk in _random_cuts(data[offset:], rng):
            resumed.update(chunk)
        assert resumed.digest() == expected, offset


@needs_library
@pytest.mark.parametrize("length", [0, 1, 55, 56, 63, 64, 65, 127, 128, 100_000])
def test_state_layout_and_round_trip(length: int) -> None:
    hasher = ResumableSha256(_stream(length))
    state = hasher.state()
    assert isinstance(state, bytes)
    assert state.startswith(b"kiln-sha256-state\x01")
    assert len(state) == HEADER_SIZE + length % 64 + CRC_SIZE
    assert struct.unpack_from(">Q", state, len(b"kiln-sha256-state") + 1) == (length,)
    assert ResumableSha256.from_state(state).state() == state
    assert ResumableSha256.from_state(bytearray(state)).digest() == hasher.digest()
    assert ResumableSha256.from_state(memoryview(state)).digest() == hasher.digest()
    assert (
        ResumableSha256.from_state(bytes(bytearray(state))).digest()
        == hashlib.sha256(_stream(length)).digest()
    )


@needs_library
def test_a_fresh_state_is_the_initial_sha256_state() -> None:
    state = ResumableSha256().state()
    chaining = state[len(b"kiln-sha256-state") + 1 + 8 : HEADER_SIZE]
    assert struct.unpack(">8I", chaining)[0] == 0x6A09E667  # FIPS 180-4 H(0)
    assert ResumableSha256.from_state(state).hexdigest() == hashlib.sha256(b"").hexdigest()


def _with_crc(body: bytes) -> bytes:
    return body + struct.pack(">I", zlib.crc32(body))


@needs_library
def test_from_state_refuses_every_truncation_and_padding() -> None:
    state = ResumableSha256(_stream(100)).state()
    for length in range(len(state)):
        with pytest.raises(ValueError, match="SHA-256 state"):
            ResumableSha256.from_state(state[:length])
    with pytest.raises(ValueError, match="truncated or padded"):
        ResumableSha256.from_state(state + b"\0")


@needs_library
def test_from_state_refuses_garbage_and_corruption() -> None:
    state = ResumableSha256(_stream(100)).state()
    with pytest.raises(ValueError, match="not a saved SHA-256 state"):
        ResumableSha256.from_state(b"")
    with pytest.raises(ValueError, match="not a saved SHA-256 state"):
        ResumableSha256.from_state(bytes(len(state)))
    with pytest.raises(ValueError, match="not a saved SHA-256 state"):
        ResumableSha256.from_state(b"x" + state[1:])
    for position in (len(b"kiln-sha256-state") + 12, HEADER_SIZE - 1, HEADER_SIZE + 10, len(state) - 1):
        flipped = bytearray(state)
        flipped[position] ^= 0x01
        with pytest.raises(ValueError, match="corrupt"):
            ResumableSha256.from_state(bytes(flipped))


@needs_library
def test_from_state_refuses_another_version_and_an_impossible_count() -> None:
    state = ResumableSha256(_stream(64)).state()
    version_at = len(b"kiln-sha256-state")
    other_version = _with_crc(state[:version_at] + b"\x02" + state[version_at + 1 : -CRC_SIZE])
    with pytest.raises(ValueError, match="format version 2, expected 1"):
        ResumableSha256.from_state(other_version)
    too_long = _with_crc(
        state[: version_at + 1] + struct.pack(">Q", 1 << 61) + state[version_at + 9 : -CRC_SIZE]
    )
    with pytest.raises(ValueError, match="more than SHA-256 allows"):
        ResumableSha256.from_state(too_long)
    with pytest.raises(TypeError, match="not str"):
        ResumableSha256.from_state(state.decode("latin-1"))  # type: ignore[arg-type]


@needs_library
def test_digest_does_not_disturb_the_state() -> None:
    hasher = ResumableSha256(b"abc")
    first = hasher.digest()
    assert hasher.digest() == first == hashlib.sha256(b"abc").digest()
    assert hasher.hexdigest() == first.hex()
    hasher.update(b"def")
    hasher.state()
    hasher.update(_stream(200_000))
    assert hasher.digest() == hashlib.sha256(b"abcdef" + _stream(200_000)).digest()
    assert hasher.byte_count == 200_006


@needs_library
def test_copy_is_independent() -> None:
    original = ResumableSha256(b"common prefix ")
    twin = original.copy()
    original.update(b"left")
    twin.update(_stream(100_000))
    assert original.digest() == hashlib.sha256(b"common prefix left").digest()
    assert twin.digest() == hashlib.sha256(b"common prefix " + _stream(100_000)).digest()
    assert original.copy().digest() == original.digest()


def _input_forms(data: bytes) -> list[object]:
    padded = b"xx" + data + b"yy"
    return [
        data,
        bytearray(data),
        memoryview(data),
        memoryview(padded)[2:-2],  # a read-only slice, not at the start of its buffer
        memoryview(bytearray(padded))[2:-2],  # a writable slice
        memoryview(data).cast("c"),
        array.array("B", data),
    ]


@needs_library
@pytest.mark.parametrize("length", [0, 5, 64, 700, SMALL, CAPACITY * 2 + 17])
def test_every_bytes_like_input_hashes_like_hashlib(length: int) -> None:
    data = _stream(length)
    expected = hashlib.sha256(b"head" + data + b"tail").digest()
    for form in _input_forms(data):
        hasher = ResumableSha256(b"head")
        hasher.update(form)  # type: ignore[arg-type]
        hasher.update(b"tail")
        assert hasher.digest() == expected, type(form)
        assert hasher.byte_count == length + 8


@needs_library
def test_multi_byte_formats_hash_their_bytes() -> None:
    words = array.array("I", range(5000))
    for form in (words, memoryview(words), memoryview(words.tobytes()).cast("I", (100, 50))):
        hasher = ResumableSha256()
        hasher.update(form)  # type: ignore[arg-type]
        assert hasher.digest() == hashlib.sha256(words.tobytes()).digest(), form


@needs_library
@pytest.mark.parametrize("length", [100, 3 * CAPACITY])
def test_what_hashlib_refuses_is_refused(length: int) -> None:
    hasher = ResumableSha256(b"kept")
    with pytest.raises(TypeError):
        hasher.update("text")  # type: ignore[arg-type]
    strided = memoryview(_stream(length))[::2]
    with pytest.raises(BufferError):
        hashlib.sha256(strided)
    with pytest.raises(BufferError):
        hasher.update(strided)
    assert hasher.digest() == hashlib.sha256(b"kept").digest()


@needs_library
def test_a_hashed_bytearray_is_released() -> None:
    buffer = bytearray(_stream(3 * CAPACITY))
    ResumableSha256().update(buffer)
    ResumableSha256().update(memoryview(buffer))
    buffer.extend(b"still resizable")  # a leaked export would raise BufferError here


@needs_library
def test_looks_like_a_hashlib_object() -> None:
    hasher = ResumableSha256()
    reference = hashlib.sha256()
    assert (hasher.name, hasher.digest_size, hasher.block_size) == (
        reference.name,
        reference.digest_size,
        reference.block_size,
    )


@needs_library
def test_the_library_is_the_one_hashlib_uses() -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("finds the mapped library through /proc")
    first = next(iter(resumable_sha256._library_candidates()))
    assert "libcrypto.so" in first
    assert first.startswith("/")


def test_unavailable_library_raises_a_specific_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resumable_sha256, "_shared_library", lambda: "no libcrypto here")
    assert resumable_available() is False
    with pytest.raises(ResumableHashUnavailableError, match="no libcrypto here"):
        ResumableSha256()
    with pytest.raises(ResumableHashUnavailableError):
        ResumableSha256.from_state(
            _with_crc(b"kiln-sha256-state\x01" + bytes(8) + struct.pack(">8I", *range(8)))
        )
    assert issubclass(ResumableHashUnavailableError, RuntimeError)


def test_a_missing_library_gives_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        resumable_sha256, "_library_candidates", lambda: iter(["/nonexistent/libcrypto.so.9"])
    )
    reason = resumable_sha256._shared_library.__wrapped__()
    assert isinstance(reason, str)
    assert reason.startswith("no usable libcrypto (/nonexistent/libcrypto.so.9: ")


def test_importing_the_module_loads_neither_ctypes_nor_libcrypto() -> None:
    code = (
        "import sys, builder.oci.resumable_sha256\n"
        "assert 'ctypes' not in sys.modules, 'ctypes imported'\n"
        "assert builder.oci.resumable_sha256._shared_library.cache_info().currsize == 0\n"
    )
    project_root = Path(__file__).resolve().parents[4]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=project_root)
