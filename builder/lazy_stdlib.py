"""Standard modules that a ``kiln`` process loads only when something really uses them.

``dataclasses`` imports ``inspect`` — and with it ``ast``, ``dis`` and ``tokenize``, ~10 ms
of start-up — only to write a ``__doc__`` for a class that has none. kiln's classes have
docstrings, so a fully cached ``kiln build``, which pays its whole start-up every time (there
is no daemon), never needs it. The CLI (and the context scan's helper process) therefore
puts a stand-in module for ``inspect`` in ``sys.modules`` before anything imports
``dataclasses``; the first attribute anyone reads from it imports the real module, which
then takes its place.

Not :class:`importlib.util.LazyLoader`: on Python 3.11 an ``import inspect`` statement reads
the module's ``__spec__``, which makes a lazily loaded module load at once. A process that
imported the module already (a test run) keeps it as it is.
"""

from __future__ import annotations

import importlib
import sys
import threading
import types

#: Imported on first attribute access rather than when first imported.
DEFERRED_MODULES = ("inspect",)

_loading = threading.Lock()


class DeferredModule(types.ModuleType):
    """Stands in for a module until one of its attributes is read.

    ``__spec__`` is set (to ``None``) so the import system finds the stand-in initialised
    without asking :meth:`__getattr__`, which runs only for attributes not in the instance.
    """

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.__spec__ = None

    def __getattr__(self, attribute: str) -> object:
        with _loading:
            real = sys.modules.get(self.__name__)
            if real is None or real is self:
                sys.modules.pop(self.__name__, None)
                real = importlib.import_module(self.__name__)
            # Whoever bound the stand-in (``dataclasses``' global) reads the real names now.
            self.__dict__.update(real.__dict__)
        return getattr(real, attribute)


def defer_standard_modules() -> None:
    """Put a stand-in in ``sys.modules`` for each of :data:`DEFERRED_MODULES` not yet
    imported (call before ``dataclasses`` is imported)."""
    for name in DEFERRED_MODULES:
        if name not in sys.modules:
            sys.modules[name] = DeferredModule(name)
