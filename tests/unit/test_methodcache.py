"""Compiled dataclass methods kept between runs: the same code as ``exec`` compiles, read
back by the same interpreter only, never a failure when the file is missing or damaged."""

from __future__ import annotations

import dataclasses
import marshal
from collections.abc import Callable
from pathlib import Path
from types import CodeType
from typing import Any

import pytest

from builder import methodcache
from builder.lazyclasses import dataclass
from builder.methodcache import MethodCache

SOURCE = "def __create_fn__(_return_type):\n def f(x:int)->_return_type:\n  return x + 1\n return f"


def _function(code: CodeType) -> Callable[..., Any]:
    namespace: dict[str, Any] = {}
    exec(code, {}, namespace)
    function: Callable[..., Any] = namespace["__create_fn__"](int)
    return function


def test_a_text_is_compiled_once_and_as_exec_compiles_it(tmp_path: Path) -> None:
    cache = MethodCache(tmp_path / "methods.bin")
    code = cache.compiled(SOURCE)
    assert cache.compiled(SOURCE) is code
    function = _function(code)
    assert function(1) == 2
    # No __future__ flags leak in from the caching module: annotations stay evaluated.
    assert function.__annotations__ == {"x": int, "return": int}
    assert code.co_filename == "<string>"


def test_what_is_saved_is_read_back_without_compiling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.dont_write_bytecode", False)
    first = MethodCache(tmp_path / "methods.bin")
    first.compiled(SOURCE)
    first.save()

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("compiled again")

    monkeypatch.setattr("builtins.compile", refuse)
    second = MethodCache(tmp_path / "methods.bin")
    assert _function(second.compiled(SOURCE))(41) == 42


@pytest.mark.parametrize(
    "content",
    [b"", b"not marshal at all", b"Python 0.1\0" + marshal.dumps({SOURCE: b""}), b"\0\1\2"],
)
def test_a_missing_foreign_or_damaged_file_is_compiled_around(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "methods.bin"
    path.write_bytes(content)
    assert _function(MethodCache(path).compiled(SOURCE))(1) == 2


def test_an_unwritable_directory_is_no_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.dont_write_bytecode", False)
    cache = MethodCache(tmp_path / "missing" / "deeper" / "methods.bin")
    cache.compiled(SOURCE)
    cache.save()  # the parent of __pycache__ is missing: nothing written, nothing raised
    assert not (tmp_path / "missing").exists()


def test_classes_made_through_the_cache_behave_as_the_stdlibs() -> None:
    @dataclass(frozen=True)
    class Cached:
        """Made with cached_exec standing in for exec."""

        name: str
        tags: tuple[str, ...] = dataclasses.field(default_factory=tuple)

    made = Cached("a")
    assert (made.name, made.tags) == ("a", ())
    assert made == Cached("a", ())
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'name'"):
        Cached()  # type: ignore[call-arg]
    assert not hasattr(dataclasses, "exec")  # the builtin is dataclasses' exec again
    assert methodcache.CACHE_PATH.parent.name == "__pycache__"
