"""Plain progress, line by line: BuildKit numbering, prefixed output, no control characters."""

from __future__ import annotations

import io

from builder.events import Event, Notice, StepDone, StepFailed, StepLog, StepStarted, TransferProgress
from builder.progress.plain import PlainRenderer
from tests.unit.progress.fake_build import IMAGE_ID, FakeClock, failing_build, replay, successful_build

COMMON_LINES = [
    "warning: build arg VERSION was never used",
    "#1 [build 1/4] FROM alpine:3.19",
    "#5 [docs 1/2] FROM alpine:3.19",
    "pull docker.io/library/alpine:3.19 babababababa 3.4MB done",
    "#1 DONE 0.2s",
    "#2 [build 2/4] COPY . .",
    "#5 DONE 0.3s",
    "#6 [docs 2/2] RUN gen-docs --all",
    "#2 CACHED",
    "#3 [build 3/4] RUN make",
    "#3 cc -c main.c",
    "#6 writing index.html",
    "#3 cc -c util.c",
    "#3 linking kiln-demo",
    "#3 DONE 2.3s 1.23MB",
    "#4 [build 4/4] RUN make test",
    "#4 test_one ... ok",
    "#4 test_two ... FAIL",
]


def render(timeline: list[tuple[float, Event]]) -> str:
    stream = io.StringIO()
    renderer = PlainRenderer(stream)
    replay(timeline, FakeClock(), renderer)
    renderer.close()
    return stream.getvalue()


def test_successful_build_line_by_line() -> None:
    assert render(successful_build()).splitlines() == [
        *COMMON_LINES,
        "#4 ran 2 tests (1 retried)",
        "#4 DONE 0.9s",
        "#6 DONE 3.7s 56kB",
        f"built {IMAGE_ID} as demo:latest in 4.0s (1/4 steps cached)",
    ]


def test_failing_build_line_by_line() -> None:
    assert render(failing_build()).splitlines() == [
        *COMMON_LINES,
        '#4 ERROR process "/bin/sh -c make test" did not complete successfully: exit code: 2',
    ]


def test_no_control_characters_reach_the_log() -> None:
    output = render(
        [
            (0.0, StepStarted(1, "[a 1/1] RUN x")),
            (0.0, StepLog(1, b"\x1b[1;31mred\x1b[0m\tok\n10%\r50%\r100%\n\x07bell\x1b]0;title\x07\n")),
            (0.0, StepDone(1, 0.1)),
        ]
    )
    assert output.splitlines() == ["#1 [a 1/1] RUN x", "#1 red\tok", "#1 100%", "#1 bell", "#1 DONE 0.1s"]
    assert all(ch in "\n\t" or ch >= " " for ch in output)


def test_no_line_is_clipped() -> None:
    long_line = "x" * 50_000
    lines = [f"line {number}" for number in range(1_000)]
    payload = ("\n".join([*lines, long_line]) + "\n").encode()
    output = render(
        [
            (0.0, StepStarted(1, "[a 2/2] RUN seq")),
            (0.0, StepLog(1, payload[:7777])),
            (0.0, StepLog(1, payload[7777:])),
            (0.0, StepDone(1, 0.1)),
        ]
    )
    assert output.splitlines()[1:-1] == [f"#1 {line}" for line in [*lines, long_line]]


def test_transfers_print_one_line_when_a_blob_is_done_or_skipped() -> None:
    digest = "sha256:" + "ab" * 32
    output = render(
        [
            (0.0, TransferProgress("registry.local/app:1", digest, 0, 2_000_000, "push")),
            (0.0, TransferProgress("registry.local/app:1", digest, 1_048_576, 2_000_000, "push")),
            (0.0, TransferProgress("registry.local/app:1", digest, 2_000_000, 2_000_000, "push")),
            (0.0, TransferProgress("alpine:3.19", digest, 0, 500, "pull", skipped=True)),
        ]
    )
    assert output.splitlines() == [
        "push registry.local/app:1 abababababab 2MB done",
        "pull alpine:3.19 abababababab already present",
    ]


def test_names_and_messages_lose_control_characters_too() -> None:
    output = render(
        [
            (0.0, StepStarted(1, "[a 1/1] RUN echo \x1b[2Jgotcha")),
            (0.0, StepFailed(1, 0.1, "bad\x07 thing\nsecond line")),
            (0.0, Notice("two\nlines")),
        ]
    )
    assert output.splitlines() == [
        "#1 [a 1/1] RUN echo gotcha",
        "#1 ERROR bad thing second line",
        "warning: two lines",
    ]
