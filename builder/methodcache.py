"""Compiled dataclass methods kept between runs, as Python keeps compiled modules.

``dataclasses`` writes each method it adds as source text and compiles it with ``exec``.
Compiling is most of what making a class costs (~0.3 ms for an ``__init__``), and the text
of a given class's methods is the same in every run: a fully cached ``kiln build`` compiled
the same fifty-odd ``__init__`` methods every time it started. While kiln makes its
dataclasses (:mod:`builder.lazymethods`), ``dataclasses`` is given this module's
:func:`cached_exec` as its ``exec``: it compiles a text once, keeps the code object, and
runs it exactly as ``exec`` would (same ``<string>`` file name, no ``__future__`` flags, as
``dataclasses`` itself has none).

The code objects are kept, keyed by their source text, in one ``marshal`` file in this
package's ``__pycache__`` (where the interpreter keeps ``.pyc`` files, trusted alike), for
this exact interpreter version only; it is written at exit when something new was compiled
and ``sys.dont_write_bytecode`` is unset, and silently not when the directory is read-only.
"""

from __future__ import annotations

import atexit
import contextlib
import marshal
import os
import sys
import threading
from pathlib import Path
from types import CodeType
from typing import Any

__all__ = ["cached_exec", "compiled"]

CACHE_PATH = Path(__file__).parent / "__pycache__" / f"dataclass-methods.{sys.implementation.cache_tag}.bin"
#: The file starts with the interpreter's full version: bytecode is only read by the
#: interpreter that wrote it.
_HEADER = sys.version.encode() + b"\0"
#: Beyond this many texts (old versions of changed classes pile up), a save keeps only the
#: texts this process compiled or used.
MAX_ENTRIES = 4000


class MethodCache:
    """Code objects by source text, read from ``path`` on first use, saved at exit.

    The file maps each text to its code object's own ``marshal`` bytes, so a run unmarshals
    only the methods it makes, not every method any run has kept.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stored: dict[str, bytes] | None = None
        self._compiled: dict[str, CodeType] = {}
        self._used: set[str] = set()
        self._new = False

    def _read(self) -> dict[str, bytes]:
        try:
            data = self.path.read_bytes()
        except OSError:
            return {}
        if not data.startswith(_HEADER):
            return {}
        try:
            stored = marshal.loads(data[len(_HEADER) :])
        except (EOFError, ValueError, TypeError):
            return {}
        if not isinstance(stored, dict):
            return {}
        return {text: code for text, code in stored.items() if isinstance(code, bytes)}

    def compiled(self, source: str) -> CodeType:
        """``source`` compiled as ``exec`` compiles it for ``dataclasses``; once per text."""
        with self._lock:
            code = self._compiled.get(source)
            if code is not None:
                return code
            if self._stored is None:
                self._stored = self._read()
            kept = self._stored.get(source)
            try:
                loaded = marshal.loads(kept) if kept is not None else None
            except (EOFError, ValueError, TypeError):
                loaded = None
            if isinstance(loaded, CodeType):
                code = loaded
            else:
                code = compile(source, "<string>", "exec", dont_inherit=True)
                self._stored[source] = marshal.dumps(code)
                if not self._new and not sys.dont_write_bytecode:
                    atexit.register(self.save)
                self._new = True
            self._compiled[source] = code
            self._used.add(source)
        return code

    def save(self) -> None:
        """Write what is known, merged with what another process may have written meanwhile."""
        with self._lock:
            if not self._new or self._stored is None:
                return
            merged = {**self._read(), **self._stored}
            if len(merged) > MAX_ENTRIES:
                merged = {text: code for text, code in self._stored.items() if text in self._used}
            payload = _HEADER + marshal.dumps(merged)
        temp_path = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(exist_ok=True)
            temp_path.write_bytes(payload)
            os.replace(temp_path, self.path)
        except OSError:  # a read-only installation: compile again next time
            with contextlib.suppress(OSError):
                temp_path.unlink(missing_ok=True)


_cache = MethodCache(CACHE_PATH)


def compiled(source: str) -> CodeType:
    """``source`` compiled once per text (see :class:`MethodCache`)."""
    return _cache.compiled(source)


def cached_exec(source: Any, globals: Any = None, locals: Any = None, /) -> None:
    """``exec`` as ``dataclasses`` calls it (``dataclasses``' globals stand in for none)."""
    if isinstance(source, str):
        source = compiled(source)
    if globals is None:
        import dataclasses

        globals = vars(dataclasses)
    exec(source, globals, locals)
