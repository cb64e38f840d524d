"""One build, end to end, below the command line: graph in, image in the store out.

The CLI parses the Dockerfile into a graph (a frontend's job); this module runs the graph
with the :class:`~builder.solver.Solver` and the :class:`~builder.runner.LocalRunner`,
writes the final image's config and manifest into the store, and names it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import field
from typing import Any

from builder.context import BuildContext
from builder.emulation import check_graph_runnable
from builder.events import BuildFinished, EventSink
from builder.graph import BuildGraph
from builder.imagestate import ImageState, utc_timestamp
from builder.lazyclasses import dataclass
from builder.runner import LocalRunner, RunnerOptions
from builder.solver import Solver
from builder.store.store import Store, StoredLayer


@dataclass(frozen=True)
class BuildResult:
    """The built image: its manifest digest, its image id (config digest), its names."""

    manifest_digest: str
    image_id: str
    names: tuple[str, ...]
    state: ImageState
    cached_steps: int = 0
    total_steps: int = 0


@dataclass(frozen=True)
class BuildRequest:
    """What to build and how to name it."""

    graph: BuildGraph
    context: BuildContext | None
    tags: Sequence[str] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    options: RunnerOptions = field(default_factory=RunnerOptions)


def image_config(state: ImageState, labels: Mapping[str, str], created: str) -> dict[str, Any]:
    """The OCI image config of a final state, in the field order Docker writes."""
    inner = dict(state.config)
    if labels:
        merged = dict(inner.get("Labels") or {})  # type: ignore[call-overload]
        merged.update(labels)
        inner["Labels"] = merged
    config: dict[str, Any] = {"architecture": state.platform.architecture}
    if state.platform.variant:
        config["variant"] = state.platform.variant
    config.update(
        {
            "config": inner,
            "created": created,
            "history": [dict(entry) for entry in state.history],
            "os": state.platform.os,
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in state.layers]},
        }
    )
    return config


def _store_image(
    store: Store, request: BuildRequest, config: dict[str, Any], layers: Sequence[StoredLayer]
) -> str:
    """Write the image, or hand back the stored one this build made before
    (:mod:`builder.image_reuse`), and give it the request's names. Under the shared gc lock,
    so a prune cannot take the image found between finding it and naming it."""
    from builder.image_reuse import remember_image, stored_image, timeless_digest

    timeless = timeless_digest(config)
    with store.writing():
        # With SOURCE_DATE_EPOCH the timestamps are the build's own, and part of the image.
        reuse = not request.options.no_cache and request.options.source_date_epoch is None
        known = stored_image(store, timeless) if reuse else None
        if known is None:
            first_name = request.tags[0] if request.tags else None
            known = store.put_image(config, layers, first_name)
            if reuse:
                remember_image(store, timeless, known)
        for name in request.tags:
            store.tag(known, name)
    return known


def run_build(store: Store, request: BuildRequest, sink: EventSink) -> BuildResult:
    """Build ``request.graph`` into ``store``; raise a :class:`~builder.errors.KilnError` on failure."""
    started = time.monotonic()
    check_graph_runnable(request.graph)  # a foreign RUN needs binfmt_misc: say so up front
    from builder.exec.deferred import deferring

    with store.lease() as lease, deferring():
        runner = LocalRunner(store, request.context, lease, request.options)
        solver = Solver(runner, sink, source_date_epoch=request.options.source_date_epoch)
        try:
            state = solver.solve(request.graph)
        finally:
            runner.close()
        epoch = request.options.source_date_epoch
        created = utc_timestamp(epoch) if epoch is not None else utc_timestamp()
        config = image_config(state, request.labels, created)
        layers = [
            StoredLayer(layer.digest, layer.diff_id, layer.size, layer.media_type) for layer in state.layers
        ]
        manifest_digest = _store_image(store, request, config, layers)
    manifest = store.manifest(manifest_digest)
    image_id = str(manifest["config"]["digest"])
    names = tuple(request.tags)
    sink(
        BuildFinished(
            image_id,
            time.monotonic() - started,
            names,
            cached_steps=solver.cached_steps,
            total_steps=solver.total_steps,
        )
    )
    return BuildResult(manifest_digest, image_id, names, state, solver.cached_steps, solver.total_steps)
