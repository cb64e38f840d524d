"""Dataclass methods compiled on their first call, not when their class is made.

``dataclasses`` compiles each method it adds with ``exec``, ~100 µs apiece: six for a frozen
class (``__init__``, ``__repr__``, ``__eq__``, ``__hash__``, ``__setattr__``,
``__delattr__``). A fully cached ``kiln build`` makes some fifty classes and, of all those
methods, calls almost only ``__init__`` (a frozen class's ``__setattr__`` runs only to refuse
an assignment; ``__eq__``, ``__hash__`` and ``__repr__`` only when something compares, hashes
or prints an instance): compiling the rest cost it ~25 ms, every run.

While :func:`~builder.lazyclasses.materialize` makes a class, :func:`methods_on_first_call`
swaps the stdlib's compiler of one method (``dataclasses._create_fn``, a private function of
Python 3.11 and 3.12) for one that compiles ``__init__`` at once and returns every other
method as a small function that compiles the stdlib's own on its first call and forwards to
it from then on. What the methods do is exactly the stdlib's; only introspection sees a
``(*args, **kwargs)`` signature. Python 3.13 compiles all of a class's methods in one
``exec`` and has no ``_create_fn``; there nothing is swapped.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from builder.methodcache import cached_exec

__all__ = ["methods_on_first_call"]

#: The stdlib's compiler of one generated method, when this Python has one.
_stdlib_create_fn: Callable[..., Any] | None = getattr(dataclasses, "_create_fn", None)


def _on_first_call(name: str, args: Any, body: Any, **options: Any) -> Any:
    """``_create_fn``'s signature; compiles ``__init__`` now and anything else when called."""
    assert _stdlib_create_fn is not None  # only installed when there is one
    if name == "__init__":  # every class that is made is constructed at once
        return _stdlib_create_fn(name, args, body, **options)
    if options.get("locals") is not None:
        options["locals"] = dict(options["locals"])  # _create_fn may change the one it is given
    compiled: Callable[..., Any] | None = None

    def method(*call_args: Any, **call_kwargs: Any) -> Any:
        nonlocal compiled
        if compiled is None:  # two threads may both compile it: the results are the same
            assert _stdlib_create_fn is not None
            made = _stdlib_create_fn(name, args, body, **options)
            made.__qualname__ = method.__qualname__  # as dataclasses named this one
            compiled = made
        return compiled(*call_args, **call_kwargs)

    method.__name__ = name
    return method


@contextmanager
def methods_on_first_call() -> Iterator[None]:
    """Within the block, classes that ``dataclasses.dataclass`` makes get their methods other
    than ``__init__`` compiled on first call, and what is compiled comes from (and goes to)
    :mod:`builder.methodcache`. The caller serialises blocks (one lock)."""
    # A module global shadows the builtin for dataclasses' own ``exec(text, ...)`` calls.
    dataclasses.exec = cached_exec  # type: ignore[attr-defined]
    if _stdlib_create_fn is not None:
        dataclasses._create_fn = _on_first_call  # type: ignore[attr-defined]
    try:
        yield
    finally:
        if _stdlib_create_fn is not None:
            dataclasses._create_fn = _stdlib_create_fn  # type: ignore[attr-defined]
        del dataclasses.exec  # type: ignore[attr-defined]
