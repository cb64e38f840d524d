"""Independent stages run at the same time.

Each of two stages announces itself in a shared cache mount and waits (up to 20 s) for the
other: both finish with "met" only if their steps ran at the same time. That proves the
concurrency without a wall-clock threshold, which a loaded machine could miss; the time the
build took is still reported.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from builder.store import Store
from tests.fixtures.context_files import make_tree
from tests.fixtures.kiln_cli import kiln

pytestmark = [pytest.mark.root, pytest.mark.slow]

_MEET = (
    "touch /meet/{me} && i=0 && "
    "while [ ! -e /meet/{other} ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done && "
    "[ -e /meet/{other} ] && echo met > /{me}"
)

DOCKERFILE = f"""\
FROM busybox AS left
RUN --mount=type=cache,id=meet,target=/meet {_MEET.format(me="left", other="right")}

FROM busybox AS right
RUN --mount=type=cache,id=meet,target=/meet {_MEET.format(me="right", other="left")}

FROM busybox
COPY --from=left /left /out/
COPY --from=right /right /out/
"""


def test_independent_stages_run_concurrently(tmp_path: Path, busybox_store: Path) -> None:
    context = make_tree(tmp_path / "context", {"Dockerfile": DOCKERFILE})
    exported = tmp_path / "exported"
    with Store.open(busybox_store) as store:
        store.snapshot_for("busybox")  # the base unpacked before the clock starts

    started = time.monotonic()
    status = kiln(
        busybox_store, "build", "-q", "-t", "both", "-o", f"type=local,dest={exported}", str(context)
    )
    elapsed = time.monotonic() - started

    assert status == 0, f"the stages did not meet (one ran after the other?) in {elapsed:.2f} s"
    assert (exported / "out" / "left").read_text() == "met\n"
    assert (exported / "out" / "right").read_text() == "met\n"
