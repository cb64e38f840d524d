"""The cache as a build step sees it: compute inputs, probe for a hit, save what was built.

This is the one object a step runner holds. For each filesystem-changing op:

1. :func:`compute_inputs` digests what the op reads besides its parent (context files
   through the stat-cached :class:`~cache.contenthash.ContextHasher`, other stages, images);
2. :meth:`BuildCache.probe` keys the op and looks for a usable record; a miss carries the
   reason, from the closest previous record of the same step (:mod:`cache.explain`);
3. on a miss, once the layer is written, :meth:`BuildCache.save` records it.

Everything here is safe to call from the solver's stage threads (one lock around the store).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import field
from typing import TYPE_CHECKING

from builder.context import BuildContext
from builder.errors import ContextError
from builder.graph import (
    ContextSource,
    CopyOp,
    CopySource,
    GitSource,
    ImageSource,
    InlineSource,
    Op,
    Platform,
    StageSource,
    UrlSource,
)
from builder.lazyclasses import dataclass
from cache import records
from cache.contenthash import ContextHasher, SourceDigest
from cache.keys import CacheKey, InputNeed, op_key, required_inputs
from cache.records import CacheRecord, RecordStore

if TYPE_CHECKING:
    from cache.filechanges import FileChanges

#: Why a step missed when its record exists but was built on other layers below it.
OTHER_PARENT_LAYERS = "the cached layer was built on different layers below it"


@dataclass(frozen=True)
class InputSources:
    """Where :func:`compute_inputs` finds what an op reads.

    ``contexts`` maps a context name (``"context"``, or a ``--build-context`` name) to its
    filtered directory. ``stage_digest`` gives a stage's final filesystem identity (its top
    layer's chain id, or its final cache key: anything that changes when its files do).
    ``image_digest`` gives the manifest digest of an image reference for the build's
    platform. ``url_digest`` gives the content digest of a URL without ``--checksum`` (the
    URL itself is keyed when it is ``None``); ``git_digest`` the commit of a git source.
    ``on_change`` is called once, as soon as a context walk meets a directory that changed
    since the last walk (the step is then likely to miss), with whether that is the
    directory the walk started at and its entry names changed.
    """

    contexts: Mapping[str, BuildContext]
    stage_digest: Callable[[int], str]
    image_digest: Callable[[str], str]
    url_digest: Callable[[UrlSource], str] | None = None
    git_digest: Callable[[GitSource], str] | None = None
    on_change: Callable[[bool], None] | None = None


@dataclass(frozen=True)
class InputDigests:
    """An op's input digests by name, and the context selections they came from."""

    digests: Mapping[str, str] = field(default_factory=dict)
    selections: Mapping[str, SourceDigest] = field(default_factory=dict)


def compute_inputs(op: Op, hasher: ContextHasher, sources: InputSources) -> InputDigests:
    """The digests :func:`cache.keys.op_key` needs for ``op`` (see :func:`required_inputs`)."""
    digests: dict[str, str] = {}
    selections: dict[str, SourceDigest] = {}
    for need in required_inputs(op):
        if isinstance(need.source, ContextSource):
            selection = _context_selection(op, need, need.source.name, hasher, sources)
            selections[need.name] = selection
            digests[need.name] = selection.digest
        else:
            digests[need.name] = _source_digest(need.source, sources)
    return InputDigests(digests, selections)


def _context_selection(
    op: Op, need: InputNeed, name: str, hasher: ContextHasher, sources: InputSources
) -> SourceDigest:
    context = sources.contexts.get(name)
    if context is None:
        raise ContextError(f"build context {name!r} is not available")
    if need.paths:
        parents = isinstance(op, CopyOp) and op.parents
        return hasher.digest_sources(
            context, need.paths, exclude=need.exclude, parents=parents, on_change=sources.on_change
        )
    return hasher.digest_sources(context, [need.source_path or "."], on_change=sources.on_change)


def _source_digest(source: CopySource, sources: InputSources) -> str:
    if isinstance(source, StageSource):
        return sources.stage_digest(source.stage)
    if isinstance(source, ImageSource):
        return sources.image_digest(source.ref)
    if isinstance(source, UrlSource):
        if source.checksum:
            return source.checksum
        return sources.url_digest(source) if sources.url_digest is not None else f"url:{source.url}"
    if isinstance(source, GitSource):
        if sources.git_digest is not None:
            return sources.git_digest(source)
        return f"git:{source.url}#{source.ref}"
    if isinstance(source, InlineSource):
        return "inline"  # the content is in the op's own fields
    raise ContextError(f"unknown copy source {type(source).__name__}")


@dataclass(frozen=True)
class Probe:
    """What the cache said about one step: a hit carries ``record``; a miss ``reason``."""

    key: CacheKey
    step: str
    record: CacheRecord | None
    reason: str
    inputs: InputDigests
    #: Every difference from the previous record of the step (``kiln build --explain``).
    details: tuple[str, ...] = ()
    #: On a miss, the record last saved for this step, and how each context input's files
    #: differ from its: a COPY takes the files that did not change from its layer.
    previous: CacheRecord | None = None
    previous_changes: Mapping[str, FileChanges] | None = None

    @property
    def hit(self) -> bool:
        return self.record is not None


