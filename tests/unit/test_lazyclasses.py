"""The deferred ``dataclass``: the stdlib's behaviour, made on first use."""

from __future__ import annotations

import dataclasses
import pickle
import threading
from dataclasses import field

import pytest

from builder import lazyclasses
from builder.lazyclasses import dataclass


@dataclass(frozen=True)
class Point:
    x: int
    y: int = 0
    tags: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Labelled(Point):
    label: str = ""


@dataclass(frozen=True, order=True)
class Version:
    major: int
    minor: int


@dataclass
class Mutable:
    items: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.items.append(0)


def test_nothing_is_made_at_definition() -> None:
    @dataclass(frozen=True)
    class Later:
        value: int

    assert Later in lazyclasses._pending
    assert not dataclasses.is_dataclass(Later)
    Later(1)
    assert Later not in lazyclasses._pending
    assert dataclasses.is_dataclass(Later)


def test_frozen_semantics_match_the_stdlib() -> None:
    point = Point(1, 2)
    assert point == Point(1, 2) and point != Point(2, 1)
    assert hash(point) == hash(Point(1, 2))
    assert repr(point) == "Point(x=1, y=2, tags=())"
    with pytest.raises(dataclasses.FrozenInstanceError):
        point.x = 3  # type: ignore[misc]
    assert dataclasses.replace(point, y=5) == Point(1, 5)
    assert [item.name for item in dataclasses.fields(point)] == ["x", "y", "tags"]
    assert dataclasses.asdict(point) == {"x": 1, "y": 2, "tags": ()}


def test_a_subclass_made_first_makes_its_base() -> None:
    labelled = Labelled(1, label="a")
    assert labelled.y == 0 and labelled.label == "a"
    assert [item.name for item in dataclasses.fields(labelled)] == ["x", "y", "tags", "label"]
    assert Point(1) == Point(1)


def test_order_and_post_init() -> None:
    assert sorted([Version(1, 2), Version(1, 0)]) == [Version(1, 0), Version(1, 2)]
    assert Mutable().items == [0]
    assert Mutable() == Mutable()


def test_an_instance_made_without_init_makes_the_class() -> None:
    @dataclass(frozen=True)
    class Shipped:
        value: int

    blank = Shipped.__new__(Shipped)  # what unpickling and copy do
    assert Shipped not in lazyclasses._pending
    object.__setattr__(blank, "value", 3)
    assert blank == Shipped(3)
    assert pickle.loads(pickle.dumps(Point(4))) == Point(4)


def test_threads_making_one_class_at_once() -> None:
    @dataclass(frozen=True)
    class Shared:
        value: int

    made: list[Shared] = []
    start = threading.Barrier(8)

    def make() -> None:
        start.wait()
        made.append(Shared(1))

    threads = [threading.Thread(target=make) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert made == [Shared(1)] * 8


def test_exceptions_and_plain_subclasses() -> None:
    @dataclass(frozen=True)
    class FailureError(Exception):
        code: int

    class Named(Point):
        pass

    assert FailureError(3).code == 3 and str(FailureError(3)) == "3"  # as BaseException gives it
    assert Named(1, 2).y == 2


def test_a_class_made_at_once_makes_its_pending_base_first() -> None:
    @dataclass(frozen=True)
    class Base:
        x: int

    @dataclass(frozen=True, slots=True)
    class Slotted(Base):
        y: int

    assert Slotted(1, 2).x == 1


def test_a_definition_error_is_raised_again_on_every_attempt() -> None:
    @dataclass
    class Broken:
        a: list[int] = field(default_factory=list)
        b: int  # type: ignore[misc]

    for _attempt in range(2):
        with pytest.raises(TypeError, match="non-default argument 'b'"):
            Broken()  # type: ignore[call-arg]
