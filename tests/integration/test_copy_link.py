"""``COPY --link``: the layer is written against an empty root, so its content and digest do
not depend on the layers under it, the same files give the same layer on any base, and a
changed base reuses the cached layer (the steps after it still follow the base)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fixtures.context_files import make_tree
from tests.fixtures.kiln_cli import kiln

pytestmark = [pytest.mark.root, pytest.mark.slow]

FIRST_BASE = "FROM busybox\n"
# A different base: an extra layer, and /app already present with other content.
SECOND_BASE = "FROM busybox\nRUN mkdir -p /app && echo old > /app/old.txt && echo other > /other\n"
LINKED = "COPY --link app /app/\n"


def _diff_ids(store: Path, tag: str, capfd: pytest.CaptureFixture[str]) -> list[str]:
    capfd.readouterr()
    assert kiln(store, "inspect", tag) == 0
    [document] = json.loads(capfd.readouterr().out)
    return list(document["RootFS"]["Layers"])


def test_link_layer_is_the_same_on_two_bases(
    tmp_path: Path,
    busybox_store: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    context = make_tree(tmp_path / "ctx", {"app/main.py": "print('hi')\n"})
    logs: dict[str, str] = {}
    for tag, base in (("first", FIRST_BASE), ("second", SECOND_BASE)):
        (context / f"{tag}.Dockerfile").write_text(base + LINKED)
        out = tmp_path / tag
        status = kiln(
            busybox_store,
            "build",
            "-t",
            tag,
            "-f",
            str(context / f"{tag}.Dockerfile"),
            "-o",
            f"type=local,dest={out}",
            str(context),
        )
        logs[tag] = capfd.readouterr().err
        assert status == 0, logs[tag]
    first, second = _diff_ids(busybox_store, "first", capfd), _diff_ids(busybox_store, "second", capfd)
    assert len(second) == len(first) + 1
    assert first[-1] == second[-1]
    assert first[:-1] == second[:-2]
    # The second base reuses the first build's --link layer: only its RUN ran.
    assert "(1/2 steps cached)" in logs["second"]
    # The linked layer sits on top of the base's files: both are visible.
    assert (tmp_path / "second" / "app" / "main.py").read_text() == "print('hi')\n"
    assert (tmp_path / "second" / "app" / "old.txt").read_text() == "old\n"
    assert (tmp_path / "first" / "app" / "main.py").read_text() == "print('hi')\n"


def test_steps_after_a_reused_link_layer_follow_the_base(
    tmp_path: Path,
    busybox_store: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    context = make_tree(tmp_path / "ctx", {"app/main.py": "print('hi')\n"})
    after = "RUN ls /app > /listing\n"
    for tag, base in (("first", FIRST_BASE), ("second", SECOND_BASE)):
        (context / "Dockerfile").write_text(base + LINKED + after)
        out = tmp_path / tag
        status = kiln(busybox_store, "build", "-o", f"type=local,dest={out}", str(context))
        assert status == 0, capfd.readouterr().err
    assert (tmp_path / "first" / "listing").read_text() == "main.py\n"
    assert (tmp_path / "second" / "listing").read_text() == "main.py\nold.txt\n"
