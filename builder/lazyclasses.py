"""``dataclass`` with the stdlib's exact semantics, but whose methods are made on first use.

Why: ``dataclasses.dataclass`` compiles ``__init__``, ``__repr__``, ``__eq__``, ``__hash__``
(and, when frozen, ``__setattr__``/``__delattr__``) with ``exec`` the moment a class is
defined — about a millisecond per class. kiln defines some 150 of them and a fully cached
``kiln build`` uses only a third, so defining them all at import cost more than the cached
build itself (every ``kiln`` run is a fresh process; there is no daemon to keep warm).

This ``dataclass`` takes the same arguments. It records them and puts small stand-ins in
the class for the methods the stdlib would add; the first call of any of them (normally the
first ``__init__``) hands the class to ``dataclasses.dataclass`` — bases first — and then
re-dispatches to the real method. After that the class is an ordinary dataclass in every
respect: ``fields``, ``replace``, ``asdict`` and ``is_dataclass`` work on its instances.
Asking those of the *class* before any instance exists is not supported (nothing in kiln
does). ``slots=True`` cannot be deferred (the stdlib returns a new class), so it is passed
straight through.

Type checkers see the stdlib decorator itself, so they check these classes exactly as
dataclasses.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import TYPE_CHECKING, Any

__all__ = ["dataclass", "materialize"]

#: Classes decorated but not yet made, with the options they were decorated with.
_pending: dict[type, dict[str, Any]] = {}
#: The stand-ins put into each pending class, by name, so they can be taken out again.
_stand_ins: dict[type, tuple[str, ...]] = {}
_lock = threading.RLock()

#: Methods the stdlib may add. A stand-in goes in for each one the class does not define
#: itself; ``dataclasses.dataclass`` then sees the class dict exactly as written.
_MADE_METHODS = (
    "__init__",
    "__repr__",
    "__eq__",
    "__hash__",
    "__setattr__",
    "__delattr__",
    "__lt__",
    "__le__",
    "__gt__",
    "__ge__",
)


def materialize(cls: type) -> None:
    """Turn ``cls`` (and any pending base) into a real dataclass now; a no-op otherwise."""
    if cls not in _pending:
        return
    with _lock:
        for base in reversed(cls.__mro__):
            options = _pending.get(base)
            if options is None:
                continue
            for name in _stand_ins.pop(base, ()):
                delattr(base, name)
            dataclasses.dataclass(base, **options)
            # Only now: a thread that finds the class no longer pending may use it at once.
            del _pending[base]


def _stand_in(owner: type, name: str) -> Any:
    def stand_in(self: Any, *args: Any, **kwargs: Any) -> Any:
        materialize(owner)
        return getattr(type(self), name)(self, *args, **kwargs)

    stand_in.__name__ = stand_in.__qualname__ = name
    return stand_in


def _defer(cls: type, options: dict[str, Any]) -> type:
    if options.get("slots"):
        made: type = dataclasses.dataclass(cls, **options)
        return made
    names = tuple(name for name in _MADE_METHODS if name not in cls.__dict__)
    for name in names:
        setattr(cls, name, _stand_in(cls, name))
    with _lock:
        _pending[cls] = options
        _stand_ins[cls] = names
    return cls


if TYPE_CHECKING:
    from dataclasses import dataclass
else:

    def dataclass(cls=None, /, **options):
        """``dataclasses.dataclass``, deferred to the class's first use (see module doc)."""
        if cls is None:
            return lambda decorated: _defer(decorated, options)
        return _defer(cls, options)
