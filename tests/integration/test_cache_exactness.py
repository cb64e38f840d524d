"""The layer cache in real ``kiln build`` runs: exactly the steps whose inputs changed run again.

Each test builds a Dockerfile twice over a busybox base in a real store and compares, from
the progress events, which steps were CACHED and which ran (issue 5's exactness list).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from builder.cli.main import main
from builder.store.store import Store
from cache import records
from tests.fixtures.cache_builds import (
    BASE,
    build_concurrently,
    busybox_tar,
    context_dir,
    import_base,
    kiln_build,
    ran,
    store_listing,
    store_root,
)

__all__ = ["busybox_tar", "context_dir", "store_root"]  # fixtures used here

SINGLE_STAGE = f"""\
FROM {BASE}
RUN echo setup > /setup
COPY app /app
ARG VERSION=1
RUN echo "built $VERSION" > /built
COPY README /README
ENV MODE=fast
LABEL a=b
"""

MULTI_STAGE = f"""\
FROM {BASE} AS build
COPY app /src
RUN cat /src/main.sh > /out

FROM {BASE} AS other
RUN echo other > /other

FROM {BASE}
COPY --from=other /other /other
COPY --from=build /out /out
RUN cat /out
"""

ALL_SINGLE = [
    "RUN echo setup > /setup",
    "COPY app /app",
    'RUN echo "built $VERSION" > /built',
    "COPY README /README",
]


def test_identical_rebuild_is_fully_cached_and_does_no_work(
    monkeypatch: pytest.MonkeyPatch, store_root: Path, context_dir: Path
) -> None:
    first = kiln_build(monkeypatch, store_root, context_dir, SINGLE_STAGE)
    assert ran(first) == ALL_SINGLE
    before = store_listing(store_root)
    again = kiln_build(monkeypatch, store_root, context_dir, SINGLE_STAGE)
    assert ran(again) == []
    assert [result.reason for result in again] == ["", "", "", ""]
    blobs, snapshots, steps = store_listing(store_root)
    # No layer written (the image itself is the same: SOURCE_DATE_EPOCH), no snapshot, no
    # container.
    assert blobs == before[0]
    assert snapshots == before[1]
    assert steps == []


def test_a_cached_rebuild_unpacks_no_pruned_snapshot(
    monkeypatch: pytest.MonkeyPatch, store_root: Path, context_dir: Path
) -> None:
    kiln_build(monkeypatch, store_root, context_dir, SINGLE_STAGE)
    assert main(["--root", str(store_root), "prune"]) == 0
    left = store_listing(store_root)[1]
    assert len(left) == 1  # the named base image's one layer; the steps' snapshots went
    assert ran(kiln_build(monkeypatch, store_root, context_dir, SINGLE_STAGE)) == []
    assert store_listing(store_root)[1] == left
    # A later miss unpacks what it runs on.
    changed = kiln_build(monkeypatch, store_root, context_dir, SINGLE_STAGE, "--build-arg", "VERSION=3")
    assert ran(changed) == ['RUN echo "built $VERSION" > /built', "COPY README /README"]


def test_editing_a_copied_file_rebuilds_from_that_copy(
    monkeypatch: pytest.MonkeyPatch, store_root: Path, context_dir: Path
) -> None:
    kiln_build(monkeypatch, store_root, context_dir, SINGLE_STAGE)
    (context_dir / "app/main.sh").write_text("echo two\n")
    results = kiln_build(monkeypatch, store_root, context_dir, SINGLE_STAGE)
    assert ran(results) == ["COPY app /app", 'RUN echo "built $VERSION" > /built', "COPY README /README"]
    assert results[1].reason == "file app/main.sh changed"


def test_editing_an_ignored_file_rebuilds_nothing(
    monkeypatch: pytest.MonkeyPatch, store_root: Path, context_dir: Path
) -> None:
    kiln_build(monkeypatch, store_root, context_dir, SINGLE_STAGE)
    (context_dir / "ignored/big.txt").write_text("changed\n")
    assert ran(kiln_build(monkeypatch, store_root, context_dir, SINGLE_STAGE)) == []


def test_changing_a_build_arg_rebuilds_only_the_steps_that_see_it(
    monkeypatch: pytest.MonkeyPatch, store_root: Path, context_dir: Path
) -> None:
    kiln_build(monkeypatch, store_root, context_dir, SINGLE_STAGE)
    results = kiln_build(monkeypatch, store_root, context_dir, SINGLE_STAGE, "--build-arg", "VERSION=2")
    assert ran(results) == ['RUN echo "built $VERSION" > /built', "COPY README /README"]
    assert results[2].reason == "build arg VERSION changed from 1 to 2"


def test_reordering_config_only_instructions_invalidates_no_layer(
    monkeypatch: pytest.MonkeyPatch, store_root: Path, context_dir: Path
) -> None:
    kiln_build(monkeypatch, store_root, context_dir, SINGLE_STAGE)
    reordered = SINGLE_STAGE.replace("ENV MODE=fast\nLABEL a=b\n", "LABEL a=b\nENV MODE=fast\n")
    assert ran(kiln_build(monkeypatch, store_root, context_dir, reordered)) == []


def test_a_changed_file_rebuilds_the_stages_that_copy_from_it(
    monkeypatch: pytest.MonkeyPatch, store_root: Path, context_dir: Path
) -> None:
    kiln_build(monkeypatch, store_root, context_dir, MULTI_STAGE)
    (context_dir / "app/main.sh").write_text("echo three\n")
    assert ran(kiln_build(monkeypatch, store_root, context_dir, MULTI_STAGE)) == [
        "COPY app /src",
        "RUN cat /src/main.sh > /out",
        "COPY --from=build /out /out",
        "RUN cat /out",
    ]


def test_a_different_base_image_digest_rebuilds_the_stage(
    monkeypatch: pytest.MonkeyPatch, store_root: Path, context_dir: Path, busybox_tar: bytes
) -> None:
    kiln_build(monkeypatch, store_root, context_dir, SINGLE_STAGE)
    import_base(store_root, busybox_tar, changes=['CMD ["sh", "-l"]'])
    results = kiln_build(monkeypatch, store_root, context_dir, SINGLE_STAGE)
    assert ran(results) == ALL_SINGLE
    assert results[0].reason.startswith("base image digest changed from ")


def test_no_cache_rebuilds_every_step(
    monkeypatch: pytest.MonkeyPatch, store_root: Path, context_dir: Path
) -> None:
    kiln_build(monkeypatch, store_root, context_dir, SINGLE_STAGE)
    results = kiln_build(monkeypatch, store_root, context_dir, SINGLE_STAGE, "--no-cache")
    assert ran(results) == ALL_SINGLE
    assert {result.reason for result in results} == {"--no-cache"}
    # What --no-cache built is recorded: the next build reuses it.
    assert ran(kiln_build(monkeypatch, store_root, context_dir, SINGLE_STAGE)) == []


def test_no_cache_filter_rebuilds_only_that_stage(
    monkeypatch: pytest.MonkeyPatch, store_root: Path, context_dir: Path
) -> None:
    kiln_build(monkeypatch, store_root, context_dir, MULTI_STAGE)
    results = kiln_build(monkeypatch, store_root, context_dir, MULTI_STAGE, "--no-cache-filter", "build")
    # The stage's layers come out the same (SOURCE_DATE_EPOCH), so the stage copying from it
    # stays cached.
    assert ran(results) == ["COPY app /src", "RUN cat /src/main.sh > /out"]
    by_index = kiln_build(monkeypatch, store_root, context_dir, MULTI_STAGE, "--no-cache-filter", "1")
    assert ran(by_index) == ["RUN echo other > /other"]


def test_secret_content_never_enters_a_key(
    monkeypatch: pytest.MonkeyPatch, store_root: Path, context_dir: Path, tmp_path: Path
) -> None:
    dockerfile = f"FROM {BASE}\nRUN --mount=type=secret,id=token cat /run/secrets/token > /dev/null\n"
    secret = tmp_path / "token"
    secret.write_text("first-secret-value")
    first = kiln_build(monkeypatch, store_root, context_dir, dockerfile, "--secret", f"id=token,src={secret}")
    assert ran(first) == ["RUN --mount=type=secret,id=token cat /run/secrets/token > /dev/null"]
    secret.write_text("second-secret-value")
    again = kiln_build(monkeypatch, store_root, context_dir, dockerfile, "--secret", f"id=token,src={secret}")
    assert ran(again) == []
    with Store.open(store_root) as store:
        stored = json.dumps([record.to_json() for record in records.all_records(store.meta)])
    assert "secret-value" not in stored


def test_two_concurrent_builds_on_one_store_both_succeed_with_the_same_layers(
    store_root: Path, context_dir: Path, tmp_path: Path
) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(MULTI_STAGE)
    diff_ids = build_concurrently(store_root, dockerfile, context_dir, tmp_path)
    assert len(diff_ids[0]) == 4  # the base and three steps of the last stage
    assert diff_ids[0] == diff_ids[1]
    with Store.open(store_root) as store:
        for record in records.all_records(store.meta):
            assert store.blobs.has(record.blob_digest)
