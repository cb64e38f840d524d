"""One build for several platforms: a graph per platform, one image each, one index naming them.

The frontend converts the Dockerfile once per target platform (TARGETPLATFORM, TARGETARCH
and the rest set for each). A ``FROM --platform=$BUILDPLATFORM`` stage then comes out the
same in every graph, and must be built once: :class:`SharedStageRunner` keys every stage by
its content (its ops, platform and base, and the keys of the stages it reads) and hands a
stage already built for an earlier platform its results again, reported as cached steps.
This holds with the layer cache off (``--no-cache``), as BuildKit's solver does.

The images are stored unnamed, then an OCI index lists their manifests with their platforms
(variant included) and takes the ``-t`` names, so archives and ``--push`` carry them all.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import field

from builder.build import image_config
from builder.context import BuildContext
from builder.emulation import check_graph_runnable
from builder.events import (
    BuildFinished,
    Event,
    EventSink,
    StepCached,
    StepDone,
    StepFailed,
    StepLog,
    StepStarted,
)
from builder.graph import BuildGraph, ImageBase, Op, Platform, ScratchBase, Stage, to_jsonable
from builder.imagestate import ImageState, utc_timestamp
from builder.lazyclasses import dataclass
from builder.runner import LocalRunner, RunnerOptions
from builder.solver import Solver, StepContext, StepOutcome, StepRunner, number_steps
from builder.store.store import Store, StoredLayer

#: The events that carry a step number.
STEP_EVENTS = (StepStarted, StepCached, StepLog, StepDone, StepFailed)


@dataclass(frozen=True)
class PlatformImage:
    """The image built for one platform: its manifest digest and image id."""

    platform: Platform
    manifest_digest: str
    image_id: str


@dataclass(frozen=True)
class MultiPlatformResult:
    """The index naming every platform's image, and those images in platform order."""

    index_digest: str
    images: tuple[PlatformImage, ...]
    names: tuple[str, ...]
    cached_steps: int = 0
    total_steps: int = 0


@dataclass(frozen=True)
class MultiPlatformRequest:
    """One graph per target platform, in the order the index lists them."""

    graphs: Mapping[Platform, BuildGraph]
    context: BuildContext | None
    tags: Sequence[str] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    options: RunnerOptions = field(default_factory=RunnerOptions)


def stage_keys(graph: BuildGraph) -> dict[int, str]:
    """A content key for every stage: equal keys in two graphs build the same thing.

    The stage's index, name and source location do not count (the same Dockerfile gives
    them to every platform's graph anyway); what the stage reads counts by its own key.
    """
    keys: dict[int, str] = {}

    def key_of(stage: Stage) -> str:
        if stage.index not in keys:
            document = {
                "base": to_jsonable(stage.base),
                "platform": str(stage.platform),
                "ops": [_op_document(op) for op in stage.ops],
                "base_config": to_jsonable(stage.base_config),
                "reads": {str(index): key_of(graph.stage(index)) for index in sorted(stage.reads)},
            }
            encoded = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
            keys[stage.index] = hashlib.sha256(encoded).hexdigest()
        return keys[stage.index]

    for stage in graph.stages:
        key_of(stage)
    return keys


def _op_document(op: Op) -> object:
    """An op without its source location: moving a line does not change what it builds."""
    document = to_jsonable(op)
    if isinstance(document, dict):
        document.pop("location", None)
    return document


class SharedStageRunner:
    """A step runner that builds each distinct stage once across the graphs it serves.

    Call :meth:`use` with a graph before solving it; results are remembered by (stage key,
    step number within the stage), and a remembered step is returned as cached.
    """

    def __init__(self, inner: StepRunner) -> None:
        self._inner = inner
        self._keys: dict[int, str] = {}
        self._bases: dict[str, ImageState] = {}
        self._steps: dict[tuple[str, int], ImageState] = {}
        self._lock = threading.Lock()
        self.reused_steps = 0

    def use(self, graph: BuildGraph) -> None:
        """Key the stages of the graph solved next."""
        self._keys = stage_keys(graph)

    def base_state(self, stage: Stage, base: ImageBase | ScratchBase) -> ImageState:
        key = self._keys[stage.index]
        with self._lock:
            known = self._bases.get(key)
        if known is not None:
            return known
        state = self._inner.base_state(stage, base)
        with self._lock:
            self._bases.setdefault(key, state)
        return state

    def run_op(self, op: Op, state: ImageState, where: StepContext) -> StepOutcome:
        memo_key = (self._keys[where.stage.index], where.stage.ops.index(op))
        with self._lock:
            known = self._steps.get(memo_key)
            if known is not None:
                self.reused_steps += 1
        if known is not None:
            return StepOutcome(known, cached=True, reason="built for an earlier platform")
        outcome = self._inner.run_op(op, state, where)
        with self._lock:
            self._steps.setdefault(memo_key, outcome.state)
        return outcome


def platform_sink(sink: EventSink, platform: Platform, first_step: int) -> EventSink:
    """Forward one platform's step events with numbers after the earlier platforms' steps
    and names led by the platform (``[linux/arm64] [stage-1 2/3] RUN ...``), so a renderer
    that tracks steps by number never mixes two platforms' steps."""

    def forward(event: Event) -> None:
        if isinstance(event, StepStarted):
            event = dataclasses.replace(event, name=f"[{platform}] {event.name}")
        if isinstance(event, STEP_EVENTS):
            event = dataclasses.replace(event, step=event.step + first_step)
        sink(event)

    return forward


def run_multiplatform_build(
    store: Store, request: MultiPlatformRequest, sink: EventSink
) -> MultiPlatformResult:
    """Build every platform's graph into ``store`` and name the index over them.

    Every graph is checked for runnable RUN steps first (a foreign platform needs a
    binfmt_misc handler), so a missing emulator fails the build before any step runs.
    """
    started = time.monotonic()
    for graph in request.graphs.values():
        check_graph_runnable(graph)
    epoch = request.options.source_date_epoch
    created = utc_timestamp(epoch) if epoch is not None else utc_timestamp()
    images: list[PlatformImage] = []
    cached_steps = total_steps = 0
    first_step = 0  # each platform's steps are numbered after the earlier platforms'
    with store.lease() as lease:
        runner = LocalRunner(store, request.context, lease, request.options)
        shared = SharedStageRunner(runner)
        try:
            for platform, graph in request.graphs.items():
                shared.use(graph)
                solver = Solver(
                    shared,
                    platform_sink(sink, platform, first_step),
                    source_date_epoch=request.options.source_date_epoch,
                )
                first_step += number_steps(graph).total_steps
                state = solver.solve(graph)
                cached_steps += solver.cached_steps
                total_steps += solver.total_steps
                config = image_config(state, request.labels, created)
                layers = [
                    StoredLayer(layer.digest, layer.diff_id, layer.size, layer.media_type)
                    for layer in state.layers
                ]
                digest = store.put_image(config, layers, None)
                lease.add_image(digest)
                image_id = str(store.manifest(digest)["config"]["digest"])
                images.append(PlatformImage(platform, digest, image_id))
        finally:
            runner.close()
        first_name = request.tags[0] if request.tags else None
        index_digest = store.put_index(
            [(image.manifest_digest, image.platform) for image in images], first_name
        )
        for name in request.tags[1:]:
            store.tag(index_digest, name)
    names = tuple(request.tags)
    sink(
        BuildFinished(
            index_digest,
            time.monotonic() - started,
            names,
            cached_steps=cached_steps,
            total_steps=total_steps,
        )
    )
    return MultiPlatformResult(index_digest, tuple(images), names, cached_steps, total_steps)
