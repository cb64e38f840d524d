"""``--metadata-file FILE``: a JSON report of what the build did, collected from its events.

The collector is an event sink like a renderer (fan both out with
:func:`builder.progress.select.tee`); after the build, :meth:`MetadataCollector.write` writes
the report. Steps are listed by number with their instruction, location, whether the cache
served them (and the cache's explanation when it did not), duration and layer.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from builder.errors import UsageError
from builder.events import Event
from builder.progress.model import BuildModel, StepState, StepView


class MetadataCollector:
    """Folds events into a :class:`BuildModel` and turns it into the report on request."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._model = BuildModel(clock)
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        with self._lock:
            self._model.apply(event)

    def report(self, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The report as JSON-ready data; ``extra`` adds keys the events do not carry
        (the caller knows the manifest digest, for example)."""
        with self._lock:
            self._model.cancel_unfinished()
            finished = self._model.finished
            document: dict[str, Any] = {
                "image_id": finished.image_id if finished else "",
                "names": list(finished.names) if finished else [],
                "seconds": round(self._model.elapsed(), 3),
                "cached_steps": sum(
                    1 for step in self._model.steps.values() if step.state is StepState.CACHED
                ),
                "total_steps": len(self._model.steps),
                "steps": [_step_document(step) for step in self._model.ordered_steps()],
                "warnings": list(self._model.notices),
            }
        document.update(extra or {})
        return document

    def write(self, path: Path, extra: Mapping[str, Any] | None = None) -> None:
        """Write the report to ``path`` whole (a temporary file renamed into place)."""
        text = json.dumps(self.report(extra), indent=2, ensure_ascii=False) + "\n"
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            temporary.write_text(text, encoding="utf-8")
            os.replace(temporary, path)
        except OSError as err:
            temporary.unlink(missing_ok=True)
            raise UsageError(f"cannot write metadata file {path}: {err.strerror or err}") from err


def _step_document(step: StepView) -> dict[str, Any]:
    location = step.location
    return {
        "step": step.number,
        "stage": step.stage,
        "position": step.position,
        "instruction": step.instruction,
        "location": (
            {"file": location.file, "start_line": location.start_line, "end_line": location.end_line}
            if location
            else None
        ),
        "status": step.state.value,
        "reason": step.reason,
        "error": step.error,
        "seconds": round(step.seconds, 3) if step.seconds is not None else None,
        "layer_digest": step.layer_digest,
        "layer_size": step.layer_size,
        "log_lines": step.log_lines,
    }
