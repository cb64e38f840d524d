"""Heredocs run as BuildKit runs them: the shell's body, a ``#!`` interpreter, several per
command, ``COPY <<EOF`` files, and expansion decided by the delimiter's quoting."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.context_files import make_tree
from tests.fixtures.kiln_cli import kiln

pytestmark = [pytest.mark.root, pytest.mark.slow]

DOCKERFILE = """\
# syntax=docker/dockerfile:1
FROM busybox
ENV WHO=kiln
RUN <<EOF
echo "shell body for $WHO" > /shell-body
echo second line >> /shell-body
EOF
RUN <<EOF
#!/bin/sh -e
echo "interpreter: $0" > /shebang
EOF
RUN <<EOF
#!/usr/bin/awk -f
BEGIN { print "awk ran this" > "/awk-out" }
EOF
RUN sh <<ONE && cat <<TWO > /two
echo first > /one
ONE
second $WHO
TWO
RUN cat <<'RAW' > /raw
literal $WHO
RAW
COPY <<EOF /etc/greeting
hello $WHO
EOF
COPY --chmod=0755 <<A <<B /scripts/
#!/bin/sh
echo a
A
echo b
B
"""


def test_heredocs(tmp_path: Path, busybox_store: Path, capfd: pytest.CaptureFixture[str]) -> None:
    context = make_tree(tmp_path / "ctx", {"Dockerfile": DOCKERFILE})
    out = tmp_path / "out"
    status = kiln(busybox_store, "build", "-o", f"type=local,dest={out}", str(context))
    assert status == 0, capfd.readouterr().err
    assert (out / "shell-body").read_text() == "shell body for kiln\nsecond line\n"
    assert (out / "shebang").read_text() == "interpreter: /dev/pipes/EOF\n"
    assert (out / "awk-out").read_text() == "awk ran this\n"
    assert (out / "one").read_text() == "first\n"
    assert (out / "two").read_text() == "second kiln\n"
    assert (out / "raw").read_text() == "literal $WHO\n"
    assert (out / "etc" / "greeting").read_text() == "hello kiln\n"
    assert (out / "scripts" / "A").read_text() == "#!/bin/sh\necho a\n"
    assert (out / "scripts" / "B").read_text() == "echo b\n"
    assert (out / "scripts" / "A").stat().st_mode & 0o777 == 0o755
    assert not (out / "dev" / "pipes").exists()
