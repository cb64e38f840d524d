"""The cache over a simulated stage: which steps hit, which miss, and why.

A stand-in runner keys each op through :class:`BuildCache`, and on a miss writes a real
layer into a real store and saves the record, as the step runner does.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from builder.context import BuildContext
from builder.errors import ContextError
from builder.graph import ContextSource, CopyOp, Exec, ImageSource, MkdirOp, Platform, StageSource, UrlSource
from builder.source import SourceSpan
from builder.store.snapshots import chain_ids
from builder.store.store import Store
from cache.contenthash import ContextHasher
from cache.keys import image_parent
from cache.records import input_files, previous_for_step, step_identity
from cache.steps import (
    OTHER_PARENT_LAYERS,
    BuildCache,
    InputSources,
    compute_inputs,
)
from tests.fixtures.cache_records import put_layer
from tests.fixtures.context_files import write_old_files

AMD64 = Platform("linux", "amd64")
BASE = image_parent("sha256:" + "a" * 64)


def span(line: int) -> SourceSpan:
    return SourceSpan("Dockerfile", line, line)


def stage_ops(version: str = "1") -> list[Exec | CopyOp | MkdirOp]:
    return [
        MkdirOp(span(2), "WORKDIR /app", "/app"),
        Exec(span(3), "RUN setup", ("/bin/sh", "-c", "setup"), ("PATH=/bin",), "/app"),
        CopyOp(span(4), "COPY app /app", ContextSource(), ("app",), "/app/"),
        Exec(
            span(6),
            "RUN make",
            ("/bin/sh", "-c", "make"),
            ("PATH=/bin", f"VERSION={version}"),
            "/app",
            build_args=(f"VERSION={version}",),
        ),
        CopyOp(span(7), "COPY README /", ContextSource(), ("README",), "/"),
    ]


@pytest.fixture
def context_root(tmp_path: Path) -> Path:
    return write_old_files(
        tmp_path / "ctx", {"app/main.py": "print(1)\n", "README": "hi\n", "notes.txt": "n\n"}
    )


class Stage:
    """Runs a list of ops through the cache; returns ``(cached?, reason)`` per op."""

    def __init__(self, store: Store, tmp_path: Path, context_root: Path) -> None:
        self.store = store
        self.tmp_path = tmp_path
        self.context_root = context_root
        self.hasher = ContextHasher(tmp_path / "contenthash.db")
        self.builds = 0

    def build(
        self,
        ops: Sequence[Exec | CopyOp | MkdirOp],
        *,
        base: str = BASE,
        no_cache: bool = False,
        no_cache_stages: Sequence[str] = (),
    ) -> list[tuple[bool, str]]:
        cache = BuildCache(self.store, no_cache=no_cache, no_cache_stages=no_cache_stages)
        self.builds += 1
        sources = InputSources(
            {"context": BuildContext.open(self.context_root)},
            stage_digest=lambda index: f"stage-{index}",
            image_digest=lambda ref: f"manifest-of-{ref}",
        )
        parent, parent_chain, diff_ids = base, "", []
        outcome = []
        for position, op in enumerate(ops, start=2):
            inputs = compute_inputs(op, self.hasher, sources)
            probe = cache.probe(
                op,
                parent=parent,
                parent_chain_id=parent_chain,
                platform=AMD64,
                inputs=inputs,
                step=step_identity("Dockerfile", "build", position),
                stage="build",
            )
            if probe.record is not None:
                diff_ids.append(probe.record.diff_id)
                parent_chain = probe.record.chain_id
            else:
                layer = put_layer(self.store, self.tmp_path, {f"step{position}": f"build {self.builds}"})
                diff_ids.append(layer.diff_id)
                chain_id = chain_ids(diff_ids)[-1]
                cache.save(
                    probe,
                    diff_id=layer.diff_id,
                    blob_digest=layer.digest,
                    size=layer.size,
                    media_type=layer.media_type,
                    chain_id=chain_id,
                    parent_chain_id=parent_chain,
                    created_by=op.created_by,
                    created="2026-01-01T00:00:00Z",
                )
                parent_chain = chain_id
            parent = probe.key.digest
            outcome.append((probe.hit, probe.reason))
        cache.close()  # the per-file digests are saved from a thread
        return outcome


@pytest.fixture
def stage(store: Store, tmp_path: Path, context_root: Path) -> Stage:
    return Stage(store, tmp_path, context_root)


def cached(outcome: list[tuple[bool, str]]) -> list[bool]:
    return [hit for hit, _ in outcome]


def reasons(outcome: list[tuple[bool, str]]) -> list[str]:
    return [reason for _, reason in outcome]


def test_first_build_misses_then_everything_is_cached(stage: Stage) -> None:
    assert reasons(stage.build(stage_ops())) == ["no previous build of this step"] * 5
    assert stage.build(stage_ops()) == [(True, "")] * 5


def test_editing_a_copied_file_rebuilds_from_that_copy(stage: Stage, context_root: Path) -> None:
    stage.build(stage_ops())
    (context_root / "app/main.py").write_text("print(2)\n")
    assert stage.build(stage_ops()) == [
        (True, ""),
        (True, ""),
        (False, "file app/main.py changed"),
        (False, "previous step was rebuilt"),
        (False, "previous step was rebuilt"),
    ]


def test_editing_an_unselected_file_rebuilds_nothing(stage: Stage, context_root: Path) -> None:
    stage.build(stage_ops())
    (context_root / "notes.txt").write_text("changed\n")
    assert cached(stage.build(stage_ops())) == [True] * 5


def test_a_miss_carries_every_difference(stage: Stage, context_root: Path, store: Store) -> None:
    stage.build(stage_ops())
    (context_root / "app/main.py").write_text("print(2)\n")
    (context_root / "app/new.py").write_text("new\n")
    cache = BuildCache(store)
    sources = InputSources({"context": BuildContext.open(context_root)}, str, str)
    parent = BASE
    for position, op in enumerate(stage_ops()[:3], start=2):
        probe = cache.probe(
            op,
            parent=parent,
            parent_chain_id="",
            platform=AMD64,
            inputs=compute_inputs(op, stage.hasher, sources),
            step=step_identity("Dockerfile", "build", position),
        )
        parent = probe.key.digest
    assert probe.reason == "file app/main.py changed, file app/new.py added"
    assert probe.details == ("file app/main.py changed", "file app/new.py added")


def test_changing_a_build_arg_rebuilds_the_steps_that_see_it(stage: Stage) -> None:
    stage.build(stage_ops("1"))
    assert stage.build(stage_ops("2")) == [
        (True, ""),
        (True, ""),
        (True, ""),
        (False, "build arg VERSION changed from 1 to 2"),
        (False, "previous step was rebuilt"),
    ]


def test_another_base_digest_rebuilds_the_stage(stage: Stage) -> None:
    stage.build(stage_ops())
    outcome = stage.build(stage_ops(), base=image_parent("sha256:" + "b" * 64))
    assert outcome[0] == (False, "base image digest changed from aaaaaaaaaaaa to bbbbbbbbbbbb")
    assert cached(outcome) == [False] * 5


def test_moving_instructions_to_other_lines_invalidates_nothing(stage: Stage) -> None:
    stage.build(stage_ops())
    moved = [type(op)(**{**op.__dict__, "location": span(op.location.start_line + 10)}) for op in stage_ops()]
    assert cached(stage.build(moved)) == [True] * 5


def test_no_cache_and_no_cache_filter(stage: Stage) -> None:
    stage.build(stage_ops())
    assert reasons(stage.build(stage_ops(), no_cache=True)) == ["--no-cache"] * 5
    assert reasons(stage.build(stage_ops(), no_cache_stages=["other"])) == [""] * 5
    assert reasons(stage.build(stage_ops(), no_cache_stages=["build"])) == ["--no-cache"] * 5


def test_a_record_on_other_parent_layers_is_not_reused(stage: Stage) -> None:
    stage.build(stage_ops())
    stage.build(stage_ops(), no_cache=True)  # same keys, new layers: the records are replaced
    outcome = stage.build(stage_ops())
    assert cached(outcome) == [True] * 5
    first_only = stage_ops()[:1]
    stage.build(first_only, no_cache=True)  # the first layer changes again, its children do not
    assert stage.build(stage_ops())[1] == (False, OTHER_PARENT_LAYERS)


def test_compute_inputs_for_other_sources(stage: Stage, context_root: Path) -> None:
    sources = InputSources(
        {"context": BuildContext.open(context_root)},
        stage_digest=lambda index: f"stage-{index}",
        image_digest=lambda ref: f"manifest-of-{ref}",
    )
    from_stage = CopyOp(span(1), "COPY --from=0", StageSource(0), ("/out",), "/")
    from_image = CopyOp(span(1), "COPY --from=img", ImageSource("alpine"), ("/etc",), "/")
    from_url = CopyOp(span(1), "ADD url", UrlSource("https://e.x/a", "sha256:c"), ("a",), "/")
    assert compute_inputs(from_stage, stage.hasher, sources).digests == {"source": "stage-0"}
    assert compute_inputs(from_image, stage.hasher, sources).digests == {"source": "manifest-of-alpine"}
    assert compute_inputs(from_url, stage.hasher, sources).digests == {"source": "sha256:c"}
    named = CopyOp(span(1), "COPY --from=docs", ContextSource("docs"), ("a",), "/")
    with pytest.raises(ContextError) as caught:
        compute_inputs(named, stage.hasher, sources)
    assert str(caught.value) == "build context 'docs' is not available"


def test_the_per_file_digests_are_kept_once_the_cache_is_closed(stage: Stage, store: Store) -> None:
    """They are saved from a thread (the next step does not wait for them); close() waits,
    and the next build's miss names the file that changed from them."""
    stage.build(stage_ops())
    previous = previous_for_step(store.meta, step_identity("Dockerfile", "build", 4))
    assert previous is not None
    files = input_files(store.meta, previous.preimage)
    assert files and "app/main.py" in next(iter(files.values()))
