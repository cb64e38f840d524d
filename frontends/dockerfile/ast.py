"""The parsed Dockerfile: one node per instruction, keeping its text and location.

The shape follows BuildKit's parser so that ``dump`` reproduces its ``result`` files
byte for byte (see the conformance corpus); later stages read the typed fields rather
than the dump.
"""

from __future__ import annotations

from dataclasses import field

from builder.lazyclasses import dataclass
from builder.source import SourceSpan


@dataclass(frozen=True)
class Heredoc:
    """One ``<<NAME`` body attached to an instruction.

    ``content`` is the raw body (lines with their newlines, not tab-stripped); ``expand`` is
    false when any part of the name was quoted; ``chomp`` marks ``<<-``.
    """

    name: str
    content: str
    expand: bool = True
    chomp: bool = False
    file_descriptor: int | None = None


@dataclass(frozen=True)
class Node:
    """One instruction.

    ``keyword`` is lower-cased (``run``), ``original_keyword`` as written. ``flags`` are the
    leading ``--flag[=value]`` words after quote removal. ``args`` are the argument nodes
    BuildKit's parser makes for this instruction (see the corpus README §1.2); for ONBUILD
    ``child`` holds the wrapped instruction and ``args`` is empty. ``json_form`` says the
    arguments came from a JSON array. ``text`` is the joined line after the keyword and
    flags (before JSON decoding), which typed instructions re-read for shell form.
    ``original`` is the whole joined instruction line, keyword included (BuildKit's
    ``Node.Original``), for history entries and messages.
    """

    keyword: str
    original_keyword: str
    flags: tuple[str, ...]
    args: tuple[str, ...]
    span: SourceSpan
    json_form: bool = False
    text: str = ""
    heredocs: tuple[Heredoc, ...] = ()
    child: Node | None = None
    comments: tuple[str, ...] = ()
    original: str = ""


@dataclass(frozen=True)
class Directives:
    """The parser directives at the top of the file (``# syntax=``, ``# escape=``, ``# check=``)."""

    escape: str = "\\"
    syntax: str = ""
    check: str = ""


@dataclass(frozen=True)
class Dockerfile:
    """A parsed file: its nodes in order, the directives, and the parser's warnings."""

    nodes: tuple[Node, ...]
    directives: Directives = field(default_factory=Directives)
    warnings: tuple[str, ...] = ()
    file: str = "Dockerfile"
