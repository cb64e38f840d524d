"""A symlink in the image never leads a build step onto the host.

The image gets ``/app -> /etc`` from a RUN (an absolute link, as an attacker would plant
it); then COPY into ``/app/`` and WORKDIR below ``/app`` must land in the image's /etc,
resolved inside the rootfs as ``openat2(RESOLVE_IN_ROOT)`` would, and the host's /etc must
stay untouched.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.fixtures.kiln_cli import kiln

pytestmark = [pytest.mark.root, pytest.mark.slow]


def test_copy_and_workdir_through_an_absolute_symlink_stay_in_the_image(
    tmp_path: Path,
    busybox_store: Path,
) -> None:
    marker = f"kiln-escape-{uuid.uuid4().hex[:12]}"
    host_file, host_dir = Path("/etc") / marker, Path("/etc") / f"{marker}.d"
    assert not host_file.exists() and not host_dir.exists()
    context = tmp_path / "context"
    context.mkdir()
    (context / marker).write_text("planted\n")
    (context / "Dockerfile").write_text(
        "FROM busybox\n"
        "RUN ln -s /etc /app\n"
        f"COPY {marker} /app/\n"
        f"WORKDIR /app/{marker}.d\n"
        "RUN pwd > here && readlink /app > /app-target\n"
    )
    exported = tmp_path / "exported"

    status = kiln(
        busybox_store, "build", "-q", "-t", "escape", "-o", f"type=local,dest={exported}", str(context)
    )

    assert status == 0
    assert not host_file.exists()
    assert not host_dir.exists()
    assert (exported / "app").readlink() == Path("/etc")
    assert (exported / "etc" / marker).read_text() == "planted\n"
    assert (exported / "etc" / f"{marker}.d").is_dir()
    # The RUN works in the directory the link leads to inside the image.
    assert (exported / "etc" / f"{marker}.d" / "here").read_text() == f"/etc/{marker}.d\n"
    assert (exported / "app-target").read_text() == "/etc\n"
