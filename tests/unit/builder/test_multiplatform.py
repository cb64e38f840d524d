"""Multi-platform pieces without containers: stage keys across per-platform graphs, the
runner wrapper that builds a shared stage once, ``--platform`` lists, and store indexes."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.cli.platform_builds import parse_platform_list
from builder.errors import StoreError, UsageError
from builder.events import Event, StepCached
from builder.graph import BuildGraph, ImageBase, Op, Platform, ScratchBase, Stage
from builder.imagestate import ImageState
from builder.multiplatform import SharedStageRunner, stage_keys
from builder.platform_index import add_platform_image, platform_images
from builder.resolver import EmptyResolver
from builder.solver import Solver, StepContext, StepOutcome
from builder.store.store import Store
from frontends.dockerfile.convert import build_graph
from frontends.dockerfile.parser import parse

AMD64 = Platform("linux", "amd64")
ARM64 = Platform("linux", "arm64")
CROSS = """\
FROM --platform=$BUILDPLATFORM busybox AS build
RUN echo built > /out
FROM busybox
ARG TARGETARCH
RUN echo $TARGETARCH > /arch
COPY --from=build /out /out
"""


def _graph(platform: Platform) -> BuildGraph:
    return build_graph(parse(CROSS), resolver=EmptyResolver(), platform=platform)


def test_build_platform_stage_has_one_key_across_platforms() -> None:
    amd64_keys, arm64_keys = stage_keys(_graph(AMD64)), stage_keys(_graph(ARM64))
    assert amd64_keys[0] == arm64_keys[0]
    assert amd64_keys[1] != arm64_keys[1]


class CountingRunner:
    """A step runner that records every op it really runs and adds no layers."""

    def __init__(self) -> None:
        self.ran: list[tuple[str, str]] = []

    def base_state(self, stage: Stage, base: ImageBase | ScratchBase) -> ImageState:
        return ImageState(platform=stage.platform)

    def run_op(self, op: Op, state: ImageState, where: StepContext) -> StepOutcome:
        self.ran.append((str(where.stage.platform), getattr(op, "created_by", "")))
        return StepOutcome(state.with_history(getattr(op, "created_by", ""), empty_layer=True))


def test_shared_stage_runs_once_and_reports_cached() -> None:
    inner = CountingRunner()
    shared = SharedStageRunner(inner)
    events: list[Event] = []
    for platform in (AMD64, ARM64):
        graph = _graph(platform)
        shared.use(graph)
        Solver(shared, events.append).solve(graph)
    build_runs = [entry for entry in inner.ran if "echo built" in entry[1]]
    assert len(build_runs) == 1
    assert shared.reused_steps == 1
    assert sum(1 for event in events if isinstance(event, StepCached)) == 1
    arch_runs = sorted(entry[0] for entry in inner.ran if "TARGETARCH" in entry[1] or "/arch" in entry[1])
    assert arch_runs == ["linux/amd64", "linux/arm64"]


def test_platform_list_keeps_order_and_drops_repeats() -> None:
    assert parse_platform_list("linux/arm64,linux/amd64,linux/arm64/v8") == [ARM64, AMD64]
    assert parse_platform_list(None) == []
    with pytest.raises(UsageError):
        parse_platform_list("linux/amd64,,linux/arm64")


def _image(store: Store, architecture: str) -> str:
    config = {"architecture": architecture, "os": "linux", "config": {}}
    return store.put_image(config, [])


def test_index_resolves_per_platform(tmp_path: Path) -> None:
    with Store.open(tmp_path / "store") as store:
        amd64, arm64 = _image(store, "amd64"), _image(store, "arm64")
        index = store.put_index([(amd64, AMD64), (arm64, Platform("linux", "arm64", "v8"))], "multi:1")
        assert store.resolve("multi:1") == index
        assert store.resolve_for("multi:1", AMD64) == amd64
        assert store.resolve_for("multi:1", ARM64) == arm64
        with pytest.raises(
            StoreError, match=r"has no image for linux/s390x \(it offers linux/amd64, linux/arm64/v8\)"
        ):
            store.resolve_for("multi:1", Platform("linux", "s390x"))
        assert platform_images(store, index) == [(amd64, AMD64), (arm64, Platform("linux", "arm64", "v8"))]


def test_adding_a_platform_makes_an_index_and_replaces_the_same_platform(tmp_path: Path) -> None:
    with Store.open(tmp_path / "store") as store:
        amd64 = _image(store, "amd64")
        assert add_platform_image(store, "base", amd64, AMD64) == amd64
        arm64 = _image(store, "arm64")
        index = add_platform_image(store, "base", arm64, ARM64)
        assert platform_images(store, index) == [(amd64, AMD64), (arm64, ARM64)]
        newer_arm64 = store.put_image({"architecture": "arm64", "os": "linux", "config": {"User": "1"}}, [])
        replaced = add_platform_image(store, "base", newer_arm64, ARM64)
        assert platform_images(store, replaced) == [(amd64, AMD64), (newer_arm64, ARM64)]


def test_prune_keeps_the_manifests_of_a_named_index(tmp_path: Path) -> None:
    from builder.store.gc import prune

    with Store.open(tmp_path / "store") as store:
        amd64, arm64 = _image(store, "amd64"), _image(store, "arm64")
        index = store.put_index([(amd64, AMD64), (arm64, ARM64)], "multi")
        report = prune(store)
        assert report.images == []
        assert store.resolve_for("multi", ARM64) == arm64
        assert store.blobs.has(index)


def test_platform_sink_numbers_steps_after_earlier_platforms_and_names_the_platform() -> None:
    from builder.events import StepDone, StepStarted
    from builder.multiplatform import platform_sink

    seen: list[Event] = []
    forward = platform_sink(seen.append, ARM64, 5)
    forward(StepStarted(2, "[build 2/2] RUN make", None))
    forward(StepDone(2, 0.5))
    assert seen == [StepStarted(7, "[linux/arm64] [build 2/2] RUN make", None), StepDone(7, 0.5)]
