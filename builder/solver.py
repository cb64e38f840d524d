"""Runs an instruction graph: stages in dependency order, independent ones at once.

Each stage runs in its own thread and waits only for the stages it reads (its base,
``--from`` sources, mount sources), so two independent stages overlap while a stage that
copies from both waits for both. A graph of one stage runs on the calling thread: nothing
could overlap it, and a thread would cost its own SQLite connections. Within a stage the
ops run in order on an :class:`~builder.imagestate.ImageState`, which the step runner grows
one layer at a time.

Threads are plain :mod:`threading` ones, not ``concurrent.futures``: that package loads
``logging`` (~8 ms of start-up, which a fully cached build, being one process per build,
pays every time).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Protocol

from builder.errors import BuildError, KilnError
from builder.events import EventSink, StepCached, StepDone, StepFailed, StepStarted
from builder.graph import BuildGraph, ConfigOp, ImageBase, Op, ScratchBase, Stage, StageBase
from builder.imagestate import ImageState, utc_timestamp
from builder.lazyclasses import dataclass


@dataclass(frozen=True)
class StepOutcome:
    """What running one filesystem op gave: the new state, and whether the cache served it."""

    state: ImageState
    cached: bool = False
    reason: str = ""


class StepRunner(Protocol):
    """What the solver needs from the machinery below it (implemented by the builder)."""

    def base_state(self, stage: Stage, base: ImageBase | ScratchBase) -> ImageState:
        """The state a stage starts from when its base is an image or scratch."""
        ...

    def run_op(self, op: Op, state: ImageState, where: StepContext) -> StepOutcome:
        """Run one filesystem-changing op on ``state``."""
        ...


@dataclass(frozen=True)
class StepContext:
    """Where an op runs: its stage, its step number, the event sink, the other stages."""

    stage: Stage
    step: int
    sink: EventSink
    states: StageStates


class StageResult:
    """One stage's final state or its failure, set once; readers wait until it is."""

    def __init__(self) -> None:
        self._done = threading.Event()
        self._state: ImageState | None = None
        self._error: BaseException | None = None

    def set_result(self, state: ImageState) -> None:
        self._state = state
        self._done.set()

    def set_exception(self, error: BaseException) -> None:
        self._error = error
        self._done.set()

    def result(self) -> ImageState:
        """The state, waiting for it; raises the stage's failure instead when it failed."""
        self._done.wait()
        if self._error is not None:
            raise self._error
        assert self._state is not None  # set_result ran
        return self._state


class StageStates:
    """The final state of every stage: readers block until a stage is done."""

    def __init__(self) -> None:
        self._results: dict[int, StageResult] = {}
        self._lock = threading.Lock()

    def future(self, index: int) -> StageResult:
        with self._lock:
            return self._results.setdefault(index, StageResult())

    def get(self, index: int) -> ImageState:
        """The final state of stage ``index``, waiting for it; re-raises its failure."""
        return self.future(index).result()


@dataclass(frozen=True)
class StepNumbering:
    """BuildKit-style step names: ``[stage i/n] INSTR``, FROM being step 1 of each stage."""

    first_step: Mapping[int, int]
    total_steps: int


def number_steps(graph: BuildGraph) -> StepNumbering:
    """Give every stage a block of step numbers: one for its FROM, one per filesystem op."""
    first: dict[int, int] = {}
    next_step = 1
    for stage in graph.stages:
        first[stage.index] = next_step
        next_step += 1 + sum(1 for op in stage.ops if not isinstance(op, ConfigOp))
    return StepNumbering(first, next_step - 1)


def stage_label(stage: Stage) -> str:
    return stage.name or f"stage-{stage.index}"


