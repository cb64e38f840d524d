"""Package re-exports resolved on first use, so importing one submodule stays cheap.

A package ``__init__`` that imports all its submodules makes ``import builder.exec.runtime``
pay for overlay, spec and user lookup too, and ``kiln --version`` pay for every package
the commands touch. With :func:`lazy_exports` the ``__init__`` names its exports and the
submodule each lives in; the submodule is imported when the name is first read
(PEP 562 module ``__getattr__``). Type checkers still see the real names through an
``if TYPE_CHECKING:`` import block beside the table.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping


def lazy_exports(package: str, homes: Mapping[str, str]) -> Callable[[str], object]:
    """A module ``__getattr__`` for ``package``: each name in ``homes`` is loaded from the
    submodule ``homes[name]`` (relative to ``package``) when first asked for, then cached
    in the package's namespace so later reads are plain attribute reads."""

    def load(name: str) -> object:
        submodule = homes.get(name)
        if submodule is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{submodule}"), name)
        package_module = importlib.import_module(package)
        setattr(package_module, name, value)
        return value

    return load