class BuildCache:
    """The cache for one build over ``store``, honouring ``--no-cache`` and
    ``--no-cache-filter`` (``no_cache_stages``: stage names or indexes as text)."""

    def __init__(
        self, store: RecordStore, *, no_cache: bool = False, no_cache_stages: Collection[str] = ()
    ) -> None:
        self._store = store
        self._no_cache = no_cache
        self._no_cache_stages = frozenset(no_cache_stages)
        self._lock = threading.Lock()
        self._savers: list[threading.Thread] = []
        self._save_errors: list[BaseException] = []

    def probe(
        self,
        op: Op,
        *,
        parent: str,
        parent_chain_id: str,
        platform: Platform,
        inputs: InputDigests,
        step: str,
        stage: str = "",
    ) -> Probe:
        """Key ``op`` and look for a record built on ``parent_chain_id`` ("" for none)."""
        key = op_key(op, parent=parent, platform=platform, inputs=inputs.digests)
        disabled = self._disabled(stage)
        with self._lock:
            meta = self._store.meta
            if not disabled:
                record = records.lookup(self._store, key.digest, parent_chain_id=parent_chain_id)
                if record is not None:
                    return Probe(key, step, records.mark_used(meta, record), "", inputs)
                stored = records.load(meta, key.digest)
                if stored is not None and self._store.blobs.has(stored.blob_digest):
                    return Probe(key, step, None, OTHER_PARENT_LAYERS, inputs)
            previous = records.previous_for_step(meta, step)
            # --no-cache: nothing of an earlier build is reused, not even files.
            files = records.stored_inputs(meta, previous.preimage) if previous and not disabled else {}
            from cache.filechanges import FileChanges  # (and explain: only a miss needs them)

            changes = {
                name: FileChanges(selection, files[name])
                for name, selection in inputs.selections.items()
                if name in files
            }
            file_changes = {name: found.differences for name, found in changes.items()}
        from cache.explain import explain_all, explain_miss

        previous_preimage = previous.preimage if previous else None
        reason = explain_miss(key.preimage, previous_preimage, file_changes=file_changes, no_cache=disabled)
        details = explain_all(key.preimage, previous_preimage, file_changes=file_changes, no_cache=disabled)
        return Probe(
            key, step, None, reason, inputs, tuple(details), None if disabled else previous, changes or None
        )

    def _disabled(self, stage: str) -> bool:
        """Whether no record may serve a step of ``stage`` (``--no-cache``, or the stage in
        ``--no-cache-filter``)."""
        return self._no_cache or (bool(stage) and stage in self._no_cache_stages)

    def may_hit(self, key: str, *, stage: str = "") -> bool:
        """Whether a probe of ``key`` in ``stage`` may find a record: one is stored under it
        and the cache is not off for the stage (a cheap check, before a parent is known)."""
        if self._disabled(stage):
            return False
        with self._lock:
            return records.load(self._store.meta, key) is not None

    def save(
        self,
        probe: Probe,
        *,
        diff_id: str,
        blob_digest: str,
        size: int,
        media_type: str,
        chain_id: str,
        parent_chain_id: str,
        created_by: str,
        created: str,
    ) -> CacheRecord:
        """Record the layer a missed step produced (call after its blob is stored)."""
        record = CacheRecord(
            key=probe.key.digest,
            diff_id=diff_id,
            blob_digest=blob_digest,
            size=size,
            media_type=media_type,
            chain_id=chain_id,
            parent_chain_id=parent_chain_id,
            created_by=created_by,
            created=created,
            preimage=probe.key.preimage,
            step=probe.step,
        )
        with self._lock:
            records.save(self._store.meta, record)
        if probe.inputs.selections:
            self._save_input_files_soon(record, probe.inputs)
        return record

    def _save_input_files_soon(self, record: CacheRecord, inputs: InputDigests) -> None:
        """Keep the per-file digests of ``record``'s inputs, for the explanations and copy
        re-runs of later builds, from a thread: for a COPY of 20,000 files, making and
        storing them costs 30 to 90 ms that the next step need not wait for (a RUN, whose
        container leaves the interpreter idle). :meth:`close` waits for them."""

        def save() -> None:
            try:
                # Without the cache's lock: the next step's probe would wait for it. The
                # thread has a connection of its own, and SQLite orders the writes.
                records.save_input_groups(self._store.meta, record, inputs.selections)
            except BaseException as err:  # re-raised by close(), on the build's thread
                self._save_errors.append(err)

        saver = threading.Thread(target=save, name="input-files", daemon=True)
        saver.start()
        self._savers.append(saver)

    def close(self) -> None:
        """Wait for the per-file digests being saved; raise the first failure."""
        for saver in self._savers:
            saver.join()
        self._savers.clear()
        if self._save_errors:
            raise self._save_errors[0]
