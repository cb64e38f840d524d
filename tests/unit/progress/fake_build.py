"""A scripted build for renderer tests: a base layer pulled, two stages running at once, cached
and rebuilt steps, output, and (in the failing variant) a RUN that exits 2 while the other stage still runs.

Each event comes with the time the fake clock shows when it is sent, so durations and
spinner frames come out the same on every run.
"""

from __future__ import annotations

from collections.abc import Iterable

from builder.events import (
    BuildFinished,
    Event,
    Notice,
    StepCached,
    StepDone,
    StepFailed,
    StepLog,
    StepStarted,
    TransferProgress,
)
from builder.source import SourceSpan

DOCKERFILE = """\
# syntax=docker/dockerfile:1
FROM alpine:3.19 AS build
WORKDIR /src
COPY . .
RUN make
RUN make test

FROM alpine:3.19 AS docs
RUN gen-docs --all
"""

LAYER_COPY = "sha256:" + "c0" * 32
LAYER_MAKE = "sha256:" + "a1" * 32
LAYER_DOCS = "sha256:" + "d0" * 32
IMAGE_ID = "sha256:" + "ee" * 32
BASE_LAYER = "sha256:" + "ba" * 32
BASE_REF = "docker.io/library/alpine:3.19"


class FakeClock:
    """A clock that shows whatever time the test sets."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def span(line: int) -> SourceSpan:
    return SourceSpan("Dockerfile", line, line, 1, DOCKERFILE.splitlines()[line - 1])


def _common() -> list[tuple[float, Event]]:
    return [
        (100.0, Notice("build arg VERSION was never used")),
        (100.0, StepStarted(1, "[build 1/4] FROM alpine:3.19", span(2))),
        (100.0, StepStarted(5, "[docs 1/2] FROM alpine:3.19", span(8))),
        (100.0, TransferProgress(BASE_REF, BASE_LAYER, 0, 3_400_000)),
        (100.1, TransferProgress(BASE_REF, BASE_LAYER, 1_048_576, 3_400_000)),
        (100.2, TransferProgress(BASE_REF, BASE_LAYER, 3_400_000, 3_400_000)),
        (100.2, StepDone(1, 0.2)),
        (100.2, StepStarted(2, "[build 2/4] COPY . .", span(4))),
        (100.3, StepDone(5, 0.3)),
        (100.3, StepStarted(6, "[docs 2/2] RUN gen-docs --all", span(9))),
        (100.4, StepCached(2)),
        (100.4, StepDone(2, 0.2, 2_048, LAYER_COPY)),
        (100.4, StepStarted(3, "[build 3/4] RUN make", span(5))),
        (100.5, StepLog(3, b"cc -c main.c\ncc -c ut")),
        (100.6, StepLog(6, b"\x1b[32mwriting index.html\x1b[0m\n")),
        (100.7, StepLog(3, b"il.c\nlinking kiln-demo\n")),
        (102.7, StepDone(3, 2.3, 1_234_567, LAYER_MAKE, "the context changed: main.c")),
        (102.7, StepStarted(4, "[build 4/4] RUN make test", span(6))),
        (103.0, StepLog(4, b"test_one ... ok\ntest_two ... FAIL\n")),
    ]


def successful_build() -> list[tuple[float, Event]]:
    """Steps 1-6 all finish; step 4 prints an unterminated last line."""
    return [
        *_common(),
        (103.5, StepLog(4, b"ran 2 tests (1 retried)")),
        (103.6, StepDone(4, 0.9, 0, "")),
        (104.0, StepDone(6, 3.7, 56_000, LAYER_DOCS, "no cache record")),
        (104.0, BuildFinished(IMAGE_ID, 4.0, ("demo:latest",), cached_steps=1, total_steps=4)),
    ]


FAILURE_REPORT_LINES = [
    "4 │ COPY . .",
    "5 │ RUN make",
    "> 6 │ RUN make test",
    "7",
    "8 │ FROM alpine:3.19 AS docs",
    'process "/bin/sh -c make test" did not complete successfully: exit code: 2',
    "output:",
    "test_one ... ok",
    "test_two ... FAIL",
]
"""The body of the error report ``failing_build`` ends in (its box's borders stripped): the
Dockerfile lines around step 4 (the failing one marked), the error, and the step's output."""


def failing_build() -> list[tuple[float, Event]]:
    """Step 4 exits 2 at 104.0 while step 6 (the other stage) is still running."""
    return [
        *_common(),
        (
            104.0,
            StepFailed(4, 1.3, 'process "/bin/sh -c make test" did not complete successfully: exit code: 2'),
        ),
    ]


def replay(timeline: Iterable[tuple[float, Event]], clock: FakeClock, sink: object) -> None:
    """Send each event to ``sink`` with the clock set to its time."""
    assert callable(sink)
    for moment, event in timeline:
        clock.now = moment
        sink(event)
