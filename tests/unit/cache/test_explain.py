from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import pytest

from builder.graph import ContextSource, CopyOp, Exec, Platform
from builder.source import SourceSpan
from cache.explain import FIRST_BUILD, LAYER_GONE, NO_CACHE, changed_files, explain_all, explain_miss
from cache.keys import SOURCE_INPUT, image_parent, op_key, stage_parent

AMD64 = Platform("linux", "amd64")
BASE = image_parent("sha256:" + "a" * 64)
SPAN = SourceSpan("Dockerfile", 3, 3)


def run_preimage(
    parent: str = BASE, platform: Platform = AMD64, changes: Mapping[str, object] | None = None
) -> dict[str, object]:
    op = Exec(
        SPAN,
        "RUN make",
        argv=("/bin/sh", "-c", "make"),
        env=("PATH=/bin", "VERSION=1", "MODE=fast"),
        cwd="/src",
        build_args=("VERSION=1",),
    )
    op = dataclasses.replace(op, **(changes or {}))  # type: ignore[arg-type]
    return dict(op_key(op, parent=parent, platform=platform, inputs={}).preimage)


def copy_preimage(source_digest: str, op: CopyOp | None = None) -> dict[str, object]:
    op = op or CopyOp(SPAN, "COPY app /app", ContextSource(), ("app",), "/app")
    return dict(op_key(op, parent=BASE, platform=AMD64, inputs={SOURCE_INPUT: source_digest}).preimage)


def test_no_cache_first_build_and_gone_layer() -> None:
    assert explain_miss(run_preimage(), run_preimage(), no_cache=True) == NO_CACHE == "--no-cache"
    assert explain_miss(run_preimage(), None) == FIRST_BUILD == "no previous build of this step"
    assert explain_miss(run_preimage(), run_preimage()) == LAYER_GONE


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"env": ("PATH=/bin", "VERSION=2", "MODE=fast"), "build_args": ("VERSION=2",)},
            "build arg VERSION changed from 1 to 2",
        ),
        ({"env": ("PATH=/bin", "VERSION=1", "MODE=slow")}, "env MODE changed from fast to slow"),
        ({"env": ("PATH=/bin", "VERSION=1")}, "env MODE removed (was fast)"),
        (
            {"env": ("PATH=/bin", "VERSION=1", "MODE=fast", "NEW=x"), "build_args": ("VERSION=1", "NEW=x")},
            "build arg NEW added (NEW=x)",
        ),
        ({"argv": ("/bin/sh", "-c", "make all")}, "instruction changed (command)"),
        ({"cwd": "/"}, "instruction changed (working directory)"),
    ],
)
def test_op_changes_are_named(changes: dict[str, object], expected: str) -> None:
    assert explain_miss(run_preimage(changes=changes), run_preimage()) == expected


def test_parent_changes() -> None:
    new_base = image_parent("sha256:" + "b" * 64)
    assert (
        explain_miss(run_preimage(parent=new_base), run_preimage())
        == "base image digest changed from aaaaaaaaaaaa to bbbbbbbbbbbb"
    )
    assert explain_miss(run_preimage(parent="scratch"), run_preimage()) == "base image changed"
    assert (
        explain_miss(run_preimage(parent="sha256:" + "2" * 64), run_preimage(parent="sha256:" + "1" * 64))
        == "previous step was rebuilt"
    )
    assert (
        explain_miss(run_preimage(parent=stage_parent("sha256:" + "2" * 64)), run_preimage())
        == "base image changed"
    )
    assert (
        explain_miss(
            run_preimage(parent=stage_parent("sha256:" + "2" * 64)),
            run_preimage(parent=stage_parent("sha256:" + "1" * 64)),
        )
        == "the stage it is based on changed"
    )


def test_platform_and_kind() -> None:
    arm = Platform("linux", "arm64")
    assert (
        explain_miss(run_preimage(platform=arm), run_preimage())
        == "platform changed from linux/amd64 to linux/arm64"
    )
    assert explain_miss(copy_preimage("sha256:1"), run_preimage()) == "instruction changed"


def test_changed_file_is_named() -> None:
    old_files = {"source": {"app": "d1", "app/main.py": "f1", "app/util.py": "f2"}}
    new_files = {"source": {"app": "d1", "app/main.py": "f9", "app/util.py": "f2"}}
    assert (
        explain_miss(
            copy_preimage("sha256:2"), copy_preimage("sha256:1"), file_changes=_changes(old_files, new_files)
        )
        == "file app/main.py changed"
    )


def test_added_removed_and_many_files() -> None:
    old_files = {"source": {"a": "1", "b": "1", "c": "1", "d": "1"}}
    new_files = {"source": {"a": "2", "b": "2", "e": "1", "f": "1"}}
    assert (
        explain_miss(
            copy_preimage("sha256:2"), copy_preimage("sha256:1"), file_changes=_changes(old_files, new_files)
        )
        == "file a changed, file b changed, file c removed and 3 more"
    )


def test_changed_input_without_file_lists() -> None:
    assert explain_miss(copy_preimage("sha256:2"), copy_preimage("sha256:1")) == "source content changed"


def test_copy_destination_change() -> None:
    moved = CopyOp(SPAN, "COPY app /srv", ContextSource(), ("app",), "/srv")
    assert (
        explain_miss(copy_preimage("sha256:1", moved), copy_preimage("sha256:1"))
        == "instruction changed (destination)"
    )


def test_explain_all_lists_every_difference() -> None:
    changed = run_preimage(
        parent=image_parent("sha256:" + "b" * 64),
        changes={
            "env": ("PATH=/bin", "VERSION=2", "MODE=slow"),
            "build_args": ("VERSION=2",),
            "cwd": "/",
        },
    )
    assert explain_all(changed, run_preimage()) == [
        "base image digest changed from aaaaaaaaaaaa to bbbbbbbbbbbb",
        "env MODE changed from fast to slow",
        "build arg VERSION changed from 1 to 2",
        "instruction changed (working directory)",
    ]


def test_explain_all_names_every_file() -> None:
    old_files = {"source": {"a": "1", "b": "1", "c": "1", "d": "1"}}
    new_files = {"source": {"a": "2", "b": "2", "e": "1", "f": "1"}}
    assert explain_all(
        copy_preimage("sha256:2"), copy_preimage("sha256:1"), file_changes=_changes(old_files, new_files)
    ) == [
        "file a changed",
        "file b changed",
        "file c removed",
        "file d removed",
        "file e added",
        "file f added",
    ]
    assert explain_all(copy_preimage("sha256:2"), copy_preimage("sha256:1")) == ["source content changed"]
    assert explain_all(copy_preimage("sha256:1"), None) == [FIRST_BUILD]


def _changes(
    old_files: dict[str, dict[str, str]], new_files: dict[str, dict[str, str]]
) -> dict[str, list[tuple[str, str]]]:
    """Each input's changed files, as the probe gives them (:func:`changed_files`)."""
    return {name: list(changed_files(old_files[name], new_files[name])) for name in old_files}
