"""The ``kiln`` command ends without the interpreter's teardown, but as a normal exit would:
its status, its output flushed, the ``atexit`` handlers run; and the usual way while a
thread the interpreter waits for still runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT

PRELUDE = (
    "import atexit, sys\n"
    "atexit.register(lambda: sys.stderr.write('atexit ran\\n'))\n"
    "from builder.cli.main import run\n"
)


def _kiln(program: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", PRELUDE + program, *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_a_command_ends_with_its_status_its_output_and_the_exit_handlers() -> None:
    done = _kiln("sys.argv = ['kiln', *sys.argv[1:]]\nrun()", "completion", "bash")
    assert done.returncode == 0
    expected = _kiln("from builder.cli.main import main\nsys.exit(main(['completion', 'bash']))")
    assert done.stdout == expected.stdout and len(done.stdout) > 1000  # the whole script, flushed
    assert done.stderr == "atexit ran\n"

    failed = _kiln("sys.argv = ['kiln', *sys.argv[1:]]\nrun()", "build", "/nonexistent/context")
    assert failed.returncode == 2
    assert "is not a directory" in failed.stderr and failed.stderr.endswith("atexit ran\n")


def test_a_thread_still_running_is_waited_for_as_at_a_normal_exit(tmp_path: Path) -> None:
    marker = tmp_path / "written-by-the-thread"
    program = (
        "import threading, time\n"
        "def late():\n"
        "    time.sleep(0.3)\n"
        f"    open({str(marker)!r}, 'w').close()\n"
        "threading.Thread(target=late).start()\n"
        "sys.argv = ['kiln', 'completion', 'bash']\n"
        "run()"
    )
    done = _kiln(program)
    assert done.returncode == 0
    assert marker.exists()
    assert done.stderr == "atexit ran\n"
