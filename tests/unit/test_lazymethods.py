"""Dataclass methods compiled on first call: the stdlib's behaviour, ``__init__`` alone made
with the class."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from builder import lazymethods
from builder.lazyclasses import dataclass

needs_create_fn = pytest.mark.skipif(
    lazymethods._stdlib_create_fn is None, reason="this Python compiles a class's methods in one exec"
)


@pytest.fixture
def compiled(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the methods the stdlib compiles from now on, in order."""
    names: list[str] = []
    stdlib = lazymethods._stdlib_create_fn
    assert stdlib is not None

    def counting(name: str, *args: Any, **kwargs: Any) -> Any:
        names.append(name)
        return stdlib(name, *args, **kwargs)

    monkeypatch.setattr(lazymethods, "_stdlib_create_fn", counting)
    return names


@needs_create_fn
def test_only_init_is_compiled_when_the_class_is_made(compiled: list[str]) -> None:
    @dataclass(frozen=True)
    class Frozen:
        """A frozen class: the stdlib adds six methods."""

        name: str
        size: int = 0

    first = Frozen("a", 1)
    assert compiled == ["__init__"]
    assert first == Frozen("a", 1) and first != Frozen("b", 1)
    assert compiled == ["__init__", "__eq__"]
    assert hash(first) == hash(Frozen("a", 1))
    assert (
        repr(first) == "test_only_init_is_compiled_when_the_class_is_made.<locals>.Frozen(name='a', size=1)"
    )
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'size'"):
        first.size = 2  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot delete field 'name'"):
        del first.name
    assert sorted(compiled) == sorted(
        ["__init__", "__eq__", "__hash__", "__repr__", "__setattr__", "__delattr__"]
    )
    assert Frozen.__eq__.__qualname__.endswith("Frozen.__eq__")


@needs_create_fn
def test_order_mutable_and_unhashable_classes_behave_as_the_stdlibs() -> None:
    @dataclass(order=True)
    class Ordered:
        """Compared field by field."""

        major: int
        minor: int = 0

    @dataclasses.dataclass(order=True)
    class Reference:
        """The same, made by the stdlib itself."""

        major: int
        minor: int = 0

    values = [(2, 0), (1, 5), (1, 2)]
    assert [(item.major, item.minor) for item in sorted(Ordered(*v) for v in values)] == sorted(values)
    assert (Ordered(1) < Ordered(2), Ordered(1) >= Ordered(1)) == (Reference(1) < Reference(2), True)
    assert Ordered.__hash__ is None and Reference.__hash__ is None  # eq without frozen: unhashable
    mutable = Ordered(1)
    mutable.minor = 4
    assert mutable == Ordered(1, 4)
    assert Ordered(1).__eq__(object()) is NotImplemented


def test_outside_materialize_the_stdlib_compiles_as_ever() -> None:
    assert getattr(dataclasses, "_create_fn", None) is lazymethods._stdlib_create_fn
