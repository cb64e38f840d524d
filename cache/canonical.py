"""The one canonical JSON encoding behind every cache digest.

Two processes (or two machines) must derive byte-identical preimages for the same step, so
the encoding leaves nothing to chance: keys sorted, no whitespace, UTF-8 (lone surrogates
from undecodable file names kept distinct with ``surrogatepass``), and no floats, whose
text form differs between encoders. Tuples are written as lists, as JSON has only those.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from builder.errors import KilnError


class CanonicalJsonError(KilnError):
    """A value that has no canonical JSON form (a float, a non-string key, an object)."""


def canonical_json(value: object) -> bytes:
    """``value`` as canonical JSON bytes; raise :class:`CanonicalJsonError` if it has none."""
    _check(value, "$")
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.encode("utf-8", "surrogatepass")


def canonical_digest(value: object) -> str:
    """``sha256:<hex>`` of :func:`canonical_json` of ``value``."""
    return "sha256:" + hashlib.sha256(canonical_json(value)).hexdigest()


def _check(value: object, where: str) -> None:
    """Refuse what :func:`json.dumps` would encode ambiguously or not at all."""
    if value is None or isinstance(value, (bool, int, str)):
        return
    if isinstance(value, float):
        raise CanonicalJsonError(f"{where}: floats have no canonical form ({value!r})")
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check(item, f"{where}[{index}]")
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise CanonicalJsonError(f"{where}: object keys must be strings, not {key!r}")
            _check(item, f"{where}.{key}")
        return
    raise CanonicalJsonError(f"{where}: {type(value).__name__} is not JSON data")