class Solver:
    """Schedules the stages of a graph on threads and runs each one's ops in order."""

    def __init__(
        self,
        runner: StepRunner,
        sink: EventSink,
        clock: Callable[[], float] = time.monotonic,
        *,
        source_date_epoch: int | None = None,
    ) -> None:
        self._source_date_epoch = source_date_epoch
        self._runner = runner
        self._sink = sink
        self._clock = clock
        self.cached_steps = 0
        self.total_steps = 0
        self._count_lock = threading.Lock()

    def solve(self, graph: BuildGraph) -> ImageState:
        """Build every stage in the graph; return the target stage's final state."""
        numbering = number_steps(graph)
        states = StageStates()
        failure = threading.Event()
        if len(graph.stages) == 1 and threading.current_thread() is not threading.main_thread():
            # Off the main thread no signal handler can interrupt a step halfway (its
            # container stop, unmount or commit); on it, the stage gets a thread as below.
            self._run_stage_into(graph.stages[0], numbering, states, failure)
            return states.get(graph.target)
        workers = [
            threading.Thread(
                target=self._run_stage_into,
                args=(stage, numbering, states, failure),
                name=f"stage-{stage.index}",
            )
            for stage in graph.stages
        ]
        for worker in workers:
            worker.start()
        try:
            return states.get(graph.target)
        except BaseException:
            failure.set()
            raise
        finally:
            for worker in workers:
                worker.join()

    def _run_stage_into(
        self, stage: Stage, numbering: StepNumbering, states: StageStates, failure: threading.Event
    ) -> None:
        future = states.future(stage.index)
        try:
            future.set_result(self._run_stage(stage, numbering, states, failure))
        except BaseException as err:
            failure.set()
            future.set_exception(err)

    def _run_stage(
        self, stage: Stage, numbering: StepNumbering, states: StageStates, failure: threading.Event
    ) -> ImageState:
        fs_ops = [op for op in stage.ops if not isinstance(op, ConfigOp)]
        count = len(fs_ops) + 1
        step = numbering.first_step[stage.index]
        label = stage_label(stage)
        self._sink(StepStarted(step, f"[{label} 1/{count}] FROM {_describe_base(stage)}", stage.location))
        started = self._clock()
        if isinstance(stage.base, StageBase):
            state = states.get(stage.base.stage)
        else:
            state = self._runner.base_state(stage, stage.base)
        self._sink(StepDone(step, self._clock() - started))
        position = 1
        for op in stage.ops:
            if failure.is_set():
                raise BuildError("build cancelled: another stage failed")
            if isinstance(op, ConfigOp):
                state = state.with_config(op.config)
                if op.in_history:
                    created = utc_timestamp(self._source_date_epoch)
                    state = state.with_history(op.created_by, empty_layer=True, created=created)
                continue
            position += 1
            step += 1
            where = StepContext(stage, step, self._sink, states)
            state = self._run_op(op, state, where, f"[{label} {position}/{count}]")
        return state

    def _run_op(self, op: Op, state: ImageState, where: StepContext, prefix: str) -> ImageState:
        step = where.step
        first_line = op.location.text.splitlines()[0].strip() if op.location.text else op.created_by
        self._sink(StepStarted(step, f"{prefix} {first_line}", op.location))
        started = self._clock()
        try:
            outcome = self._runner.run_op(op, state, where)
        except KilnError as err:
            self._sink(StepFailed(step, self._clock() - started, str(err).splitlines()[0]))
            raise
        with self._count_lock:
            self.total_steps += 1
            if outcome.cached:
                self.cached_steps += 1
        if outcome.cached:
            self._sink(StepCached(step))
        layer = outcome.state.layers[-1] if outcome.state.layers else None
        self._sink(
            StepDone(
                step,
                self._clock() - started,
                layer.size if layer else 0,
                layer.digest if layer else "",
                outcome.reason,
            )
        )
        return outcome.state


def _describe_base(stage: Stage) -> str:
    if isinstance(stage.base, ImageBase):
        return stage.base.ref
    if isinstance(stage.base, StageBase):
        return f"stage {stage.base.stage}"
    return "scratch"
