"""A stage's RUN started on the files of the COPY before it, while that COPY's layer is still
being written and hashed.

A COPY that missed the cache writes its files into its upper dir, then commits them: the
layer's tar is written (or spliced) and hashed, the upper dir adopted as the snapshot, the
record saved. For a large context that is 20 to 30 ms in which the next RUN would wait,
though all its container needs is the files. So when the stage's next filesystem op is a
plain RUN (no ``--mount``, sandboxed) sure to miss the cache as well (its key, made from the
COPY's key, known since the COPY was probed, and its own text, has no record, or the cache
is off for it), its container is started at once on the COPY's upper dir as its top lower
dir, beside the commit. Overlayfs resolves lower dirs when it mounts, so the rename that
makes that upper dir the COPY's snapshot leaves the container undisturbed; and until the
RUN is done the COPY's workspace is kept (an upper dir not adopted, because another build
stored the same snapshot meanwhile, is removed only then).

The solver still runs two steps in order: the COPY's run returns once its layer is
committed, and the RUN's finds its container started or done. What the container printed
so far is passed on once the RUN step has been announced, the rest as it comes, and its
layer is committed as any RUN's. A RUN whose probe finds a record after all (another build
saved one meanwhile) drops what ran early: the container is waited for and its changes
discarded. One no step claims (the build failed before the RUN) is waited for and removed
when the runner closes; an interrupt stops its container as it stops every other.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import ExitStack
from typing import TYPE_CHECKING

from builder.graph import ConfigOp, Exec

if TYPE_CHECKING:
    from builder.events import Event, EventSink
    from builder.graph import Op, Stage
    from builder.workspace import StepWorkspace


def next_run(op: Op, stage: Stage) -> Exec | None:
    """The RUN that is ``stage``'s next filesystem op after ``op``, when one may start early:
    without mounts (their sources are other stages, caches, secrets) and sandboxed."""
    ops = stage.ops
    index = next(position for position, candidate in enumerate(ops) if candidate is op)
    for later in ops[index + 1 :]:
        if isinstance(later, ConfigOp):
            continue
        if isinstance(later, Exec) and not later.mounts and later.security == "sandbox":
            return later
        return None
    return None


class HeldSink:
    """An event sink that holds what it is given until :meth:`release`, then passes events
    on as they come, in order."""

    def __init__(self, sink: EventSink) -> None:
        self._sink = sink
        self._lock = threading.Lock()
        self._held: list[Event] | None = []

    def __call__(self, event: Event) -> None:
        with self._lock:
            if self._held is not None:
                self._held.append(event)
                return
        self._sink(event)

    def release(self) -> None:
        """Pass on what was held; from now on, pass events straight on."""
        with self._lock:  # (an event arriving meanwhile waits, and so follows these)
            held, self._held = self._held or [], None
            for event in held:
                self._sink(event)


class PrestartedRun:
    """A RUN's container started early, on a thread of its own, in its own workspace.

    ``cleanup`` removes that workspace (and the COPY's, handed over by the COPY) once closed.
    """

    def __init__(
        self, op: Exec, key: str, workspace: StepWorkspace, cleanup: ExitStack, output: HeldSink
    ) -> None:
        self.op = op
        #: The RUN's cache key as computed ahead: its step uses this run only under that key.
        self.key = key
        self.workspace = workspace
        self.cleanup = cleanup
        self.output = output
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()

    def start(self, run: Callable[[Callable[[], None]], None]) -> None:
        """Run ``run`` (the RUN's container, to completion) on a thread of its own; ``run``
        calls the function it is given once the container's runtime is started."""

        def body() -> None:
            try:
                run(self._started.set)
            except BaseException as err:  # raised where the RUN's step takes the run
                self._error = err
            finally:
                self._started.set()

        self._thread = threading.Thread(target=body, name="prestarted-run", daemon=True)
        self._thread.start()

    def wait_started(self) -> None:
        """Wait until the container's runtime is started (or the run is over)."""
        self._started.wait()

    def wait(self) -> None:
        """Wait for the container to be done; raise what the run raised."""
        if self._thread is not None:
            self._thread.join()
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def close(self) -> None:
        """Wait for the run, whatever became of it, and remove its workspace."""
        try:
            if self._thread is not None:
                self._thread.join()
        finally:
            self._error = None
            self.cleanup.close()
