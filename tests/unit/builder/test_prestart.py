"""The pieces of a RUN started ahead (:mod:`builder.prestart`): which RUN may, and its
output held until its step is announced."""

from __future__ import annotations

import threading
from pathlib import Path

from builder.events import Event, StepLog
from builder.graph import BindMount, ConfigOp, ContextSource, CopyOp, Exec, Platform, Stage
from builder.prestart import HeldSink, next_run
from builder.source import SourceSpan

SPAN = SourceSpan("Dockerfile", 1, 1)


def _run(**fields: object) -> Exec:
    return Exec(SPAN, "RUN true", ("/bin/sh", "-c", "true"), (), "/", **fields)  # type: ignore[arg-type]


def _copy() -> CopyOp:
    return CopyOp(SPAN, "COPY . /ctx", ContextSource(), (".",), "/ctx")  # type: ignore[call-arg]


def _stage(*ops: object) -> Stage:
    platform = Platform("linux", "amd64")
    return Stage(index=0, name="", base=None, platform=platform, ops=tuple(ops), location=SPAN)  # type: ignore[arg-type]


def test_the_next_filesystem_op_when_a_plain_run() -> None:
    copy, run = _copy(), _run()
    env = ConfigOp(SPAN, "ENV A=1")
    assert next_run(copy, _stage(copy, env, run)) is run  # past config-only ops
    assert next_run(copy, _stage(copy)) is None
    assert next_run(copy, _stage(copy, _copy(), run)) is None  # not the next filesystem op
    mounted = _run(mounts=(BindMount(target="/src", source=ContextSource()),))  # type: ignore[call-arg]
    assert next_run(copy, _stage(copy, mounted)) is None
    assert next_run(copy, _stage(copy, _run(security="insecure"))) is None


def test_held_events_come_out_in_order_once_released() -> None:
    shown: list[Event] = []
    sink = HeldSink(shown.append)
    sink(StepLog(3, b"a"))
    sink(StepLog(3, b"b"))
    assert shown == []
    sink.release()
    sink(StepLog(3, b"c"))
    assert [event.data for event in shown if isinstance(event, StepLog)] == [b"a", b"b", b"c"]


def test_events_from_another_thread_during_the_release_follow_the_held_ones() -> None:
    shown: list[bytes] = []
    entered, go_on = threading.Event(), threading.Event()

    def slow(event: Event) -> None:
        assert isinstance(event, StepLog)
        if event.data == b"held":
            entered.set()
            go_on.wait(5)
        shown.append(event.data)

    sink = HeldSink(slow)
    sink(StepLog(1, b"held"))
    releasing = threading.Thread(target=sink.release)
    releasing.start()
    entered.wait(5)
    late = threading.Thread(target=sink, args=(StepLog(1, b"late"),))
    late.start()
    go_on.set()
    releasing.join()
    late.join()
    assert shown == [b"held", b"late"]


def test_an_upper_dir_not_adopted_is_left_for_its_workspace(tmp_path: Path) -> None:
    from builder.store.store import Store

    with Store.open(tmp_path / "store") as store:
        first = tmp_path / "first"
        (first / "etc").mkdir(parents=True)
        store.snapshots.adopt(first, "sha256:" + "1" * 64, "", "sha256:" + "1" * 64)
        again = tmp_path / "again"
        (again / "etc").mkdir(parents=True)
        store.snapshots.adopt(again, "sha256:" + "1" * 64, "", "sha256:" + "1" * 64, remove_if_stored=False)
        assert (again / "etc").is_dir()
        store.snapshots.adopt(again, "sha256:" + "1" * 64, "", "sha256:" + "1" * 64)
        assert not again.exists()
