"""The live view in a real terminal: tmux runs the renderer as a person would see it.

A small script replays the scripted build of ``tests/unit/progress/fake_build.py`` through
:class:`~builder.progress.tty.TtyRenderer` on tmux's terminal, in real time. It stops half way
until the test has looked at the screen (a gate file), so the test sees the running view
without racing it; then the test checks that the summary replaced the live view and that
nothing of the live view (spinners, headers, output tails) was left behind.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, require_root, require_tool
from tests.unit.progress.fake_build import FAILURE_REPORT_LINES

REPLAY_SCRIPT = """
import sys, time
from pathlib import Path
from rich.console import Console
from builder.progress.tty import TtyRenderer
from tests.unit.progress.fake_build import DOCKERFILE, failing_build, successful_build

timeline = successful_build() if sys.argv[1] == "success" else failing_build()
gate = Path(sys.argv[2])
renderer = TtyRenderer(Console(), sources={"Dockerfile": DOCKERFILE})
halfway = len(timeline) * 2 // 3
for index, (_moment, event) in enumerate(timeline):
    if index == halfway:
        Path(str(gate) + ".waiting").touch()
        while not gate.exists():
            time.sleep(0.05)
    renderer(event)
    time.sleep(0.02)
renderer.close()
"""

SPINNER_FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


class Terminal:
    """A detached 120x40 tmux session on a private server, running one command."""

    def __init__(self, socket: str) -> None:
        self.socket = socket

    def start(self, *command: str) -> None:
        """Run ``command`` from the checkout, outside CI's view (``CI`` unset) and at tmux's size,
        in a fresh session; ``EXIT=<status>`` is printed after it."""
        subprocess.run([*self._tmux(), "kill-session", "-t", "kiln"], check=False, capture_output=True)
        exports = f"PYTHONPATH={REPO_ROOT} TERM=xterm-256color LANG=C.UTF-8"
        shell_command = f"cd {REPO_ROOT} && env -u CI -u COLUMNS -u LINES {exports} {shlex.join(command)}"
        subprocess.run(
            [
                *self._tmux(),
                "new-session",
                "-d",
                "-x",
                "120",
                "-y",
                "40",
                "-s",
                "kiln",
                shell_command + '; echo "EXIT=$?"; sleep 60',
            ],
            check=True,
        )

    def screen(self) -> list[str]:
        """The visible rows, as text (tmux drops the colours), trailing blanks removed."""
        result = subprocess.run(
            [*self._tmux(), "capture-pane", "-p", "-t", "kiln"], check=True, capture_output=True, text=True
        )
        return [line.rstrip() for line in result.stdout.splitlines()]

    def close(self) -> None:
        subprocess.run([*self._tmux(), "kill-server"], check=False, capture_output=True)

    def _tmux(self) -> list[str]:
        return ["tmux", "-L", self.socket]


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    require_tool("tmux")
    session = Terminal(f"kiln-test-{os.getpid()}-{tmp_path.name}")
    yield session
    session.close()


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def replay(kind: str, terminal: Terminal, tmp_path: Path, halfway_mark: str) -> tuple[list[str], list[str]]:
    """The screen half way through (once a redraw shows ``halfway_mark``, which the last event
    before the gate brings) and at the end."""
    script = tmp_path / "replay.py"
    script.write_text(REPLAY_SCRIPT)
    gate = tmp_path / "gate"
    terminal.start(sys.executable, str(script), kind, str(gate))
    wait_for(lambda: Path(str(gate) + ".waiting").exists(), "the replay to reach half way")
    wait_for(
        lambda: any(halfway_mark in line for line in terminal.screen()),
        "the live view to draw the events so far",
    )
    halfway = terminal.screen()
    gate.touch()
    wait_for(lambda: "EXIT=0" in terminal.screen(), "the replay to finish")
    return halfway, terminal.screen()


def summary_results(screen: list[str]) -> dict[str, str]:
    """Step name → result, from the rows of the summary table."""
    cells = [line.split("│") for line in screen if line.startswith("│ #")]
    return {row[1].strip(): row[2].strip() for row in cells}


def assert_no_live_view_left(screen: list[str]) -> None:
    text = "\n".join(screen)
    assert "Building " not in text
    assert "RUNNING" not in text
    assert not any(frame in text for frame in SPINNER_FRAMES)
    assert "\x1b" not in text


def test_successful_build_in_a_terminal(terminal: Terminal, tmp_path: Path) -> None:
    halfway, final = replay("success", terminal, tmp_path, "│ writing index.html")
    assert any(line.startswith("Building ") and line.endswith("(3/6 steps)") for line in halfway)
    assert any("#2 [build 2/4] COPY . ." in line and line.endswith("CACHED") for line in halfway)
    assert any("#3 [build 3/4] RUN make" in line and "RUNNING" in line for line in halfway)
    assert any("#6 [docs 2/2] RUN gen-docs --all" in line and "RUNNING" in line for line in halfway)
    assert "    │ cc -c main.c" in halfway
    screen = [line for line in final if line]
    start = screen.index("Build summary")
    assert screen[:start] == ["warning: build arg VERSION was never used"]
    assert summary_results(screen) == {
        "#1 [build 1/4] FROM alpine:3.19": "base",
        "#2 [build 2/4] COPY . .": "cached",
        "#3 [build 3/4] RUN make": "rebuilt",
        "#4 [build 4/4] RUN make test": "rebuilt",
        "#5 [docs 1/2] FROM alpine:3.19": "base",
        "#6 [docs 2/2] RUN gen-docs --all": "rebuilt",
    }
    assert screen[-3].startswith("Built in ") and screen[-3].endswith(": 1 of 4 steps cached")
    assert screen[-2] == "image sha256:" + "e" * 64 + " tagged demo:latest"
    assert screen[-1] == "EXIT=0"
    assert_no_live_view_left(screen)


def test_failed_build_in_a_terminal(terminal: Terminal, tmp_path: Path) -> None:
    _halfway, final = replay("failure", terminal, tmp_path, "#3 [build 3/4] RUN make")
    screen = [line for line in final if line]
    results = summary_results(screen)
    assert results["#4 [build 4/4] RUN make test"] == "FAILED"
    assert results["#6 [docs 2/2] RUN gen-docs --all"] == "cancelled"
    report = screen[next(i for i, line in enumerate(screen) if line.startswith("╭─ ERROR #4")) :]
    assert [line.strip("│ ") for line in report[1:10]] == FAILURE_REPORT_LINES
    assert screen[-2].startswith("Build failed after ")
    assert_no_live_view_left([line for line in screen if not line.startswith("│ test_")])


REAL_DOCKERFILE = """\
FROM scratch AS tools
COPY busybox sh /bin/

