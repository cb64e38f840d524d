"""Argument checks and word helpers shared by the typed instructions.

The messages are BuildKit's, word for word, because users (and the conformance corpus)
search for them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from builder.errors import DockerfileError
from builder.lazyclasses import dataclass
from frontends.dockerfile.ast import Node
from frontends.dockerfile.flags import BFlags


def keyword(node: Node) -> str:
    """The instruction's name in upper case, as every BuildKit message writes it."""
    return node.keyword.upper()


def require_exactly_one(node: Node) -> None:
    if len(node.args) != 1:
        raise DockerfileError(f"{keyword(node)} requires exactly one argument", node.span)


def require_at_least_one(node: Node) -> None:
    if not node.args:
        raise DockerfileError(f"{keyword(node)} requires at least one argument", node.span)


def require_destination(node: Node) -> None:
    if len(node.args) < 2:
        raise DockerfileError(
            f"{keyword(node)} requires at least two arguments, but only one was provided. "
            "Destination could not be determined",
            node.span,
        )


def parse_flags(node: Node, declare: Sequence[tuple[str, str | bool | None]] = ()) -> BFlags:
    """Declare ``(name, default)`` flags (None for a repeatable list) and read the node's."""
    flags = BFlags(node.span)
    for name, default in declare:
        if default is None:
            flags.add_strings(name)
        elif isinstance(default, bool):
            flags.add_bool(name, default)
        else:
            flags.add_string(name, default)
    flags.parse(node.flags)
    return flags


def handle_json_args(args: Sequence[str], json_form: bool) -> tuple[str, ...]:
    """A command line: the JSON list as is, or the shell-form words joined by one space."""
    if json_form:
        return tuple(args)
    return (" ".join(args),) if args else ()


@dataclass(frozen=True)
class HeredocWord:
    """What a ``<<[-]NAME`` word in the arguments says about its heredoc."""

    name: str
    chomp: bool
    expand: bool
    file_descriptor: int | None


_HEREDOC_WORD = re.compile(r"^(\d*)<<(-?)([^<]*)$")


def parse_heredoc_word(word: str) -> HeredocWord | None:
    """The heredoc a word opens (``<<EOF``, ``<<-'EOF'``, ``3<<EOF``), or None.

    A quote anywhere in the name turns expansion of the body off, as in a POSIX shell.
    """
    match = _HEREDOC_WORD.match(word)
    if match is None or not match.group(3):
        return None
    raw_name = match.group(3).strip()
    name = raw_name.replace("'", "").replace('"', "")
    if not name or any(char.isspace() for char in name):
        return None
    return HeredocWord(
        name=name,
        chomp=match.group(2) == "-",
        expand=name == raw_name,
        file_descriptor=int(match.group(1)) if match.group(1) else None,
    )


_LEADING_TABS = re.compile(r"^\t+", re.MULTILINE)


def chomp_heredoc(content: str) -> str:
    """``<<-``: strip leading tabs from every line of the body."""
    return _LEADING_TABS.sub("", content)
