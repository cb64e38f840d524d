"""Typed reads of JSON objects for the model's ``from_json``: every mistake is an ImageFormatError.

Each reader names the document and the field at fault, so ``kiln`` can say *which* part of
a pulled or loaded image is malformed rather than failing with a ``KeyError``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from builder.errors import ImageFormatError


def canonical_json(value: object) -> bytes:
    """The one serialisation of every document kiln writes.

    Keys sorted, no insignificant whitespace, UTF-8 (not ``\\u`` escapes): the same value
    always gives the same bytes and so the same digest, whatever order fields were set in.
    Docker and BuildKit write Go struct order instead; both are valid JSON for every reader,
    and kiln keeps the original bytes of any document it did not change.
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def load_object(document: bytes, what: str) -> Mapping[str, object]:
    """Parse ``document`` as a JSON object, or raise naming ``what`` it was meant to be."""
    try:
        value = json.loads(document)
    except (ValueError, UnicodeDecodeError) as err:
        raise ImageFormatError(f"{what} is not valid JSON: {err}") from err
    if not isinstance(value, dict):
        raise ImageFormatError(f"{what} is not a JSON object")
    return value


class Fields:
    """Reads fields of one JSON object, checking each type; ``where`` names it in errors."""

    def __init__(self, value: object, where: str) -> None:
        if not isinstance(value, dict):
            raise ImageFormatError(f"{where}: expected a JSON object")
        self.value: Mapping[str, object] = value
        self.where = where

    def _fail(self, key: str, expected: str) -> ImageFormatError:
        return ImageFormatError(f"{self.where}: field {key!r} must be {expected}")

    def has(self, key: str) -> bool:
        return self.value.get(key) is not None

    def text(self, key: str, default: str = "") -> str:
        found = self.value.get(key)
        if found is None:
            return default
        if not isinstance(found, str):
            raise self._fail(key, "a string")
        return found

    def required_text(self, key: str) -> str:
        if key not in self.value:
            raise ImageFormatError(f"{self.where}: field {key!r} is missing")
        return self.text(key)

    def integer(self, key: str, default: int = 0) -> int:
        found = self.value.get(key)
        if found is None:
            return default
        if not isinstance(found, int) or isinstance(found, bool):
            raise self._fail(key, "an integer")
        return found

    def flag(self, key: str) -> bool:
        found = self.value.get(key)
        if found is None:
            return False
        if not isinstance(found, bool):
            raise self._fail(key, "true or false")
        return found

    def strings(self, key: str) -> tuple[str, ...] | None:
        """A list of strings; ``None`` when absent or null (distinct from an empty list)."""
        found = self.value.get(key)
        if found is None:
            return None
        if not isinstance(found, list) or not all(isinstance(item, str) for item in found):
            raise self._fail(key, "a list of strings")
        return tuple(found)

    def string_map(self, key: str) -> dict[str, str]:
        found = self.value.get(key)
        if found is None:
            return {}
        if not isinstance(found, dict) or not all(isinstance(item, str) for item in found.values()):
            raise self._fail(key, "an object of strings")
        return dict(found)

    def key_set(self, key: str) -> tuple[str, ...]:
        """Go's ``map[string]struct{}`` (ExposedPorts, Volumes) as its sorted keys."""
        found = self.value.get(key)
        if found is None:
            return ()
        if not isinstance(found, dict):
            raise self._fail(key, "an object")
        return tuple(sorted(found))

    def child(self, key: str) -> Fields | None:
        found = self.value.get(key)
        if found is None:
            return None
        return Fields(found, f"{self.where}.{key}")

    def children(self, key: str) -> list[Fields]:
        found = self.value.get(key)
        if found is None:
            return []
        if not isinstance(found, list):
            raise self._fail(key, "a list")
        return [Fields(item, f"{self.where}.{key}[{index}]") for index, item in enumerate(found)]
