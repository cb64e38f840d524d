"""The live view and the summary, as a recorded 100-column terminal shows them."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable

from rich.console import Console

from builder.events import Event, StepDone, StepLog, StepStarted, TransferProgress
from builder.progress.plain import PlainRenderer
from builder.progress.tty import TtyRenderer
from tests.unit.progress.fake_build import (
    DOCKERFILE,
    FAILURE_REPORT_LINES,
    IMAGE_ID,
    FakeClock,
    failing_build,
    replay,
    successful_build,
)


def recording_console(height: int = 40) -> Console:
    return Console(record=True, width=100, height=height, force_terminal=True, file=io.StringIO())


def start(timeline: list[tuple[float, Event]], console: Console) -> tuple[TtyRenderer, FakeClock]:
    clock = FakeClock()
    renderer = TtyRenderer(console, clock=clock, sources={"Dockerfile": DOCKERFILE}, auto_refresh=False)
    replay(timeline, clock, renderer)
    return renderer, clock


def screen(renderer: TtyRenderer) -> list[str]:
    """The live view as it stands, one string per terminal row, trailing blanks removed."""
    probe = recording_console(renderer.console.height)
    probe.print(renderer.view())
    return [line.rstrip() for line in probe.export_text().splitlines()]


def padded(left: str, right: str) -> str:
    """A step row: its mark and name on the left, its status flush with the right edge."""
    return left + " " * (100 - len(left) - len(right)) + right


def test_running_build_shows_both_stages_their_states_and_output() -> None:
    renderer, clock = start(failing_build()[:-1], recording_console())
    clock.now = 103.4
    assert screen(renderer) == [
        "Building 3.4s (4/6 steps)",
        "  build (3/4)",
        padded("✔ #1 [build 1/4] FROM alpine:3.19", "DONE 0.2s"),
        padded("✔ #2 [build 2/4] COPY . .", "CACHED"),
        padded("✔ #3 [build 3/4] RUN make", "DONE 2.3s 1.23MB"),
        padded("⠼ #4 [build 4/4] RUN make test", "RUNNING 0.7s"),
        "    │ test_one ... ok",
        "    │ test_two ... FAIL",
        "  docs (1/2)",
        padded("✔ #5 [docs 1/2] FROM alpine:3.19", "DONE 0.3s"),
        padded("⠼ #6 [docs 2/2] RUN gen-docs --all", "RUNNING 3.1s"),
        "    │ writing index.html",
    ]


def test_running_step_shows_only_its_last_five_lines() -> None:
    timeline: list[tuple[float, Event]] = [
        (100.0, StepStarted(1, "[a 2/2] RUN seq 1000")),
        (100.0, StepLog(1, "".join(f"{n}\n" for n in range(1, 1001)).encode())),
    ]
    renderer, _clock = start(timeline, recording_console())
    assert screen(renderer)[3:] == [f"    │ {n}" for n in range(996, 1001)]


def test_pull_shows_a_progress_bar_with_bytes_and_speed() -> None:
    timeline: list[tuple[float, Event]] = [
        (100.0, TransferProgress("docker.io/library/alpine:3.19", "sha256:" + "ba" * 32, 0, 4_000_000)),
        (
            102.0,
            TransferProgress("docker.io/library/alpine:3.19", "sha256:" + "ba" * 32, 1_000_000, 4_000_000),
        ),
    ]
    renderer, _clock = start(timeline, recording_console())
    rows = screen(renderer)
    assert rows[0] == "Building 2.0s (0/0 steps)"
    assert rows[1].startswith("pull docker.io/library/alpine:3.19 babababababa ")
    assert rows[1].endswith(" 1MB/4MB 500kB/s")
    assert "━" in rows[1]


def test_short_terminal_folds_finished_steps_but_keeps_running_ones() -> None:
    renderer, clock = start(failing_build()[:-1], recording_console(height=10))
    clock.now = 103.4
    rows = screen(renderer)
    assert rows[1:4] == [
        "  build (3/4)",
        "✔ 3 steps done (1 cached)",
        padded("⠼ #4 [build 4/4] RUN make test", "RUNNING 0.7s"),
    ]
    assert padded("⠼ #6 [docs 2/2] RUN gen-docs --all", "RUNNING 3.1s") in rows


def test_summary_after_a_successful_build() -> None:
    console = recording_console()
    renderer, _clock = start(successful_build(), console)
    renderer.close()
    text = console.export_text()
    summary = text[text.index("Build summary") :].splitlines()
    assert [line.rstrip() for line in summary] == [
        "Build summary",
        "┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━┳━━━━━━━━┳━━━━━━━━━━━━━━┳━━━━━━┓",
        "┃ step                             ┃ result  ┃  layer ┃ digest       ┃ time ┃",
        "┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━╇━━━━━━━━╇━━━━━━━━━━━━━━╇━━━━━━┩",
        "│ #1 [build 1/4] FROM alpine:3.19  │ base    │      - │ -            │ 0.2s │",
        "│ #2 [build 2/4] COPY . .          │ cached  │ 2.05kB │ c0c0c0c0c0c0 │ 0.2s │",
        "│ #3 [build 3/4] RUN make          │ rebuilt │ 1.23MB │ a1a1a1a1a1a1 │ 2.3s │",
        "│ #4 [build 4/4] RUN make test     │ rebuilt │      - │ -            │ 0.9s │",
        "│ #5 [docs 1/2] FROM alpine:3.19   │ base    │      - │ -            │ 0.3s │",
        "│ #6 [docs 2/2] RUN gen-docs --all │ rebuilt │   56kB │ d0d0d0d0d0d0 │ 3.7s │",
        "└──────────────────────────────────┴─────────┴────────┴──────────────┴──────┘",
        "Built in 4.0s: 1 of 4 steps cached",
        f"image {IMAGE_ID} tagged demo:latest",
    ]
    assert "warning: build arg VERSION was never used" in text


def test_failure_shows_dockerfile_lines_exit_status_and_output_tail() -> None:
    console = recording_console()
    renderer, _clock = start(failing_build(), console)
    renderer.close()
    text = console.export_text()
    assert "│ #4 [build 4/4] RUN make test     │ FAILED    │      - │ -            │ 1.3s │" in text
    assert "│ #6 [docs 2/2] RUN gen-docs --all │ cancelled │      - │ -            │    - │" in text
    report = [line.rstrip() for line in text[text.index("╭─ ERROR") :].splitlines()]
    assert report[0].startswith("╭─ ERROR #4 [build 4/4] RUN make test (Dockerfile:6) ─")
    assert [line.strip("│ ") for line in report[1:-2]] == FAILURE_REPORT_LINES
    assert report[-1] == "Build failed after 4.0s: 1 of 4 steps cached"


def test_failure_without_the_dockerfile_shows_the_instruction_alone() -> None:
    console = recording_console()
    clock = FakeClock()
    renderer = TtyRenderer(console, clock=clock, auto_refresh=False)
    replay(failing_build(), clock, renderer)
    renderer.close()
    text = console.export_text()
    report = [line.strip("│ ") for line in text[text.index("╭─ ERROR") :].splitlines()]
    assert report[1:3] == [
        "> 6 │ RUN make test",
        'process "/bin/sh -c make test" did not complete successfully: exit code: 2',
    ]


def test_live_view_is_transient_and_the_cursor_comes_back() -> None:
    stream = io.StringIO()
    console = Console(file=stream, width=100, height=40, force_terminal=True)
    renderer, _clock = start(successful_build(), console)
    renderer.refresh()
    renderer.close()
    output = stream.getvalue()
    assert output.count("\x1b[?25l") == 1
    assert output.endswith(" tagged demo:latest\n")
    assert "\x1b[?25h" in output
    assert output.index("\x1b[?25h") < output.index("Build summary")


def feed_timed(sink: Callable[[Event], None], events: list[Event]) -> float:
    started = time.perf_counter()
    for event in events:
        sink(event)
    return time.perf_counter() - started


def test_a_hundred_thousand_lines_neither_stall_nor_flood() -> None:
    """The live view takes output no slower than plain lines do, and draws only a few frames.

    Each renderer gets the best of two runs, so a busy machine does not decide the outcome.
    """
    events: list[Event] = [StepStarted(1, "[a 2/2] RUN seq 100000")]
    events += [StepLog(1, f"line {number}\n".encode()) for number in range(100_000)]
    tty_runs, plain_runs, written = [], [], []
    for _attempt in range(2):
        stream = io.StringIO()
        renderer = TtyRenderer(Console(file=stream, width=100, height=40, force_terminal=True))
        tty_runs.append(feed_timed(renderer, events))
        renderer.close()
        written.append(len(stream.getvalue()))
        plain_runs.append(feed_timed(PlainRenderer(io.StringIO()), events))
    assert min(tty_runs) < min(plain_runs) * 1.5 + 0.2
    assert max(written) < 200_000


def test_events_from_many_threads_while_the_view_redraws() -> None:
    console = recording_console()
    renderer = TtyRenderer(console)

    def stage(number: int) -> None:
        renderer(StepStarted(number, f"[s{number} 2/2] RUN work"))
        for line in range(2_000):
            renderer(StepLog(number, f"{number}:{line}\n".encode()))
        renderer(StepDone(number, 1.0, 10, "sha256:" + f"{number:02d}" * 32))

    threads = [threading.Thread(target=stage, args=(number,)) for number in range(1, 5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    renderer.close()
    text = console.export_text()
    for number in range(1, 5):
        digest = f"{number:02d}" * 6
        assert f"│ #{number} [s{number} 2/2] RUN work │ rebuilt │   10B │ {digest} │ 1.0s │" in text
