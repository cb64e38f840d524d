"""What the build looks like so far, folded from its events: stages, their steps, each step's state.

The live view and the metadata report both read this model instead of re-deriving state from
the raw event stream. It is not locked itself; a renderer that shares it between the solver's
threads and its own refresh thread holds one lock around :meth:`BuildModel.apply` and reads.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from dataclasses import field
from enum import Enum

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
from builder.lazyclasses import dataclass
from builder.progress._text import LineSplitter, clean_text, printable
from builder.source import SourceSpan

#: ``[build 3/7] RUN make``: the solver's step names, as BuildKit prints them.
_STEP_NAME = re.compile(
    r"^\[(?P<stage>.+) (?P<position>\d+)/(?P<count>\d+)\] (?P<instruction>.*)$", re.DOTALL
)

#: How many of a step's last output lines are kept (the failure report shows them).
TAIL_LINES = 20


class StepState(Enum):
    """Where a step is: running, finished one of four ways, or never finished."""

    RUNNING = "running"
    CACHED = "cached"
    REBUILT = "rebuilt"
    BASE = "base"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass
class StepView:
    """One step as the renderers show it; ``stage`` and ``position`` come from its name."""

    number: int
    name: str
    stage: str
    position: int
    count: int
    instruction: str
    location: SourceSpan | None
    started_at: float
    state: StepState = StepState.RUNNING
    seconds: float | None = None
    layer_size: int = 0
    layer_digest: str = ""
    reason: str = ""
    error: str = ""
    log_lines: int = 0
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))

    @property
    def finished(self) -> bool:
        return self.state is not StepState.RUNNING

    def elapsed(self, now: float) -> float:
        """The recorded duration once finished, else the time since it started."""
        return self.seconds if self.seconds is not None else max(0.0, now - self.started_at)


@dataclass
class TransferView:
    """One blob moving to or from a registry; the first and the latest report of it."""

    ref: str
    digest: str
    direction: str
    total_bytes: int
    started_at: float
    done_bytes: int = 0
    skipped: bool = False
    updated_at: float = 0.0

    @property
    def finished(self) -> bool:
        return self.skipped or self.done_bytes >= self.total_bytes

    def bytes_per_second(self) -> float:
        elapsed = self.updated_at - self.started_at
        return self.done_bytes / elapsed if elapsed > 0 else 0.0


@dataclass
class StageView:
    """A stage's steps in the order they started (their numbers increase within a stage)."""

    name: str
    count: int
    steps: list[StepView] = field(default_factory=list)


class BuildModel:
    """Folds events into stages and steps; ``clock`` stamps when each step started."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.started_at = clock()
        self.stages: dict[str, StageView] = {}
        self.steps: dict[int, StepView] = {}
        self.notices: list[str] = []
        self.transfers: dict[tuple[str, str], TransferView] = {}
        self.finished: BuildFinished | None = None
        self._lines = LineSplitter()

    def apply(self, event: Event) -> None:
        """Update the model with one event (cheap: a log keeps only its last lines decoded)."""
        if isinstance(event, StepStarted):
            self._start(event)
        elif isinstance(event, StepLog):
            self._log(event.step, self._lines.feed_raw(event.step, event.data))
        elif isinstance(event, BuildFinished):
            self.finished = event
        elif isinstance(event, Notice):
            self.notices.append(clean_text(event.message))
        elif isinstance(event, TransferProgress):
            self._transfer(event)
        elif event.step in self.steps:
            self._end(self.steps[event.step], event)

    def _end(self, step: StepView, event: StepCached | StepDone | StepFailed) -> None:
        if isinstance(event, StepCached):
            step.state = StepState.CACHED
            return
        rest = self._lines.finish(event.step)
        step.tail.extend(rest)
        step.log_lines += len(rest)
        step.seconds = event.seconds
        if isinstance(event, StepFailed):
            step.state = StepState.FAILED
            step.error = clean_text(event.message)
            return
        if step.state is StepState.RUNNING:
            step.state = StepState.BASE if _is_base(step) else StepState.REBUILT
        step.layer_size = event.layer_size
        step.layer_digest = event.layer_digest
        step.reason = event.reason

    def cancel_unfinished(self) -> None:
        """The build ended: a step still running never finished (another stage failed)."""
        for step in self.steps.values():
            if step.state is StepState.RUNNING:
                step.state = StepState.CANCELLED

    def ordered_steps(self) -> list[StepView]:
        return [self.steps[number] for number in sorted(self.steps)]

    @property
    def failed_steps(self) -> list[StepView]:
        return [step for step in self.ordered_steps() if step.state is StepState.FAILED]

    @property
    def total_steps(self) -> int:
        """Steps of every stage seen so far, including those not started yet."""
        return sum(stage.count for stage in self.stages.values())

    def elapsed(self) -> float:
        if self.finished is not None:
            return self.finished.seconds
        return max(0.0, self._clock() - self.started_at)

    def now(self) -> float:
        return self._clock()

    def _start(self, event: StepStarted) -> None:
        name = clean_text(event.name)
        match = _STEP_NAME.match(name)
        if match:
            stage_name, position = match["stage"], int(match["position"])
            count, instruction = int(match["count"]), match["instruction"]
        else:
            stage_name, position, count, instruction = "", 1, 1, name
        step = StepView(
            event.step, name, stage_name, position, count, instruction, event.location, self._clock()
        )
        self.steps[event.step] = step
        stage = self.stages.setdefault(stage_name, StageView(stage_name, count))
        stage.steps.append(step)
        stage.steps.sort(key=lambda view: view.number)

    def _transfer(self, event: TransferProgress) -> None:
        now = self._clock()
        key = (event.direction, event.digest)
        transfer = self.transfers.get(key)
        if transfer is None:
            transfer = TransferView(event.ref, event.digest, event.direction, event.total_bytes, now)
            self.transfers[key] = transfer
        transfer.done_bytes = event.done_bytes
        transfer.total_bytes = event.total_bytes
        transfer.skipped = event.skipped
        transfer.updated_at = now

    def _log(self, number: int, lines: list[bytes]) -> None:
        step = self.steps.get(number)
        if step is not None:
            step.tail.extend(printable(line) for line in lines[-TAIL_LINES:])
            step.log_lines += len(lines)


def _is_base(step: StepView) -> bool:
    """The FROM step of a stage resolves its base; it is neither cached nor rebuilt."""
    return step.position == 1 and step.instruction.upper().startswith("FROM ")
