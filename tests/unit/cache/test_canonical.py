from __future__ import annotations

import hashlib

import pytest

from cache.canonical import CanonicalJsonError, canonical_digest, canonical_json


def test_keys_sorted_no_whitespace_utf8() -> None:
    assert canonical_json({"b": [1, True, None], "a": "é"}) == '{"a":"é","b":[1,true,null]}'.encode()


def test_tuples_encode_as_lists() -> None:
    assert canonical_json({"x": (1, "2")}) == b'{"x":[1,"2"]}'


def test_undecodable_file_name_survives_and_stays_distinct() -> None:
    name = b"caf\xe9".decode("utf-8", "surrogateescape")
    assert canonical_json(name) != canonical_json("caf\ufffd")
    assert canonical_json(name) == b'"caf\xed\xb3\xa9"'


def test_digest_is_sha256_of_the_bytes() -> None:
    expected = "sha256:" + hashlib.sha256(b'{"a":1}').hexdigest()
    assert canonical_digest({"a": 1}) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"a": 1.5}, "$.a: floats have no canonical form (1.5)"),
        ({1: "x"}, "$: object keys must be strings, not 1"),
        ([object()], "$[0]: object is not JSON data"),
    ],
)
def test_values_without_a_canonical_form_are_refused(value: object, message: str) -> None:
    with pytest.raises(CanonicalJsonError) as caught:
        canonical_json(value)
    assert str(caught.value) == message
