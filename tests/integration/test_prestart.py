"""A RUN after a COPY starts on the copied files while the COPY's layer is committed
(:mod:`builder.prestart`): same image, steps reported in order, a failure reported at the
RUN, a prestart its step does not take dropped, nothing left behind."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from builder import runner as runner_module
from builder.events import Event, StepDone, StepFailed, StepLog, StepStarted
from builder.graph import Exec
from builder.prestart import PrestartedRun
from builder.store.store import Store
from tests.fixtures.cache_builds import BASE, _EventRecorder, busybox_tar, store_listing, store_root
from tests.fixtures.context_files import write_old_files

__all__ = ["busybox_tar", "store_root"]  # fixtures used here

DOCKERFILE = (
    f"FROM {BASE}\nCOPY . /ctx\nENV GREETING=hello\nRUN cat /ctx/a.txt && echo $GREETING > /greeting\n"
)


@pytest.fixture
def context(tmp_path: Path) -> Path:
    return write_old_files(tmp_path / "ctx", {"a.txt": "first\n", "sub/b.txt": "b\n"})


@pytest.fixture
def prestarts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each RUN started ahead (its history line)."""
    seen: list[str] = []
    original = runner_module.LocalRunner._prestart

    def spy(self: runner_module.LocalRunner, op: Exec, *args: Any) -> PrestartedRun:
        started = original(self, op, *args)
        seen.append(op.created_by)
        return started

    monkeypatch.setattr(runner_module.LocalRunner, "_prestart", spy)
    return seen


def _build(
    monkeypatch: pytest.MonkeyPatch, store_root: Path, context: Path, dockerfile: str, *flags: str
) -> tuple[int, list[Event]]:
    from builder.cli.commands import build as build_command
    from builder.cli.main import main

    recorder = _EventRecorder()
    with monkeypatch.context() as patch:
        patch.setattr(build_command, "_renderer", lambda *args: recorder)
        path = context.parent / "Dockerfile"
        path.write_text(dockerfile)
        status = main(["--root", str(store_root), "build", "-f", str(path), *flags, str(context)])
    return status, recorder.events


def _positions(events: list[Event], step: int) -> dict[str, int]:
    kinds = {StepStarted: "started", StepDone: "done", StepFailed: "failed"}
    found: dict[str, int] = {}
    for index, event in enumerate(events):
        if getattr(event, "step", None) != step:
            continue
        kind = "log" if isinstance(event, StepLog) else kinds.get(type(event))
        if kind is not None:
            found.setdefault(kind, index)
    return found


def _output(events: list[Event], step: int) -> bytes:
    return b"".join(event.data for event in events if isinstance(event, StepLog) and event.step == step)


def _read_file(store_root: Path, tag: str, name: str) -> bytes:
    import io
    import json
    import tarfile

    with Store.open(store_root) as store:
        manifest = json.loads(store.blobs.read_bytes(store.resolve(tag)))
        top = manifest["layers"][-1]["digest"]
        with tarfile.open(fileobj=io.BytesIO(store.blobs.read_bytes(top))) as layer:
            member = layer.extractfile(name)
            assert member is not None
            return member.read()


def _assert_nothing_left(store_root: Path) -> None:
    with open("/proc/self/mountinfo", encoding="utf-8") as mountinfo:
        assert str(store_root) not in mountinfo.read()
    assert store_listing(store_root)[2] == []
    assert not [thread for thread in threading.enumerate() if thread.name == "prestarted-run"]


def test_the_run_starts_on_the_copied_files_and_its_step_reports_after_the_copys(
    monkeypatch: pytest.MonkeyPatch, store_root: Path, context: Path, prestarts: list[str]
) -> None:
    commits: list[int] = []  # how many RUNs had started ahead when each layer was committed
    original = runner_module.commit_layer

    def spy(*args: Any, **kwargs: Any) -> Any:
        committed = original(*args, **kwargs)
        commits.append(len(prestarts))
        return committed

    monkeypatch.setattr(runner_module, "commit_layer", spy)
    for round_, text in enumerate(("first\n", "second, longer\n")):
        (context / "a.txt").write_text(text)
        status, events = _build(monkeypatch, store_root, context, DOCKERFILE, "-t", f"ahead:{round_}")
        assert status == 0
        assert len(prestarts) == round_ + 1 and "echo $GREETING" in prestarts[-1]
        assert commits[-2:] == [round_ + 1] * 2  # the COPY's layer committed after the RUN began
        copy, run = _positions(events, 2), _positions(events, 3)
        assert copy["done"] < run["started"] < run["log"] < run["done"]  # in order, as ever
        assert _output(events, 3) == text.encode()
        assert _read_file(store_root, f"ahead:{round_}", "greeting") == b"hello\n"
        _assert_nothing_left(store_root)


def test_a_failing_run_started_ahead_fails_its_own_step(
    monkeypatch: pytest.MonkeyPatch, store_root: Path, context: Path, prestarts: list[str]
) -> None:
    dockerfile = f"FROM {BASE}\nCOPY . /ctx\nRUN cat /ctx/a.txt && exit 3\n"
    status, events = _build(monkeypatch, store_root, context, dockerfile)
    assert status == 1
    assert len(prestarts) == 1
    run = _positions(events, 3)
    assert "done" not in _positions(events, 2) or _positions(events, 2)["done"] < run["started"]
    assert run["started"] < run["log"] < run["failed"]
    failed = [event for event in events if isinstance(event, StepFailed)]
    assert [event.step for event in failed] == [3]
    assert "exit code: 3" in failed[0].message
    _assert_nothing_left(store_root)


def test_a_run_started_ahead_under_another_key_is_dropped_and_run_again(
    monkeypatch: pytest.MonkeyPatch, store_root: Path, context: Path, prestarts: list[str]
) -> None:
    """Its step's probe has the last word: a prestart keyed otherwise (here on purpose; in
    life, a record another build saved meanwhile) is waited for, its output never shown."""
    original: Callable[..., tuple[object, str] | None] = runner_module.LocalRunner._run_ahead

    def wrong_key(*args: object) -> tuple[object, str] | None:
        found = original(*args)
        return None if found is None else (found[0], "sha256:" + "0" * 64)

    monkeypatch.setattr(runner_module.LocalRunner, "_run_ahead", wrong_key)
    status, events = _build(monkeypatch, store_root, context, DOCKERFILE, "-t", "dropped")
    assert status == 0
    assert len(prestarts) == 1
    assert _output(events, 3) == b"first\n"  # the step's own run, once
    assert _read_file(store_root, "dropped", "greeting") == b"hello\n"
    _assert_nothing_left(store_root)


def test_no_run_starts_ahead_where_the_cache_may_serve_it_or_it_has_mounts(
    monkeypatch: pytest.MonkeyPatch, store_root: Path, context: Path, prestarts: list[str]
) -> None:
    assert _build(monkeypatch, store_root, context, DOCKERFILE)[0] == 0
    assert len(prestarts) == 1
    assert _build(monkeypatch, store_root, context, DOCKERFILE)[0] == 0  # all cached
    assert len(prestarts) == 1
    mounted = f"FROM {BASE}\nCOPY . /ctx\nRUN --mount=type=tmpfs,target=/scratch cat /ctx/a.txt\n"
    assert _build(monkeypatch, store_root, context, mounted)[0] == 0
    assert len(prestarts) == 1
    assert _build(monkeypatch, store_root, context, DOCKERFILE, "--no-cache")[0] == 0
    assert len(prestarts) == 2  # no record can serve it
    _assert_nothing_left(store_root)
