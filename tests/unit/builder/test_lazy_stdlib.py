"""The CLI's deferred standard modules: imported only when an attribute is first read."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO_ROOT

PROBE = """
import json, sys
from builder.lazy_stdlib import defer_standard_modules
defer_standard_modules()
import dataclasses
import inspect
after_import = ["ast" in sys.modules, type(sys.modules["inspect"]).__name__]

@dataclasses.dataclass
class Undocumented:
    x: int

doc = Undocumented.__doc__
real = sys.modules["inspect"]
after_use = ["ast" in sys.modules, type(real).__name__, inspect.signature is real.signature]
print(json.dumps([after_import, doc, after_use]))
"""


def test_inspect_loads_only_when_an_attribute_is_read() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    after_import, doc, after_use = json.loads(result.stdout)
    assert after_import == [False, "DeferredModule"]
    assert doc == "Undocumented(x: int)"
    assert after_use == [True, "module", True]


def test_a_module_already_imported_is_left_alone() -> None:
    import inspect

    from builder.lazy_stdlib import defer_standard_modules

    defer_standard_modules()
    assert sys.modules["inspect"] is inspect
