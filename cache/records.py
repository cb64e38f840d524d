"""Cache records: what a key produced, kept in the store's key/value table.

A record holds everything needed to reuse a step without running it (the layer's diff id,
blob, size, media type and chain id, plus the parent chain id the snapshot is unpacked on)
and to explain a later miss (the key's preimage). Three namespaces of the table:

* ``cache``: cache key → record;
* ``cache-step``: step identity → the key last recorded for that step, so a miss can be
  compared with the closest previous record of the same step (:func:`previous_for_step`);
* ``cache-inputs``: input digest → the short digest of each file it covers, stored once per
  distinct content, so an explanation can name the file that changed;
* ``cache-input-sets`` and ``cache-input-groups``: the same, a directory at a time (what a
  build records now): input digest → each directory's group digest and stat fingerprint
  (:class:`cache.contenthash.SourceDigest`), and group digest → the short digest of each of
  that directory's own entries. A directory unchanged between builds is stored once, and a
  later miss loads and compares only the directories that differ (:mod:`cache.filechanges`).

The store is reached through small protocols rather than imported, keeping ``cache`` below
``builder.store`` in the import order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, field, replace
from typing import Protocol

from builder.errors import StoreError
from builder.lazyclasses import dataclass

CACHE_NAMESPACE = "cache"
STEP_NAMESPACE = "cache-step"
INPUTS_NAMESPACE = "cache-inputs"
INPUT_SETS_NAMESPACE = "cache-input-sets"
INPUT_GROUPS_NAMESPACE = "cache-input-groups"

#: A hit rewrites ``last_used`` only when older than this, so a rebuild of a fully cached
#: Dockerfile writes nothing; prune's least-recently-used order needs no finer grain.
LAST_USED_GRANULARITY = 3600.0


class KeyValueTable(Protocol):
    """The part of :class:`builder.store.meta.MetaStore` records live in."""

    def put_value(self, namespace: str, key: str, value: object) -> None: ...
    def get_value(self, namespace: str, key: str) -> object | None: ...
    def delete_value(self, namespace: str, key: str) -> None: ...
    def keys(self, namespace: str) -> list[str]: ...


class BlobPresence(Protocol):
    def has(self, digest: str) -> bool: ...


class RecordStore(Protocol):
    """The part of :class:`builder.store.store.Store` a lookup checks."""

    @property
    def meta(self) -> KeyValueTable: ...
    @property
    def blobs(self) -> BlobPresence: ...


@dataclass(frozen=True)
class CacheRecord:
    """The result of one cached step.

    ``parent_chain_id`` is the chain id of the layers below (``""`` for the first layer):
    the runner passes it to ``SnapshotStore.ensure`` to unpack a snapshot that is missing
    (a record imported from another machine has none yet). ``created_by`` and ``created``
    are the history entry as first written; the runner may prefer the current op's
    ``created_by``, which the key does not cover.
    """

    key: str
    diff_id: str
    blob_digest: str
    size: int
    media_type: str
    chain_id: str
    parent_chain_id: str
    created_by: str
    created: str
    preimage: Mapping[str, object]
    step: str = ""
    last_used: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, object]:
        value = asdict(self)
        value["preimage"] = dict(self.preimage)
        return value

    @classmethod
    def from_json(cls, value: object) -> CacheRecord:
        """Parse a stored record; raise :class:`StoreError` when it is malformed."""
        if not isinstance(value, Mapping):
            raise StoreError("malformed cache record: not a JSON object")
        try:
            preimage = value["preimage"]
            if not isinstance(preimage, Mapping):
                raise TypeError("preimage is not an object")
            return cls(
                key=_text(value["key"]),
                diff_id=_text(value["diff_id"]),
                blob_digest=_text(value["blob_digest"]),
                size=int(value["size"]),
                media_type=_text(value["media_type"]),
                chain_id=_text(value["chain_id"]),
                parent_chain_id=_text(value["parent_chain_id"]),
                created_by=_text(value["created_by"]),
                created=_text(value["created"]),
                preimage=dict(preimage),
                step=_text(value.get("step", "")),
                last_used=float(value.get("last_used", 0.0)),
            )
        except KeyError as err:
            raise StoreError(f"malformed cache record: no field {err}") from err
        except (TypeError, ValueError) as err:
            raise StoreError(f"malformed cache record: {err}") from err


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def step_identity(dockerfile: str, stage: str, position: int) -> str:
    """A step's identity across builds: the Dockerfile, the stage's name (or index) and the
    op's position among the stage's filesystem-changing ops."""
    return f"{dockerfile}#{stage}#{position}"


def save(
    meta: KeyValueTable,
    record: CacheRecord,
    *,
    input_files: Mapping[str, Mapping[str, str]] | None = None,
) -> None:
    """Store ``record`` under its key, index it under its step, and keep the per-file
    digests of its inputs (``input name → {path: short digest}``) for explanations."""
    meta.put_value(CACHE_NAMESPACE, record.key, record.to_json())
    if record.step:
        meta.put_value(STEP_NAMESPACE, record.step, record.key)
    save_input_files(meta, record, input_files or {})


def save_input_files(
    meta: KeyValueTable, record: CacheRecord, input_files: Mapping[str, Mapping[str, str]]
) -> None:
    """Keep the per-file digests of ``record``'s inputs (``input name → {path: short
    digest}``), once per input digest."""
    inputs = record.preimage.get("inputs", {})
    for name, files in input_files.items():
        digest = inputs.get(name) if isinstance(inputs, Mapping) else None
        if isinstance(digest, str) and meta.get_value(INPUTS_NAMESPACE, digest) is None:
            meta.put_value(INPUTS_NAMESPACE, digest, dict(files))


def load(meta: KeyValueTable, key: str) -> CacheRecord | None:
    """The record stored under ``key``, unchecked; ``None`` when there is none."""
    value = meta.get_value(CACHE_NAMESPACE, key)
    return None if value is None else CacheRecord.from_json(value)


def lookup(store: RecordStore, key: str, *, parent_chain_id: str | None = None) -> CacheRecord | None:
    """A usable record for ``key``, or ``None``.

    Usable means its layer blob is still in the store (the snapshot can always be unpacked
    from it) and, when ``parent_chain_id`` is given, that it was built on the same layers
    as the state it would extend: after a parent step was rebuilt with a different result,
    a child's old layer no longer belongs on top.
    """
    record = load(store.meta, key)
    if record is None or not store.blobs.has(record.blob_digest):
        return None
    if parent_chain_id is not None and record.parent_chain_id != parent_chain_id:
        return None
    return record


def mark_used(meta: KeyValueTable, record: CacheRecord, now: float | None = None) -> CacheRecord:
    """Note that ``record`` served a build; written only when ``last_used`` is stale."""
    moment = time.time() if now is None else now
    if moment - record.last_used < LAST_USED_GRANULARITY:
        return record
    used = replace(record, last_used=moment)
    meta.put_value(CACHE_NAMESPACE, record.key, used.to_json())
    return used


def previous_for_step(meta: KeyValueTable, step: str) -> CacheRecord | None:
    """The record last saved for ``step`` (call before saving this build's record)."""
    key = meta.get_value(STEP_NAMESPACE, step)
    return load(meta, key) if isinstance(key, str) else None


class GroupedSelection(Protocol):
    """What :func:`save_input_groups` stores of a selection (:class:`cache.contenthash.SourceDigest`)."""

    @property
    def group_digests(self) -> Mapping[str, str]: ...
    @property
    def fingerprints(self) -> Mapping[str, str | None]: ...
    def files_of(self, group: str) -> Mapping[str, str]: ...


def save_input_groups(
    meta: KeyValueTable, record: CacheRecord, selections: Mapping[str, GroupedSelection]
) -> None:
    """Keep the per-file digests of ``record``'s context inputs a directory at a time, once
    per input digest; a directory's are stored only if no earlier build stored them."""
    inputs = record.preimage.get("inputs", {})
    for name, selection in selections.items():
        digest = inputs.get(name) if isinstance(inputs, Mapping) else None
        if not isinstance(digest, str) or meta.get_value(INPUT_SETS_NAMESPACE, digest) is not None:
            continue
        groups = dict(selection.group_digests)
        for group, group_digest in groups.items():
            if meta.get_value(INPUT_GROUPS_NAMESPACE, group_digest) is None:
                meta.put_value(INPUT_GROUPS_NAMESPACE, group_digest, dict(selection.files_of(group)))
        # Written last: a set is only ever read with all its groups stored.
        meta.put_value(
            INPUT_SETS_NAMESPACE, digest, {"groups": groups, "fingerprints": dict(selection.fingerprints)}
        )


@dataclass(frozen=True)
class StoredInput:
    """The per-file digests recorded for one input: by directory (``groups``, each loaded
    on demand by ``load_group``), or, as stored before directories were, all at once."""

    groups: Mapping[str, str] | None
    fingerprints: Mapping[str, str | None]
    load_group: Callable[[str], Mapping[str, str]]
    flat: Mapping[str, str] | None = None

    def files(self) -> dict[str, str]:
        """Every file's short digest."""
        if self.groups is None:
            return dict(self.flat or {})
        files: dict[str, str] = {}
        for group_digest in self.groups.values():
            files.update(self.load_group(group_digest))
        return files


def stored_inputs(meta: KeyValueTable, preimage: Mapping[str, object]) -> dict[str, StoredInput]:
    """What was stored of the per-file digests of a preimage's inputs (those that have any)."""

    def load_group(group_digest: str) -> Mapping[str, str]:
        files = meta.get_value(INPUT_GROUPS_NAMESPACE, group_digest)
        return {str(path): str(value) for path, value in files.items()} if isinstance(files, Mapping) else {}

    found: dict[str, StoredInput] = {}
    inputs = preimage.get("inputs", {})
    if not isinstance(inputs, Mapping):
        return found
    for name, digest in inputs.items():
        if not isinstance(digest, str):
            continue
        stored = meta.get_value(INPUT_SETS_NAMESPACE, digest)
        if isinstance(stored, Mapping) and isinstance(stored.get("groups"), Mapping):
            prints = stored.get("fingerprints")
            found[str(name)] = StoredInput(
                {str(group): str(value) for group, value in stored["groups"].items()},
                {str(group): value for group, value in prints.items()} if isinstance(prints, Mapping) else {},
                load_group,
            )
            continue
        files = meta.get_value(INPUTS_NAMESPACE, digest)
        if isinstance(files, Mapping):
            flat = {str(path): str(value) for path, value in files.items()}
            found[str(name)] = StoredInput(None, {}, load_group, flat)
    return found


def input_files(meta: KeyValueTable, preimage: Mapping[str, object]) -> dict[str, dict[str, str]]:
    """The per-file digests stored for a preimage's inputs (those that have any)."""
    return {name: stored.files() for name, stored in stored_inputs(meta, preimage).items()}


def all_records(meta: KeyValueTable) -> list[CacheRecord]:
    """Every record, least recently used first (prune's order)."""
    records = [record for key in meta.keys(CACHE_NAMESPACE) if (record := load(meta, key)) is not None]
    return sorted(records, key=lambda record: (record.last_used, record.key))


def delete(meta: KeyValueTable, key: str) -> None:
    """Forget a record (its blob goes at the next prune unless something else holds it)."""
    meta.delete_value(CACHE_NAMESPACE, key)


def blob_roots(meta: KeyValueTable) -> set[str]:
    """The layer blobs cache records keep alive: prune's ``extra_blob_roots``."""
    return {record.blob_digest for record in all_records(meta)}
