"""JSON lines: every event becomes one object that validates against the published schema."""

from __future__ import annotations

import io
import json
import typing
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from builder.events import Event, StepLog
from builder.progress.jsonlines import JsonLinesRenderer, event_type
from tests.unit.progress.fake_build import (
    IMAGE_ID,
    LAYER_MAKE,
    FakeClock,
    failing_build,
    replay,
    successful_build,
)


def schema() -> dict[str, Any]:
    text = resources.files("builder.progress").joinpath("schema.json").read_text(encoding="utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


def render(timeline: list[tuple[float, Event]]) -> list[dict[str, Any]]:
    stream = io.StringIO()
    clock = FakeClock()
    renderer = JsonLinesRenderer(stream, clock)
    replay(timeline, clock, renderer)
    renderer.close()
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_schema_is_valid_and_names_every_event_type() -> None:
    Draft202012Validator.check_schema(schema())
    documented = {ref["$ref"].rsplit("/", 1)[-1] for ref in schema()["oneOf"]}
    event_classes = typing.get_args(Event)
    assert documented == {event_type(cls.__new__(cls)) for cls in event_classes}


def test_every_line_of_both_builds_validates() -> None:
    validator = Draft202012Validator(schema())
    for timeline in (successful_build(), failing_build()):
        documents = render(timeline)
        assert len(documents) == len(timeline)
        for document in documents:
            assert list(validator.iter_errors(document)) == []


def test_documents_carry_the_event_fields_and_the_time() -> None:
    documents = render(successful_build())
    assert [document["type"] for document in documents[:7]] == [
        "notice",
        "step_started",
        "step_started",
        "transfer_progress",
        "transfer_progress",
        "transfer_progress",
        "step_done",
    ]
    assert documents[4] == {
        "type": "transfer_progress",
        "version": 1,
        "time": 0.1,
        "ref": "docker.io/library/alpine:3.19",
        "digest": "sha256:" + "ba" * 32,
        "done_bytes": 1_048_576,
        "total_bytes": 3_400_000,
        "direction": "pull",
        "skipped": False,
    }
    assert documents[1] == {
        "type": "step_started",
        "version": 1,
        "time": 0.0,
        "step": 1,
        "name": "[build 1/4] FROM alpine:3.19",
        "location": {
            "file": "Dockerfile",
            "start_line": 2,
            "end_line": 2,
            "start_column": 1,
            "text": "FROM alpine:3.19 AS build",
        },
    }
    rebuilt = next(doc for doc in documents if doc["type"] == "step_done" and doc["step"] == 3)
    assert rebuilt == {
        "type": "step_done",
        "version": 1,
        "time": 2.7,
        "step": 3,
        "seconds": 2.3,
        "layer_size": 1_234_567,
        "layer_digest": LAYER_MAKE,
        "reason": "the context changed: main.c",
    }
    assert documents[-1] == {
        "type": "build_finished",
        "version": 1,
        "time": 4.0,
        "image_id": IMAGE_ID,
        "seconds": 4.0,
        "names": ["demo:latest"],
        "cached_steps": 1,
        "total_steps": 4,
    }


def test_log_text_is_whole_and_bytes_survive() -> None:
    documents = render([(100.0, StepLog(3, b"caf\xc3\xa9\n\x1b[0m")), (100.0, StepLog(3, b"\xff\xfe"))])
    assert documents[0] == {"type": "step_log", "version": 1, "time": 0.0, "step": 3, "text": "café\n\x1b[0m"}
    assert documents[1] == {
        "type": "step_log",
        "version": 1,
        "time": 0.0,
        "step": 3,
        "text": "\ufffd\ufffd",
        "base64": "//4=",
    }
    validator = Draft202012Validator(schema())
    assert all(not list(validator.iter_errors(document)) for document in documents)
