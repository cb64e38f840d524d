"""What a build reports while it runs: typed events sent to a sink.

The solver never prints; it emits these to an :data:`EventSink`, and renderers in
:mod:`builder.progress` decide what a person or a machine sees. Events may come from several
threads at once (stages run concurrently), so sinks must be thread-safe.
"""

from __future__ import annotations

from collections.abc import Callable

from builder.lazyclasses import dataclass
from builder.source import SourceSpan


@dataclass(frozen=True)
class StepStarted:
    """A step begins: ``name`` reads like BuildKit's ``[build 3/7] RUN make``."""

    step: int
    name: str
    location: SourceSpan | None = None


@dataclass(frozen=True)
class StepCached:
    """The step's result came from the cache; nothing ran."""

    step: int


@dataclass(frozen=True)
class StepLog:
    """Output of a running step, in the order it came (stdout and stderr merged)."""

    step: int
    data: bytes


@dataclass(frozen=True)
class StepDone:
    """The step finished; ``layer_size`` and ``layer_digest`` are empty for config-only steps."""

    step: int
    seconds: float
    layer_size: int = 0
    layer_digest: str = ""
    reason: str = ""


@dataclass(frozen=True)
class StepFailed:
    """The step failed; ``message`` says why (the build error follows)."""

    step: int
    seconds: float
    message: str


@dataclass(frozen=True)
class BuildFinished:
    """The whole build is done: the image's id and where it went."""

    image_id: str
    seconds: float
    names: tuple[str, ...] = ()
    cached_steps: int = 0
    total_steps: int = 0


@dataclass(frozen=True)
class Notice:
    """A warning or remark that is not tied to one step (unused build args, ...)."""

    message: str


@dataclass(frozen=True)
class TransferProgress:
    """Bytes of one blob moved to or from a registry; ``skipped`` when it was already there.

    ``direction`` is ``"pull"`` or ``"push"``; ``done_bytes == total_bytes`` marks the end.
    """

    ref: str
    digest: str
    done_bytes: int
    total_bytes: int
    direction: str = "pull"
    skipped: bool = False


Event = StepStarted | StepCached | StepLog | StepDone | StepFailed | BuildFinished | Notice | TransferProgress
EventSink = Callable[[Event], None]


def discard(event: Event) -> None:
    """A sink that drops every event."""
