"""A step that missed the cache before a stage's RUN loads what the RUN needs on a thread of
its own, once."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO_ROOT

PROGRAM = """
import sys, threading
from builder import runner
assert "builder.exec.step" not in sys.modules
runner._load_step_modules_beside()
runner._load_step_modules_beside()
loaders = [t for t in threading.enumerate() if t.name == "step-modules"]
assert len(loaders) <= 1, loaders
for thread in loaders:
    thread.join()
assert all(name in sys.modules for name in runner._STEP_MODULES)
runner._load_step_modules_beside()
assert not [t for t in threading.enumerate() if t.name == "step-modules"]
print("ok")
"""


def test_the_step_modules_are_loaded_once_beside() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
