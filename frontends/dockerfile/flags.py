"""Instruction flags (``--from=x``, ``--link``), checked as BuildKit's ``BFlags`` checks them.

Each instruction declares the flags it takes, with a type and a default; :meth:`BFlags.parse`
reads the node's flag words once, refusing unknown flags (with a spelling hint), bool flags
with a value other than true/false, string flags without ``=value``, and repeats of a
non-list flag. A bare ``--`` ends the flags.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import field
from typing import Literal, NoReturn

from builder.errors import DockerfileError
from builder.lazyclasses import dataclass
from builder.source import SourceSpan
from frontends.dockerfile.suggest import did_you_mean

FlagType = Literal["string", "bool", "strings"]


@dataclass
class _Flag:
    """One declared flag: its kind, its default, and the value the node gave it."""

    name: str
    kind: FlagType
    default: str | bool
    value: str | bool
    values: list[str] = field(default_factory=list)


class BFlags:
    """The flags one instruction declares, and the values its node gave them."""

    def __init__(self, span: SourceSpan | None = None) -> None:
        self._span = span
        self._flags: dict[str, _Flag] = {}
        self._used: list[str] = []

    def add_string(self, name: str, default: str = "") -> None:
        self._flags[name] = _Flag(name, "string", default, default)

    def add_bool(self, name: str, default: bool = False) -> None:
        self._flags[name] = _Flag(name, "bool", default, default)

    def add_strings(self, name: str) -> None:
        """A flag that may repeat (``--mount``, ``--exclude``); its values keep their order."""
        self._flags[name] = _Flag(name, "strings", "", "")

    def parse(self, words: Sequence[str]) -> None:
        """Read ``--name``, ``--name=value`` words; raise DockerfileError on a bad one."""
        for word in words:
            if not word.startswith("--"):
                self._fail(f"arg should start with -- : {word}")
            if word == "--":
                return
            name, has_value, value = word[2:].partition("=")
            flag = self._flags.get(name)
            if flag is None:
                self._fail(f"unknown flag: --{name}" + did_you_mean(name, self._flags, case_sensitive=True))
            if name in self._used and flag.kind != "strings":
                self._fail(f"duplicate flag specified: --{name}")
            if name not in self._used:
                self._used.append(name)
            if flag.kind == "bool":
                if has_value and not value:
                    self._fail(f"missing a value on flag: --{name}")
                lowered = value.lower()
                if lowered not in ("", "true", "false"):
                    self._fail(f"expecting boolean value for flag --{name}, not: {value}")
                flag.value = lowered != "false"
            elif not has_value:
                self._fail(f"missing a value on flag: --{name}")
            elif flag.kind == "string":
                flag.value = value
            else:
                flag.values.append(value)

    def string(self, name: str) -> str:
        value = self._flags[name].value
        assert isinstance(value, str)
        return value

    def boolean(self, name: str) -> bool:
        value = self._flags[name].value
        assert isinstance(value, bool)
        return value

    def strings(self, name: str) -> tuple[str, ...]:
        return tuple(self._flags[name].values)

    def is_used(self, name: str) -> bool:
        return name in self._used

    def used(self) -> tuple[str, ...]:
        """The names of the flags the node gave, sorted (BuildKit's ``FlagsUsed``)."""
        return tuple(sorted(self._used))

    def _fail(self, message: str) -> NoReturn:
        raise DockerfileError(message, self._span)
