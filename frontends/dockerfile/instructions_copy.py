"""ADD and COPY as typed instructions: sources (paths and heredoc files), destination, flags.

A heredoc source (``COPY <<EOF /dest``) becomes an inline file named after the heredoc,
already tab-chomped for ``<<-``; whether its body is expanded follows the quoting of the
name. ``--from`` must name a stage, an image or a build context literally.
"""

from __future__ import annotations

from typing import Literal

from builder.errors import DockerfileError
from builder.lazyclasses import dataclass
from builder.source import SourceSpan
from frontends.dockerfile._instruction_args import (
    chomp_heredoc,
    keyword,
    parse_flags,
    parse_heredoc_word,
    require_destination,
)
from frontends.dockerfile.ast import Node

_COPY_FLAGS: tuple[tuple[str, str | bool | None], ...] = (
    ("from", ""),
    ("chown", ""),
    ("chmod", ""),
    ("link", False),
    ("parents", False),
    ("exclude", None),
)
_ADD_FLAGS: tuple[tuple[str, str | bool | None], ...] = (
    ("chown", ""),
    ("chmod", ""),
    ("link", False),
    ("exclude", None),
    ("checksum", ""),
    ("keep-git-dir", False),
    ("unpack", False),
)


@dataclass(frozen=True)
class SourceContent:
    """A heredoc given as a source: ``path`` is the heredoc's name, ``data`` its body."""

    path: str
    data: str
    expand: bool


@dataclass(frozen=True)
class CopyInstruction:
    """``ADD`` or ``COPY`` (``kind``); every string as written, expanded when dispatched.

    ``unpack`` is ADD's ``--unpack``: None leaves BuildKit's rule (local archives are
    extracted, downloads are not).
    """

    span: SourceSpan
    kind: Literal["ADD", "COPY"]
    source_paths: tuple[str, ...]
    source_contents: tuple[SourceContent, ...]
    dest: str
    from_: str = ""
    chown: str = ""
    chmod: str = ""
    link: bool = False
    parents: bool = False
    excludes: tuple[str, ...] = ()
    checksum: str = ""
    keep_git_dir: bool = False
    unpack: bool | None = None


def parse_copy(node: Node) -> CopyInstruction:
    return _parse(node, "COPY", _COPY_FLAGS)


def parse_add(node: Node) -> CopyInstruction:
    return _parse(node, "ADD", _ADD_FLAGS)


def _parse(
    node: Node, kind: Literal["ADD", "COPY"], declared: tuple[tuple[str, str | bool | None], ...]
) -> CopyInstruction:
    require_destination(node)
    flags = parse_flags(node, declared)
    *sources, dest = node.args
    if parse_heredoc_word(dest) is not None:
        raise DockerfileError(f"{keyword(node)} cannot accept a heredoc as a destination", node.span)
    bodies = {heredoc.name: heredoc.content for heredoc in node.heredocs}
    source_paths: list[str] = []
    source_contents: list[SourceContent] = []
    for source in sources:
        word = parse_heredoc_word(source)
        if word is None or node.json_form:
            source_paths.append(source)
            continue
        data = bodies.get(word.name, "")
        if word.chomp:
            data = chomp_heredoc(data)
        source_contents.append(SourceContent(path=word.name, data=data, expand=word.expand))
    from_ = flags.string("from") if kind == "COPY" else ""
    if "$" in from_:
        raise DockerfileError(
            "variable expansion is not supported for --from, define a new stage with FROM "
            "using ARG from global scope as a workaround",
            node.span,
        )
    return CopyInstruction(
        span=node.span,
        kind=kind,
        source_paths=tuple(source_paths),
        source_contents=tuple(source_contents),
        dest=dest,
        from_=from_,
        chown=flags.string("chown"),
        chmod=flags.string("chmod"),
        link=flags.boolean("link"),
        parents=flags.boolean("parents") if kind == "COPY" else False,
        excludes=flags.strings("exclude"),
        checksum=flags.string("checksum") if kind == "ADD" else "",
        keep_git_dir=flags.boolean("keep-git-dir") if kind == "ADD" else False,
        unpack=flags.boolean("unpack") if kind == "ADD" and flags.is_used("unpack") else None,
    )
