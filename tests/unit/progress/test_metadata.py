"""The --metadata-file report: per step instruction, location, cached or rebuilt and why, layer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from builder.errors import UsageError
from builder.events import Event
from builder.progress.metadata import MetadataCollector
from tests.unit.progress.fake_build import (
    IMAGE_ID,
    LAYER_COPY,
    LAYER_DOCS,
    LAYER_MAKE,
    FakeClock,
    failing_build,
    replay,
    successful_build,
)


def collect(timeline: list[tuple[float, Event]]) -> MetadataCollector:
    clock = FakeClock()
    collector = MetadataCollector(clock)
    replay(timeline, clock, collector)
    return collector


def step(
    number: int, stage: str, position: int, instruction: str, line: int, **fields: object
) -> dict[str, object]:
    document: dict[str, object] = {
        "step": number,
        "stage": stage,
        "position": position,
        "instruction": instruction,
        "location": {"file": "Dockerfile", "start_line": line, "end_line": line},
        "status": "rebuilt",
        "reason": "",
        "error": "",
        "seconds": None,
        "layer_digest": "",
        "layer_size": 0,
        "log_lines": 0,
    }
    document.update(fields)
    return document


def test_report_of_a_successful_build(tmp_path: Path) -> None:
    target = tmp_path / "metadata.json"
    collect(successful_build()).write(target, {"manifest_digest": "sha256:" + "0f" * 32})
    assert json.loads(target.read_text()) == {
        "image_id": IMAGE_ID,
        "names": ["demo:latest"],
        "seconds": 4.0,
        "cached_steps": 1,
        "total_steps": 6,
        "steps": [
            step(1, "build", 1, "FROM alpine:3.19", 2, status="base", seconds=0.2),
            step(
                2,
                "build",
                2,
                "COPY . .",
                4,
                status="cached",
                seconds=0.2,
                layer_digest=LAYER_COPY,
                layer_size=2048,
            ),
            step(
                3,
                "build",
                3,
                "RUN make",
                5,
                seconds=2.3,
                layer_digest=LAYER_MAKE,
                layer_size=1_234_567,
                reason="the context changed: main.c",
                log_lines=3,
            ),
            step(4, "build", 4, "RUN make test", 6, seconds=0.9, log_lines=3),
            step(5, "docs", 1, "FROM alpine:3.19", 8, status="base", seconds=0.3),
            step(
                6,
                "docs",
                2,
                "RUN gen-docs --all",
                9,
                seconds=3.7,
                layer_digest=LAYER_DOCS,
                layer_size=56_000,
                reason="no cache record",
                log_lines=1,
            ),
        ],
        "warnings": ["build arg VERSION was never used"],
        "manifest_digest": "sha256:" + "0f" * 32,
    }
    assert [path.name for path in tmp_path.iterdir()] == ["metadata.json"]


def test_report_of_a_failed_build_names_the_error_and_the_cancelled_step() -> None:
    report = collect(failing_build()).report()
    assert report["image_id"] == ""
    assert report["seconds"] == 4.0
    statuses = {entry["step"]: (entry["status"], entry["error"]) for entry in report["steps"]}
    assert statuses[4] == (
        "failed",
        'process "/bin/sh -c make test" did not complete successfully: exit code: 2',
    )
    assert statuses[6] == ("cancelled", "")


def test_unwritable_metadata_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as raised:
        collect(successful_build()).write(tmp_path / "missing" / "metadata.json")
    assert str(raised.value).startswith(f"cannot write metadata file {tmp_path}/missing/metadata.json: ")
