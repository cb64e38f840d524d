"""The builder's step runner: what each op of the graph does to the filesystem.

``RUN`` runs in a container over an overlay of the parent snapshots (:mod:`builder.exec`);
``COPY``/``ADD``/``WORKDIR`` write into the same kind of overlay without a container
(:mod:`builder.fileops`). Either way the overlay's upper dir is the step's diff: it is
written once as a layer blob and then renamed into ``snapshots/`` as the new layer's
snapshot, so a build never unpacks a layer it has just written.

Before running a filesystem op the runner asks the layer cache (:mod:`cache.steps`): a hit
grows the state from the record and runs nothing. Snapshots are unpacked lazily, only when
a step that misses (or a ``COPY --from``) needs the files, so a fully cached rebuild does no
container work, writes no layer and unpacks nothing. A ``COPY`` that misses only because
some context files changed links the others from the step's previous layer
(:mod:`builder.fileops.donor`) instead of copying them again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from builder.context import BuildContext
from builder.errors import BuildError, KilnError, StoreError
from builder.events import StepLog
from builder.graph import (
    ConfigOp,
    ContextSource,
    CopyOp,
    Exec,
    GitSource,
    ImageBase,
    ImageSource,
    MkdirOp,
    Op,
    ScratchBase,
    Stage,
    StageSource,
)
from builder.imagestate import ImageState, LayerRef, utc_timestamp
from builder.lazyclasses import dataclass
from builder.leftovers import remove_dead_workspaces
from builder.resolver import ImageResolver
from builder.solver import StepContext, StepOutcome
from builder.stepcommit import (
    IndexedLayer,
    IndexLoad,
    OpenedLayer,
    commit_layer,
    foretell_rewritten,
    indexed_layer,
    open_layer,
    takes_from_previous,
)
from builder.store.snapshots import chain_ids
from builder.store.store import Lease, Store

# What runs a step (containers, file operations, layer writing) is imported by the methods
# that run one: a fully cached build never loads it, and start-up is part of its time.
if TYPE_CHECKING:
    from builder.exec.runtime import OciRuntime
    from builder.exec.spec import SpecMount
    from builder.fileops.donor import DonorLayer
    from builder.hashahead import HashAhead
    from builder.layers import Compression
    from builder.prestart import PrestartedRun
    from builder.secrets import SecretSource
    from builder.workspace import StepWorkspace
    from cache.contenthash import ContextHasher
    from cache.prescan import ContextScan
    from cache.records import CacheRecord
    from cache.steps import BuildCache, Probe

#: Called once per rebuilt step with its step number and every reason it was not cached.
ExplainSink = Callable[[int, tuple[str, ...]], None]


@dataclass(frozen=True)
class RunnerOptions:
    """How layers are written and containers run for one build."""

    compression: Compression = "gzip"
    source_date_epoch: int | None = None
    runtime: OciRuntime | None = None
    named_contexts: Mapping[str, BuildContext] = field(default_factory=dict)
    #: How image references become manifest digests (the store, pulling what is missing);
    #: the same resolver the frontend used, so both see one digest per reference.
    resolver: ImageResolver | None = None
    #: ``--secret``: where each secret id is read, only while a RUN that mounts it runs.
    secrets: Mapping[str, SecretSource] = field(default_factory=dict)
    #: ``--ssh``: the agent socket of each ssh id.
    ssh_sockets: Mapping[str, Path] = field(default_factory=dict)
    #: ``--allow security.insecure``: ``RUN --security=insecure`` may run privileged.
    allow_insecure: bool = False
    #: ``--no-cache``: key and record every step, reuse none.
    no_cache: bool = False
    #: ``--no-cache-filter``: stage names (or indexes as text) whose steps reuse nothing.
    no_cache_stages: frozenset[str] = frozenset()
    #: The Dockerfile's path as the cache names steps (for "why was this rebuilt").
    dockerfile: str = "Dockerfile"
    #: ``--explain``: receives every rebuilt step's full list of reasons.
    explain: ExplainSink | None = None
    #: Receives the cache record of every filesystem step, reused or new (``--cache-to``).
    on_record: Callable[[CacheRecord], None] | None = None
    #: The build context listed ahead by a helper process (:mod:`cache.prescan`), if started.
    context_scan: ContextScan | None = None


#: Why a step ran whose cached layer a concurrent prune removed after the lookup.
PRUNED_MEANWHILE = "its cached layer was pruned while this build ran"

#: The parent a rebasing ``COPY --link`` is keyed on instead of its real one.
LINK_PARENT = "link:independent-of-parent"


def _rebases(op: Op) -> bool:
    """A ``COPY --link`` layer does not depend on the layers under it, so its key leaves the
    parent out and its record is reused on any base (BuildKit's rebase). Not when
    ``--chown`` names a user: the name resolves in the base's /etc/passwd."""
    if not isinstance(op, CopyOp) or not op.link:
        return False
    return all(part.isdigit() for part in op.chown.split(":") if part)


def _parent_chain_id(op: Op, state: ImageState) -> str:
    """The chain a layer of ``op`` is recorded on: none for a rebased ``COPY --link``."""
    return "" if _rebases(op) else state.layers[-1].chain_id if state.layers else ""


def _copy_base(op: CopyOp, state: ImageState) -> ImageState:
    """What a copy writes over: ``--link`` writes against an empty root, independent of its
    parent."""
    return ImageState(platform=state.platform) if op.link else state


class _EarlyStart:
    """What a COPY's probe starts once its context walk meets a change (the step is then
    likely to miss), for the re-run to take over: the hashing of its likely layer ahead,
    when the item's directory gets other entries (:mod:`builder.hashahead`), else the
    loading of the previous layer's index (:class:`builder.stepcommit.IndexLoad`)."""

    def __init__(self) -> None:
        #: What the walk said: the item's directory has other entries than at the last walk.
        self.item_renamed = False
        self.ahead: HashAhead | None = None
        self.loading: IndexLoad | None = None

    def ahead_for(self, previous: CacheRecord | None) -> HashAhead | None:
        """The hashing ahead, when it is of ``previous``'s layer (the probe's previous one)."""
        if self.ahead is None or previous is None or self.ahead.indexed.digest != previous.blob_digest:
            return None
        return self.ahead

    def indexed(self, store: Store, previous: CacheRecord) -> IndexedLayer | None:
        """:func:`indexed_layer` of ``previous``, from what was started when it was for it."""
        ahead = self.ahead_for(previous)
        if ahead is not None:
            return ahead.indexed
        if self.loading is not None and self.loading.digest == previous.blob_digest:
            return self.loading.result()
        return indexed_layer(store, previous)

    def close(self) -> None:
        if self.ahead is not None:
            self.ahead.close()


def _stacked_key(state: ImageState, link_key: str) -> str:
    """The key of the state after a rebased layer: its base's key and the layer's own, so the
    steps after it still depend on both."""
    from cache.canonical import canonical_digest

    return canonical_digest({"parent": state.cache_key or "", "link": link_key})


def _key_after(op: Op, state: ImageState, probe: Probe) -> str:
    """The cache key of the state ``op`` (probed as ``probe``) leaves: the next step's parent."""
    return _stacked_key(state, probe.key.digest) if _rebases(op) else probe.key.digest


#: What running a RUN step loads first (some 10 ms, ``subprocess`` and ``shutil`` included).
_STEP_MODULES = ("builder.exec.step", "builder.private_mounts", "builder.mounts")
_step_modules_lock = threading.Lock()
_step_modules_asked: list[bool] = []


def _load_step_modules_beside() -> None:
    """Load :data:`_STEP_MODULES` on a thread of their own, once, while a step that missed
    the cache runs before a stage's RUN: a COPY spends much of its time in the kernel and in
    OpenSSL, without the interpreter lock, and the RUN then starts its container sooner. Not
    before a miss: a fully cached build loads none of it."""
    import sys

    with _step_modules_lock:
        if _step_modules_asked or _STEP_MODULES[0] in sys.modules:
            return
        _step_modules_asked.append(True)
    threading.Thread(target=_load_step_modules, name="step-modules", daemon=True).start()


def _load_step_modules() -> None:
    import importlib

    for name in _STEP_MODULES:
        importlib.import_module(name)


class LocalRunner:
    """Runs ops on this machine against a :class:`~builder.store.store.Store`."""

    def __init__(
        self, store: Store, context: BuildContext | None, lease: Lease, options: RunnerOptions
    ) -> None:
        self._store = store
        self._context = context
        self._lease = lease
        self._options = options
        self._containers_dir = store.root / "containers"
        self._containers_dir.mkdir(exist_ok=True)
        remove_dead_workspaces(self._containers_dir)
        self._cache_lock = threading.Lock()
        self._cache: BuildCache | None = None
        self._hasher: ContextHasher | None = None
        #: The commit each ``ADD <git repo>`` ref named when its key was made: the checkout
        #: fetches that one, so the ref is asked of the remote once a build.
        self._git_commits: dict[tuple[str, str], str] = {}
        #: RUN steps started ahead, by step number, until their step takes them.
        self._prestarted: dict[int, PrestartedRun] = {}

    def close(self) -> None:
        """Flush and close the context stat cache (opened by the first keyed COPY), once
        the layer indexes (:func:`builder.stepcommit.finish_saving`) and the cache's
        per-file digests (:meth:`BuildCache.close`) being saved are."""
        from builder.stepcommit import finish_saving

        while self._prestarted:  # (the build failed before their steps)
            self._prestarted.popitem()[1].close()
        finish_saving()
        with self._cache_lock:
            try:
                if self._cache is not None:
                    self._cache.close()
            finally:
                if self._hasher is not None:
                    self._hasher.close()
                    self._hasher = None

    # bases --------------------------------------------------------------------------------

    def base_state(self, stage: Stage, base: ImageBase | ScratchBase) -> ImageState:
        if isinstance(base, ScratchBase):
            return ImageState(platform=stage.platform)
        return self.image_state(base.ref, stage)

    def image_state(self, ref: str, stage: Stage) -> ImageState:
        """An image from the store as a starting state, its layers leased (their snapshots
        are unpacked only when a step needs the files: :meth:`_ensure_snapshots`)."""
        from cache.keys import image_parent

        digest = self._image_digest(ref, stage)
        manifest, config = self._store.get_image(digest)
        stored = self._store.layers(manifest, config)
        chains = chain_ids([layer.diff_id for layer in stored])
        layers: list[LayerRef] = []
        for layer, chain_id in zip(stored, chains, strict=True):
            self._lease.add_snapshot(chain_id)
            self._lease.add_blob(layer.digest)
            layers.append(LayerRef(layer.diff_id, layer.digest, layer.size, layer.media_type, chain_id))
        inner = config.get("config") or {}
        history = tuple(config.get("history") or ())
        return ImageState(
            platform=stage.platform,
            layers=tuple(layers),
            config=dict(inner),
            history=history,
            base_digest=digest,
            cache_key=image_parent(digest),
        )

    def _image_digest(self, ref: str, stage: Stage) -> str:
        resolver = self._options.resolver
        return resolver.resolve(ref, stage.platform).digest if resolver else self._store.resolve(ref)

    # ops ----------------------------------------------------------------------------------

    def run_op(self, op: Op, state: ImageState, where: StepContext) -> StepOutcome:
        """Reuse the cached layer of ``op`` when its key matches, else run it and record it."""
        early: _EarlyStart | None = None
        on_change = None
        if isinstance(op, CopyOp) and self._may_hash_ahead(op):
            copy, started = op, _EarlyStart()  # (the closure keeps the narrowed types)
            early = started

            def on_change(item_renamed: bool) -> None:
                # Only a re-run that restamps its item's directory has bytes to hash ahead:
                # otherwise the previous tar's head stands, and its saved states serve. Its
                # index is loaded meanwhile either way.
                started.item_renamed = item_renamed
                if item_renamed:
                    started.ahead = self._hash_ahead(copy, state, where)
                    return
                previous = self._previous_on_these_layers(copy, state, where)
                if previous is not None:
                    started.loading = IndexLoad(self._store, previous)

        try:
            return self._run_op(op, state, where, on_change, early)
        finally:
            if early is not None:
                early.close()

    def _run_op(
        self,
        op: Op,
        state: ImageState,
        where: StepContext,
        on_change: Callable[[bool], None] | None,
        early: _EarlyStart | None,
    ) -> StepOutcome:
        """:meth:`run_op`; ``on_change`` starts what ``early`` holds once the probe's context
        walk meets a change."""
        prestarted = self._prestarted.pop(where.step, None)
        try:
            probe = self._probe(op, state, where, on_change=on_change)
            if probe.record is not None:
                reused = self._reuse_if_kept(op, state, probe.record)
                if reused is not None:
                    if self._options.on_record is not None:
                        self._options.on_record(probe.record)
                    return StepOutcome(reused, cached=True)
                probe = replace(probe, record=None, reason=PRUNED_MEANWHILE, details=(PRUNED_MEANWHILE,))
            if isinstance(op, Exec) and prestarted is not None and prestarted.key == probe.key.digest:
                taken, prestarted = prestarted, None
                built = self._finish_prestarted(taken, op, state)
            else:
                if not isinstance(op, Exec) and any(isinstance(later, Exec) for later in where.stage.ops):
                    _load_step_modules_beside()
                self._ensure_snapshots(state.layers)
                run_ahead = self._run_ahead(op, state, where, probe)
                built = self._run_fresh(op, state, where, probe, early, run_ahead=run_ahead)
        finally:
            if prestarted is not None:
                prestarted.close()  # not this step's after all: dropped
        layer = built.layers[-1]
        record = self._build_cache().save(
            probe,
            diff_id=layer.diff_id,
            blob_digest=layer.digest,
            size=layer.size,
            media_type=layer.media_type,
            chain_id=layer.chain_id,
            parent_chain_id=_parent_chain_id(op, state),
            created_by=op.created_by,
            created=str(built.history[-1]["created"]),
        )
        if self._options.on_record is not None:
            self._options.on_record(record)
        if self._options.explain is not None:
            self._options.explain(where.step, probe.details or (probe.reason,))
        return StepOutcome(replace(built, cache_key=_key_after(op, state, probe)), reason=probe.reason)

    def _may_hash_ahead(self, op: CopyOp) -> bool:
        """Whether a re-run of ``op`` may be spliced from its previous layer, and so its layer
        hashed ahead."""
        return not self._options.no_cache and self._options.compression == "none" and takes_from_previous(op)

    def _hash_ahead(self, op: CopyOp, state: ImageState, where: StepContext) -> HashAhead | None:
        """For a large context COPY with a previous layer, start hashing its likely re-run
        layer now, while the step is still being probed (:mod:`builder.hashahead`)."""
        from builder.hashahead import hash_ahead

        previous = self._previous_on_these_layers(op, state, where)
        if previous is None:
            return None
        try:
            return hash_ahead(
                self._store,
                self._lease,
                previous,
                destination=op.dest,
                lower_dirs=self._snapshot_dirs(_copy_base(op, state)),
                containers_dir=self._containers_dir,
                source_date_epoch=self._options.source_date_epoch,
            )
        except (OSError, KilnError):
            return None  # only a head start: the step goes on without it

    def _previous_on_these_layers(
        self, op: CopyOp, state: ImageState, where: StepContext
    ) -> CacheRecord | None:
        """The record last saved for this step, when it was built on the same layers."""
        from cache.records import previous_for_step

        previous = previous_for_step(self._store.meta, self._step_identity(op, where))
        if previous is None or previous.parent_chain_id != _parent_chain_id(op, state):
            return None
        return previous

    # cache --------------------------------------------------------------------------------

    def _build_cache(self) -> BuildCache:
        from cache.steps import BuildCache

        with self._cache_lock:
            if self._cache is None:
                options = self._options
                self._cache = BuildCache(
                    self._store, no_cache=options.no_cache, no_cache_stages=options.no_cache_stages
                )
            return self._cache

    def _context_hasher(self) -> ContextHasher:
        from cache.contenthash import ContextHasher

        with self._cache_lock:
            if self._hasher is None:
                self._hasher = ContextHasher(
                    self._store.root / "contenthash.db", scan=self._options.context_scan
                )
            return self._hasher

    def _git_key(self, source: GitSource) -> str:
        """``ADD <git repo>`` is keyed on the commit its ref names now (git ls-remote)."""
        from builder.fileops.git import resolve_commit

        with self._cache_lock:
            commit = self._git_commits.get((source.url, source.ref))
        if commit is None:
            commit = resolve_commit(source)
            with self._cache_lock:
                commit = self._git_commits.setdefault((source.url, source.ref), commit)
        return f"git:{source.url}#{commit}:{source.subdir}:{source.keep_git_dir}"

    def _git_commit_of(self, source: object) -> str | None:
        if not isinstance(source, GitSource):
            return None
        with self._cache_lock:
            return self._git_commits.get((source.url, source.ref))

    def _probe(
        self,
        op: Op,
        state: ImageState,
        where: StepContext,
        *,
        on_change: Callable[[bool], None] | None = None,
    ) -> Probe:
        """Key ``op`` on the state's key and its inputs' digests, and look for a record."""
        from cache.keys import SCRATCH
        from cache.steps import InputSources, compute_inputs

        def stage_digest(index: int) -> str:
            layers = where.states.get(index).layers
            return layers[-1].chain_id if layers else SCRATCH

        contexts: dict[str, BuildContext] = dict(self._options.named_contexts)
        if self._context is not None:
            contexts["context"] = self._context
        sources = InputSources(
            contexts,
            stage_digest,
            lambda ref: self._image_digest(ref, where.stage),
            git_digest=self._git_key,
            on_change=on_change,
        )
        inputs = compute_inputs(op, self._context_hasher(), sources)
        return self._build_cache().probe(
            op,
            parent=LINK_PARENT if _rebases(op) else state.cache_key or SCRATCH,
            parent_chain_id=_parent_chain_id(op, state),
            platform=state.platform,
            inputs=inputs,
            step=self._step_identity(op, where),
            stage=self._cache_stage(where),
        )

    def _cache_stage(self, where: StepContext) -> str:
        """How ``--no-cache-filter`` would name ``where``'s stage: its name if the filter
        holds it, else its index."""
        filtered = bool(where.stage.name) and where.stage.name in self._options.no_cache_stages
        return where.stage.name if filtered else str(where.stage.index)

    def _step_identity(self, op: Op, where: StepContext) -> str:
        """What names ``op``'s step across builds: the Dockerfile, the stage, the position."""
        from cache.records import step_identity

        stage = where.stage.name or str(where.stage.index)
        fs_ops = [candidate for candidate in where.stage.ops if not isinstance(candidate, ConfigOp)]
        position = next(index for index, candidate in enumerate(fs_ops) if candidate is op)
        return step_identity(self._options.dockerfile, stage, position)

    def _reuse_if_kept(self, op: Op, state: ImageState, record: CacheRecord) -> ImageState | None:
        """:meth:`_reuse`, its leases taken under the shared gc lock and the layer then
        checked: a prune (which holds that lock exclusively) that removed the layer between
        the cache lookup and the lease makes the step a miss instead of a broken image."""
        with self._store.writing():
            grown = self._reuse(op, state, record)
            if self._store.blobs.has(record.blob_digest):
                return grown
        return None

    def _reuse(self, op: Op, state: ImageState, record: CacheRecord) -> ImageState:
        """The state after ``op`` from its record: nothing runs, nothing is unpacked."""
        chain_id, key = record.chain_id, record.key
        if _rebases(op):
            # A --link layer recorded on one base, reused on this one: same blob, new chain.
            parent = state.layers[-1].chain_id if state.layers else ""
            chain_id = chain_ids([parent, record.diff_id])[-1] if parent else record.diff_id
            key = _stacked_key(state, record.key)
        self._lease.add_blob(record.blob_digest)
        self._lease.add_snapshot(chain_id)
        layer = LayerRef(record.diff_id, record.blob_digest, record.size, record.media_type, chain_id)
        grown = state.with_layer(layer).with_config(op.config)
        grown = grown.with_history(op.created_by, empty_layer=False, created=record.created)
        return replace(grown, cache_key=key)

    def _ensure_snapshots(self, layers: tuple[LayerRef, ...]) -> None:
        """Unpack the snapshots of ``layers`` that are missing (cache hits and imported
        records give layers whose snapshot may have been pruned or never unpacked)."""
        parent = ""
        for layer in layers:
            self._store.snapshots.ensure(layer.chain_id, parent, layer.diff_id, layer.digest)
            parent = layer.chain_id

    def _run_fresh(
        self,
        op: Op,
        state: ImageState,
        where: StepContext,
        probe: Probe,
        early: _EarlyStart | None = None,
        *,
        run_ahead: tuple[Exec, str] | None = None,
    ) -> ImageState:
        """Run ``op`` and commit its layer; for a COPY, ``run_ahead`` is the next RUN and its
        key, whose container then starts on the copied files before the commit
        (:mod:`builder.prestart`)."""
        from builder.fileops.mkdir import make_workdir
        from builder.workspace import step_workspace

        indexed, previous, opened = takes_from_previous(op), None, None
        prestarted: PrestartedRun | None = None
        with ExitStack() as keep_workspace, ExitStack() as cleanup:
            workspace = keep_workspace.enter_context(step_workspace(self._containers_dir))
            if isinstance(op, Exec):
                self._run_exec(op, self._snapshot_dirs(state), workspace, where)
            elif isinstance(op, CopyOp):
                from builder.fileops.donor import DonorConflictError

                ahead = early.ahead_for(probe.previous) if early is not None else None
                if not indexed or probe.previous is None:
                    indexed_previous = None
                elif early is not None:
                    indexed_previous = early.indexed(self._store, probe.previous)
                else:
                    indexed_previous = indexed_layer(self._store, probe.previous)
                donor = self._donor(op, state, probe, workspace, indexed_previous)
                if donor is not None and donor.in_place and ahead is not None:
                    opened, donor.now_ns = ahead.opened, ahead.now_ns  # its hashing well under way
                elif donor is not None and donor.in_place and indexed_previous is not None:
                    opened = open_layer(self._store, self._lease, indexed_previous)
                    if opened is not None:
                        cleanup.callback(opened.close)
                if donor is not None and donor.in_place and opened is not None:
                    donor.on_rewritten = self._foretelling_rewritten(opened, donor.upper)
                try:
                    renamed = early is not None and early.item_renamed
                    self._run_copy(
                        op, state, workspace, where, donor=donor, opened=opened, item_renamed=renamed
                    )
                except DonorConflictError:
                    workspace.empty_upper()
                    donor = None
                    self._run_copy(op, state, workspace, where)
                previous = indexed_previous if donor is not None and donor.claimed else None
                if opened is not None and donor is not None and donor.kept_names:
                    opened.keep(donor.kept_names, donor.clean_dirs)
                if run_ahead is not None:
                    with suppress(OSError):  # only a head start: the RUN runs anyway
                        prestarted = self._prestart(
                            *run_ahead, self._snapshot_dirs(state), workspace.upper, where
                        )
                    if prestarted is not None:
                        # The commit's Python would share the interpreter with the RUN's
                        # setup: let the container start first, the commit runs beside it.
                        prestarted.wait_started()
            elif isinstance(op, MkdirOp):
                with self._mounted(state, workspace) as rootfs:
                    make_workdir(op, dest_root=rootfs)
            else:
                raise BuildError(f"unexpected op {type(op).__name__}", op.location)
            try:
                layer = commit_layer(
                    self._store,
                    self._lease,
                    workspace.upper,
                    state.layers[-1].chain_id if state.layers else "",
                    compression=self._options.compression,
                    source_date_epoch=self._options.source_date_epoch,
                    index=indexed,
                    previous=previous,
                    opened=opened if previous is not None else None,
                    keep_upper=prestarted is not None,
                )
            except BaseException:
                if prestarted is not None:
                    prestarted.close()  # before this workspace goes: the container reads it
                raise
            if prestarted is not None:
                # This step's workspace stays until the RUN on its files is done.
                prestarted.cleanup.enter_context(keep_workspace.pop_all())
                self._prestarted[where.step + 1] = prestarted
        return self._with_fresh_layer(op, state, layer)

    def _with_fresh_layer(self, op: Op, state: ImageState, layer: LayerRef) -> ImageState:
        """The state after ``op`` made ``layer`` just now."""
        grown = state.with_layer(layer).with_config(op.config)
        created = utc_timestamp(self._options.source_date_epoch)
        return grown.with_history(op.created_by, empty_layer=False, created=created)

    def _run_ahead(
        self, op: Op, state: ImageState, where: StepContext, probe: Probe
    ) -> tuple[Exec, str] | None:
        """The RUN after the COPY ``op`` and its key, when its container may start before the
        COPY's layer is committed: it is sure to miss the cache (:mod:`builder.prestart`)."""
        if not isinstance(op, CopyOp):
            return None
        from builder.prestart import next_run

        run = next_run(op, where.stage)
        if run is None:
            return None
        from cache.keys import op_key

        parent = _key_after(op, state, probe)
        key = op_key(run, parent=parent, platform=state.platform, inputs={}).digest
        if self._build_cache().may_hit(key, stage=self._cache_stage(where)):
            return None
        return run, key

    def _prestart(
        self, op: Exec, key: str, lower_dirs: list[Path], copied: Path, where: StepContext
    ) -> PrestartedRun:
        """Start the RUN ``op`` (keyed ``key``) over ``lower_dirs`` and ``copied``, the upper
        dir of the COPY at ``where``, not yet committed. ``copied`` is named by a descriptor
        (``/proc/self/fd/N``) held until the RUN is done, since the commit renames it into
        the store, maybe before the container's overlay is mounted."""
        import os

        from builder.prestart import HeldSink, PrestartedRun
        from builder.workspace import step_workspace

        cleanup = ExitStack()
        try:
            held = os.open(copied, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            cleanup.callback(os.close, held)
            workspace = cleanup.enter_context(step_workspace(self._containers_dir))
        except BaseException:
            cleanup.close()
            raise
        output = HeldSink(where.sink)
        run_where = StepContext(where.stage, where.step + 1, output, where.states)
        lowers = [*lower_dirs, Path(f"/proc/self/fd/{held}")]
        prestarted = PrestartedRun(op, key, workspace, cleanup, output)
        prestarted.start(lambda started: self._run_exec(op, lowers, workspace, run_where, started))
        return prestarted

    def _finish_prestarted(self, prestarted: PrestartedRun, op: Exec, state: ImageState) -> ImageState:
        """The RUN ``op``, its container started ahead: its output passed on, its layer
        committed once it is done."""
        prestarted.output.release()
        with prestarted.cleanup:
            prestarted.wait()
            layer = commit_layer(
                self._store,
                self._lease,
                prestarted.workspace.upper,
                state.layers[-1].chain_id if state.layers else "",
                compression=self._options.compression,
                source_date_epoch=self._options.source_date_epoch,
            )
        return self._with_fresh_layer(op, state, layer)

    def _run_exec(
        self,
        op: Exec,
        lower_dirs: list[Path],
        workspace: StepWorkspace,
        where: StepContext,
        on_started: Callable[[], None] | None = None,
    ) -> None:
        from builder.exec.step import run_step, step_failure
        from builder.private_mounts import private_mounts

        def forward(chunk: bytes) -> None:
            where.sink(StepLog(where.step, chunk))

        if op.security == "insecure" and not self._options.allow_insecure:
            raise BuildError(
                "RUN --security=insecure needs the entitlement: pass --allow security.insecure",
                op.location,
            )
        options = self._options
        with (
            self._mount_sources(op, where) as extra_mounts,
            private_mounts(op, options.secrets, options.ssh_sockets) as private,
        ):
            result = run_step(
                lower_dirs,
                workspace.upper,
                argv=op.argv,
                env=(*op.env, *private.env),
                cwd=op.cwd,
                user=op.user,
                network="none" if op.network == "none" else "host",
                extra_mounts=[*extra_mounts, *private.mounts],
                on_output=forward,
                runtime=options.runtime,
                privileged=op.security == "insecure",
                on_started=on_started,
            )
        if result.exit_code != 0:
            raise step_failure(result, op.location, op.argv)

    @contextmanager
    def _mount_sources(self, op: Exec, where: StepContext) -> Iterator[list[SpecMount]]:
        from builder.mounts import spec_mounts

        with spec_mounts(op, self._store.root, self._source_dir, where) as mounts:
            yield mounts

    def _run_copy(
        self,
        op: CopyOp,
        state: ImageState,
        workspace: StepWorkspace,
        where: StepContext,
        *,
        donor: DonorLayer | None = None,
        opened: OpenedLayer | None = None,
        item_renamed: bool = False,
    ) -> None:
        """Copy into the step's upper dir; with a donor taken in place, restamp the tree once
        the copy is done, and when the item's directory is likely to get other entries
        (``item_renamed``) foretell the layer's restamped head meanwhile (``opened`` is the
        previous layer)."""
        from builder.fileops.copy import copy_into

        chown = self._resolve_chown(op, state) if op.chown else None
        base = _copy_base(op, state)
        with ExitStack() as stack:
            lower = None
            if donor is not None and donor.in_place:
                from builder.workspace import rootfs_view

                lower = stack.enter_context(rootfs_view(self._snapshot_dirs(base), self._containers_dir))
                if opened is not None and opened.layer.prehash is None and item_renamed:
                    self._foretell(op, donor, lower, opened)
            with self._mounted(base, workspace) as rootfs, self._source_dir(op.source, where) as source:
                context = self._context_for(op.source) if isinstance(op.source, ContextSource) else None
                copy_into(
                    op,
                    dest_root=rootfs,
                    source_root=source,
                    context=context,
                    chown=chown,
                    donor=donor,
                    upper=workspace.upper,
                    git_commit=self._git_commit_of(op.source),
                )
            if donor is not None:
                donor.link_claimed()
                if lower is not None:
                    donor.restamp_items(lower)

    def _foretelling_rewritten(self, opened: OpenedLayer, tree: str) -> Callable[[bytes], None]:
        """What a re-run taking ``tree`` in place calls once it has rewritten its one file:
        the layer with that file's new entry is hashed while the copy finishes and the layer
        is written (:func:`builder.stepcommit.foretell_rewritten`)."""
        epoch = self._options.source_date_epoch

        def rewritten(name: bytes) -> None:
            foretell_rewritten(opened, name, tree, epoch)

        return rewritten

    def _foretell(self, op: CopyOp, donor: DonorLayer, lower: Path, opened: OpenedLayer) -> None:
        """Hash the layer's likely bytes while the copy runs: the previous tar, with the
        directories restamping will touch given the copy's time (:func:`foretell_copy`)."""
        from builder.hashahead import foretell_copy

        foretell_copy(
            opened,
            tree=Path(donor.upper),
            destination=op.dest,
            lower=lower,
            now_ns=donor.now_ns,
            source_date_epoch=self._options.source_date_epoch,
        )

    def _donor(
        self,
        op: CopyOp,
        state: ImageState,
        probe: Probe,
        workspace: StepWorkspace,
        indexed: IndexedLayer | None,
    ) -> DonorLayer | None:
        """The previous layer of this COPY step when it differs from this run only in some
        context files: those that did not change are linked from its snapshot (``indexed``
        is that layer's index, which spares looking at each file of the snapshot)."""
        from builder.fileops.donor import AllBut, DonorLayer

        previous, changes = probe.previous, probe.previous_changes
        if previous is None or not changes or not takes_from_previous(op):
            return None
        new_preimage = probe.key.preimage
        if any(
            previous.preimage.get(name) != value for name, value in new_preimage.items() if name != "inputs"
        ):
            return None
        parent_chain_id = _parent_chain_id(op, state)
        if previous.parent_chain_id != parent_chain_id or not self._store.snapshots.has(previous.chain_id):
            return None
        if not any(found.any_unchanged for found in changes.values()):
            return None
        # Taken in place only when every file it holds is still selected: a copy writes
        # files, it never removes one.
        removed = any(found.removed for found in changes.values())
        in_place = (
            indexed is not None and not removed and self._take_previous(previous.chain_id, indexed, workspace)
        )
        selections = probe.inputs.selections
        single = next(iter(changes.values())) if in_place and len(selections) == 1 == len(changes) else None
        if single is not None:
            # Brought up to date from the changes alone: the copier is given only what
            # differs, so every other name may count as unchanged.
            unchanged: Collection[str] | AllBut = AllBut(single.touched())
        else:
            unchanged = [name for found in changes.values() for name in found.unchanged_names()]
        donor = DonorLayer(
            workspace.upper if in_place else self._store.snapshots.path(previous.chain_id),
            unchanged,
            dest_root=workspace.merged,
            upper=workspace.upper,
            index=indexed.index.entries if indexed is not None else None,
            in_place=in_place,
            graveyard=workspace.directory / "replaced",
        )
        if single is not None:
            from builder.fileops.changeset import ChangeSet

            donor.changes = ChangeSet(single, single.new.listings)
        return donor

    def _take_previous(self, chain_id: str, indexed: IndexedLayer, workspace: StepWorkspace) -> bool:
        """Whether the previous layer's snapshot became this step's upper dir
        (:mod:`builder.store.takeover`)."""
        from builder.store.takeover import take_snapshot

        # Only the very tree the index describes: its inodes are what the layer reuses.
        return take_snapshot(self._store, chain_id, workspace.upper, identity=indexed.index.root)

    def _resolve_chown(self, op: CopyOp, state: ImageState) -> tuple[int, int]:
        """``--chown`` names resolve in the destination image (also for ``--link``)."""
        from builder.fileops.owner import resolve_owner
        from builder.workspace import rootfs_view

        with rootfs_view(self._snapshot_dirs(state), self._containers_dir) as rootfs:
            try:
                return resolve_owner(op.chown, rootfs)
            except KilnError as err:
                raise BuildError(f"invalid --chown {op.chown!r}: {err}", op.location) from err

    # sources ------------------------------------------------------------------------------

    def _context_for(self, source: ContextSource) -> BuildContext:
        if source.name == "context":
            if self._context is None:
                raise StoreError("this build has no context")
            return self._context
        try:
            return self._options.named_contexts[source.name]
        except KeyError:
            raise StoreError(f"no build context named {source.name!r}") from None

    @contextmanager
    def _source_dir(self, source: object, where: StepContext) -> Iterator[Path | None]:
        """The directory a COPY or mount reads: the context, or a stage's or image's rootfs."""
        from builder.workspace import rootfs_view

        if isinstance(source, ContextSource):
            yield self._context_for(source).root
        elif isinstance(source, StageSource):
            stage_state = where.states.get(source.stage)
            self._ensure_snapshots(stage_state.layers)
            with rootfs_view(self._snapshot_dirs(stage_state), self._containers_dir) as rootfs:
                yield rootfs
        elif isinstance(source, ImageSource):
            image_state = self.image_state(source.ref, where.stage)
            self._ensure_snapshots(image_state.layers)
            with rootfs_view(self._snapshot_dirs(image_state), self._containers_dir) as rootfs:
                yield rootfs
        else:
            yield None

    # layers -------------------------------------------------------------------------------

    def _snapshot_dirs(self, state: ImageState) -> list[Path]:
        return [self._store.snapshots.path(layer.chain_id) for layer in state.layers]

    @contextmanager
    def _mounted(self, state: ImageState, workspace: StepWorkspace) -> Iterator[Path]:
        from builder.exec.overlay import OverlayMount

        with OverlayMount(self._snapshot_dirs(state), workspace.upper, workspace.work, workspace.merged):
            yield workspace.merged