FROM tools AS docs
RUN echo "doc 1"; echo "doc 2"; echo manual > /manual

FROM tools
COPY --from=docs /manual /manual
RUN echo compiled > /compiled
"""

FAILING_DOCKERFILE = """\
FROM scratch
COPY busybox sh /bin/
RUN echo checking the widget; exit 3
RUN echo never runs
"""


def busybox_context(tmp_path: Path, dockerfile: str) -> Path:
    """``tmp_path / "context"`` holding ``dockerfile``, busybox and an ``sh`` link to it (for
    ``FROM scratch`` builds that ``COPY`` them in); written again over an earlier one."""
    context = tmp_path / "context"
    context.mkdir(exist_ok=True)
    shutil.copy("/bin/busybox", context / "busybox")
    if not (context / "sh").is_symlink():
        (context / "sh").symlink_to("busybox")
    (context / "Dockerfile").write_text(dockerfile)
    return context


def kiln_build(terminal: Terminal, tmp_path: Path, dockerfile: str) -> list[str]:
    """Run ``kiln build --progress=tty`` in the terminal; the final screen's non-empty rows."""
    context = busybox_context(tmp_path, dockerfile)
    store = tmp_path / "store"
    command = [sys.executable, "-m", "builder.cli.main", "--root", str(store), "build"]
    terminal.start(*command, "--progress=tty", "-t", "demo:latest", str(context))
    wait_for(lambda: any(line.startswith("EXIT=") for line in terminal.screen()), "kiln build", timeout=180)
    screen = [line for line in terminal.screen() if line]
    if "Build summary" not in screen and any(line.startswith("#1 [") for line in screen):
        pytest.skip("kiln build printed plain progress on a terminal: the live view is not wired in yet")
    return screen


def require_real_builds() -> None:
    require_root("kiln build runs steps in containers")
    if not Path("/bin/busybox").exists() or not (shutil.which("crun") or shutil.which("runc")):
        pytest.skip("needs /bin/busybox and crun or runc")


