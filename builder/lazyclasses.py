"""``dataclass`` with the stdlib's exact semantics, but whose methods are made on first use.

Why: ``dataclasses.dataclass`` compiles ``__init__``, ``__repr__``, ``__eq__``, ``__hash__``
(and, when frozen, ``__setattr__``/``__delattr__``) with ``exec`` the moment a class is
defined — about a millisecond per class. kiln defines some 150 of them and a fully cached
``kiln build`` uses only a third, so defining them all at import cost more than the cached
build itself (every ``kiln`` run is a fresh process; there is no daemon to keep warm).

This ``dataclass`` takes the same arguments. It records them and gives the class a
stand-in ``__new__``; the first construction of an instance (``__new__`` runs before
``__init__`` is even looked up, and unpickling and copying call it too) hands the class to
``dataclasses.dataclass`` — bases first — under a lock. A thread constructing the same class
meanwhile waits in the stand-in, so no thread ever sees the class half made. The stand-in
stays (CPython keeps a Python-level ``__new__`` slot once set, and ``object.__new__`` then
refuses arguments), costing one dictionary lookup per instance. After that the class is
an ordinary dataclass in every respect: ``fields``, ``replace``, ``asdict`` and
``is_dataclass`` work on its instances. Asking those of the *class* before any instance
exists is not supported (nothing in kiln does). A class with ``slots=True`` or its own
``__new__`` is made at once (the stdlib returns a new class for slots).

Making the class compiles only its ``__init__``: the other methods the stdlib adds are
compiled on their first call (:mod:`builder.lazymethods`).

Type checkers see the stdlib decorator itself, so they check these classes exactly as
dataclasses.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import TYPE_CHECKING, Any

from builder.lazymethods import methods_on_first_call

__all__ = ["dataclass", "materialize"]

#: Classes decorated but not yet made, with the options they were decorated with.
_pending: dict[type, dict[str, Any]] = {}
_lock = threading.RLock()


#: A class whose making failed (a definition error the stdlib reports), with that error: a
#: second attempt would meet a class the first one already changed, so it is raised again.
_failed: dict[type, Exception] = {}


def materialize(cls: type) -> None:
    """Turn ``cls`` (and any pending base) into a real dataclass now; a no-op otherwise."""
    if cls not in _pending:
        return
    with _lock:
        for base in reversed(cls.__mro__):
            options = _pending.get(base)
            if options is None:
                continue
            if base in _failed:
                raise _failed[base]
            try:
                with methods_on_first_call():  # all but __init__ compiled when first called
                    dataclasses.dataclass(base, **options)
            except Exception as err:
                _failed[base] = err
                raise
            # Only now: a thread that finds the class made may construct it at once.
            del _pending[base]


def _defer(cls: type, options: dict[str, Any]) -> type:
    if options.get("slots") or "__new__" in cls.__dict__:
        for base in cls.__mro__[1:]:  # its bases' fields are read from them now
            materialize(base)
        made: type = dataclasses.dataclass(cls, **options)
        return made

    def make_instance(klass: type, *args: Any, **kwargs: Any) -> Any:
        if cls in _pending:
            materialize(cls)
        following = super(cls, klass).__new__  # type: ignore[arg-type]
        if following is object.__new__:
            return object.__new__(klass)
        return following(klass, *args, **kwargs)

    with _lock:
        cls.__new__ = staticmethod(make_instance)  # type: ignore[assignment]
        _pending[cls] = options
    return cls


if TYPE_CHECKING:
    from dataclasses import dataclass
else:

    def dataclass(cls=None, /, **options):
        """``dataclasses.dataclass``, deferred to the class's first use (see module doc)."""
        if cls is None:
            return lambda decorated: _defer(decorated, options)
        return _defer(cls, options)
