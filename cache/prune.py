"""Choosing which cache records to forget: ``kiln prune --keep-storage`` and ``--filter until``.

Records go least recently used first, as BuildKit's cache pruning does: with ``until`` every
record not used within that long; with ``keep_storage`` the oldest until the layers still
recorded fit in that many bytes; with neither, every record. A record whose layer blob a
lease holds (a running build uses it) is never removed. Forgetting a record only drops its
claim on the blob: the store's garbage collector then removes blobs nothing else keeps
(pass :func:`cache.records.blob_roots` as its extra roots).
"""

from __future__ import annotations

import re
import time
from collections.abc import Collection
from dataclasses import field

from builder.errors import UsageError
from builder.lazyclasses import dataclass
from cache.records import (
    INPUT_GROUPS_NAMESPACE,
    INPUT_SETS_NAMESPACE,
    INPUTS_NAMESPACE,
    CacheRecord,
    KeyValueTable,
    all_records,
    delete,
)

_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


@dataclass
class CachePruneReport:
    """The records removed and the bytes of layers they held."""

    removed: list[CacheRecord] = field(default_factory=list)

    @property
    def bytes_released(self) -> int:
        return sum(record.size for record in self.removed)


def prune_records(
    meta: KeyValueTable,
    *,
    keep_storage: int | None = None,
    until: float | None = None,
    leased_blobs: Collection[str] = (),
    now: float | None = None,
) -> CachePruneReport:
    """Forget the records chosen as the module says; return them."""
    moment = time.time() if now is None else now
    records = all_records(meta)  # least recently used first
    candidates = [record for record in records if record.blob_digest not in leased_blobs]
    chosen: list[CacheRecord] = []
    if until is not None:
        chosen = [record for record in candidates if record.last_used < moment - until]
    elif keep_storage is None:
        chosen = list(candidates)
    if keep_storage is not None:
        chosen_keys = {record.key for record in chosen}
        total = sum(record.size for record in records if record.key not in chosen_keys)
        for record in candidates:
            if total <= keep_storage:
                break
            if record.key not in chosen_keys:
                chosen.append(record)
                chosen_keys.add(record.key)
                total -= record.size
    for record in chosen:
        delete(meta, record.key)
    _forget_unused_inputs(meta, [record for record in records if record not in chosen])
    return CachePruneReport(chosen)


def _forget_unused_inputs(meta: KeyValueTable, kept: list[CacheRecord]) -> None:
    """Drop per-file input digests no kept record refers to."""
    referenced: set[str] = set()
    for record in kept:
        inputs = record.preimage.get("inputs", {})
        if isinstance(inputs, dict):
            referenced.update(str(digest) for digest in inputs.values())
    for digest in meta.keys(INPUTS_NAMESPACE):
        if digest not in referenced:
            meta.delete_value(INPUTS_NAMESPACE, digest)
    groups: set[str] = set()
    for digest in meta.keys(INPUT_SETS_NAMESPACE):
        stored = meta.get_value(INPUT_SETS_NAMESPACE, digest) if digest in referenced else None
        if isinstance(stored, dict) and isinstance(stored.get("groups"), dict):
            groups.update(str(group_digest) for group_digest in stored["groups"].values())
        else:
            meta.delete_value(INPUT_SETS_NAMESPACE, digest)
    for group_digest in meta.keys(INPUT_GROUPS_NAMESPACE):
        if group_digest not in groups:
            meta.delete_value(INPUT_GROUPS_NAMESPACE, group_digest)


def parse_size(text: str) -> int:
    """``--keep-storage``'s SIZE: bytes, or with a unit (``512MB``, ``10GiB``, ``1.5g``);
    units are binary, as Docker reads them."""
    found = _SIZE.fullmatch(text.strip())
    if found is None:
        raise UsageError(f"invalid size {text!r}: expected a number with an optional unit (KB, MB, GB, TB)")
    unit = (found.group(2) or "").lower().rstrip("b").rstrip("i")
    return int(float(found.group(1)) * _SIZE_UNITS[unit])


def parse_duration(text: str) -> float:
    """``--filter until=DURATION`` in Go's form (``24h``, ``1h30m``, ``90s``) plus days
    (``7d``); seconds."""
    cleaned = text.strip()
    parts = _DURATION.findall(cleaned)
    if not cleaned or "".join(number + unit for number, unit in parts) != cleaned:
        raise UsageError(f"invalid duration {text!r}: expected e.g. 24h, 1h30m, 7d")
    return sum(float(number) * _DURATION_UNITS[unit] for number, unit in parts)