def test_real_build_marks_rebuilt_then_cached_steps(terminal: Terminal, tmp_path: Path) -> None:
    require_real_builds()
    first = kiln_build(terminal, tmp_path, REAL_DOCKERFILE)
    assert first[-1] == "EXIT=0"
    assert summary_results(first) == {
        "#1 [tools 1/2] FROM scratch": "base",
        "#2 [tools 2/2] COPY busybox sh /bin/": "rebuilt",
        "#3 [docs 1/2] FROM stage 0": "base",
        '#4 [docs 2/2] RUN echo "doc 1"; echo "doc 2"; echo manual > /manual': "rebuilt",
        "#5 [stage-2 1/3] FROM stage 0": "base",
        "#6 [stage-2 2/3] COPY --from=docs /manual /manual": "rebuilt",
        "#7 [stage-2 3/3] RUN echo compiled > /compiled": "rebuilt",
    }
    assert first[-3].startswith("Built in ") and first[-3].endswith(": 0 of 4 steps cached")
    assert first[-2].startswith("image sha256:") and first[-2].endswith(" tagged demo:latest")
    assert_no_live_view_left(first)
    second = kiln_build(terminal, tmp_path, REAL_DOCKERFILE)
    assert second[-1] == "EXIT=0"
    results = summary_results(second)
    assert [results[name] for name in results if "RUN" in name or "COPY" in name] == ["cached"] * 4
    assert second[-3].endswith(": 4 of 4 steps cached")
    assert_no_live_view_left(second)


def test_real_failed_build_shows_the_instruction_and_exit_status(terminal: Terminal, tmp_path: Path) -> None:
    require_real_builds()
    screen = kiln_build(terminal, tmp_path, FAILING_DOCKERFILE)
    assert screen[-1] == "EXIT=1"
    assert summary_results(screen)["#3 [stage-0 3/4] RUN echo checking the widget; exit 3"] == "FAILED"
    report = screen[next(i for i, line in enumerate(screen) if line.startswith("╭─ ERROR #3")) :]
    body = [line.strip("│ ") for line in report[1:]]
    assert body[:4] == [
        "1 │ FROM scratch",
        "2 │ COPY busybox sh /bin/",
        "> 3 │ RUN echo checking the widget; exit 3",
        "4 │ RUN echo never runs",
    ]
    assert body[4].endswith(
        'process "/bin/sh -c echo checking the widget; exit 3" did not complete successfully: exit code: 3'
    )
    assert "checking the widget" in body
    assert_no_live_view_left(screen)


def build_with_progress(tmp_path: Path, dockerfile: str, progress: str) -> tuple[float, str]:
    """Run ``kiln build --no-cache --progress=…`` without a terminal; its seconds and output."""
    context = busybox_context(tmp_path, dockerfile)
    command = [sys.executable, "-m", "builder.cli.main", "--root", str(tmp_path / "store"), "build"]
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "COLUMNS": "120", "LINES": "40"}
    started = time.monotonic()
    result = subprocess.run(
        [*command, "--no-cache", f"--progress={progress}", str(context)],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
    )
    seconds = time.monotonic() - started
    assert result.returncode == 0, result.stderr[-2000:]
    output = result.stdout + result.stderr
    if progress == "tty" and "Build summary" not in output:
        pytest.skip("kiln build --progress=tty printed no summary: the live view is not wired in yet")
    return seconds, output


@pytest.mark.slow
def test_tty_progress_does_not_slow_a_thirty_step_build(tmp_path: Path) -> None:
    require_real_builds()
    steps = "".join(f"RUN echo step {number} > /step-{number}\n" for number in range(29))
    dockerfile = f"FROM scratch\nCOPY busybox sh /bin/\n{steps}"
    plain_seconds, plain_output = build_with_progress(tmp_path, dockerfile, "plain")
    tty_seconds, tty_output = build_with_progress(tmp_path, dockerfile, "tty")
    assert "#31 DONE" in plain_output
    assert "#31 [stage-0 31/31] RUN echo step 28 > /step-28" in tty_output
    assert tty_seconds < plain_seconds * 1.25 + 2.0


@pytest.mark.slow
def test_hundred_thousand_lines_plain_keeps_all_tty_keeps_the_terminal_calm(tmp_path: Path) -> None:
    require_real_builds()
    loop = 'i=0; while [ $i -lt 100000 ]; do echo "line $i"; i=$((i+1)); done'
    dockerfile = f"FROM scratch\nCOPY busybox sh /bin/\nRUN {loop}\n"
    _seconds, plain_output = build_with_progress(tmp_path, dockerfile, "plain")
    printed = [line for line in plain_output.splitlines() if line.startswith("#3 line ")]
    assert printed == [f"#3 line {number}" for number in range(100_000)]
    _seconds, tty_output = build_with_progress(tmp_path, dockerfile, "tty")
    assert len(tty_output) < 300_000
