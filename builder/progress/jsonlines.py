"""``--progress=json``: every event as one JSON object on its own line, for CI systems.

The objects follow ``builder/progress/schema.json`` (documented in ``docs/progress-json.md``):
``type`` names the event in snake case, ``time`` is seconds since the renderer started, and
the event's own fields follow under their own names. Output is never clipped; a log chunk
that is not valid UTF-8 also carries its exact bytes in ``base64``.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

from builder.events import Event, StepLog
from builder.source import SourceSpan

#: Bumped when a field changes meaning or disappears (adding fields or event types does not).
SCHEMA_VERSION = 1


def event_type(event: object) -> str:
    """``StepStarted`` → ``step_started``: the ``type`` of an event's JSON object."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(event).__name__).lower()


def event_document(event: Event, seconds: float) -> dict[str, Any]:
    """One event as a JSON-ready mapping (``type``, ``version``, ``time``, then its fields)."""
    document: dict[str, Any] = {
        "type": event_type(event),
        "version": SCHEMA_VERSION,
        "time": round(seconds, 6),
    }
    for item in dataclasses.fields(event):
        document[item.name] = _jsonable(getattr(event, item.name))
    if isinstance(event, StepLog):
        del document["data"]
        document["text"] = event.data.decode("utf-8", errors="replace")
        if not _is_utf8(event.data):
            document["base64"] = base64.b64encode(event.data).decode("ascii")
    return document


class JsonLinesRenderer:
    """Writes one compact JSON object per event, in the order events arrive."""

    def __init__(self, stream: TextIO, clock: Callable[[], float] = time.monotonic) -> None:
        self._stream = stream
        self._clock = clock
        self._started_at = clock()
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        with self._lock:
            document = event_document(event, self._clock() - self._started_at)
            self._stream.write(json.dumps(document, ensure_ascii=False, separators=(",", ":")) + "\n")
            self._stream.flush()

    def close(self) -> None:
        with self._lock:
            self._stream.flush()


def _jsonable(value: object) -> object:
    if isinstance(value, SourceSpan):
        return {
            "file": value.file,
            "start_line": value.start_line,
            "end_line": value.end_line,
            "start_column": value.start_column,
            "text": value.text,
        }
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, tuple | list):
        return [_jsonable(item) for item in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {item.name: _jsonable(getattr(value, item.name)) for item in dataclasses.fields(value)}
    return value


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
