"""Digests: only well-formed sha256 values exist; writers hash what they pass on."""

from __future__ import annotations

import hashlib
import io

import pytest

from builder.errors import ImageFormatError
from builder.oci.digest import Digest, HashingWriter, is_digest, sha256_digest

EMPTY = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_sha256_of_bytes() -> None:
    assert sha256_digest(b"") == EMPTY
    assert sha256_digest(b"").hex == EMPTY[7:]
    assert sha256_digest(b"").algorithm == "sha256"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "sha256:",
        EMPTY.upper(),
        "sha256:" + "A" * 64,
        "sha512:" + "a" * 128,
        EMPTY + "0",
        EMPTY[:-1],
        " " + EMPTY,
        "md5:d41d8cd98f00b204e9800998ecf8427e",
    ],
)
def test_malformed_digests_are_refused(text: str) -> None:
    assert not is_digest(text)
    with pytest.raises(ImageFormatError, match="invalid digest"):
        Digest(text)


def test_digest_is_a_plain_string() -> None:
    digest = Digest(EMPTY)
    assert digest == EMPTY
    assert Digest.from_hex(EMPTY[7:]) == digest
    assert is_digest(digest)


def test_hashing_writer_counts_and_passes_through() -> None:
    out = io.BytesIO()
    writer = HashingWriter(out)
    writer.write(b"hello ")
    writer.write(memoryview(b"world"))

    assert out.getvalue() == b"hello world"
    assert writer.size == 11
    assert writer.digest() == "sha256:" + hashlib.sha256(b"hello world").hexdigest()


def test_hashing_writer_without_output_only_hashes() -> None:
    writer = HashingWriter()
    writer.write(b"")
    writer.flush()
    assert (writer.size, writer.digest()) == (0, EMPTY)
