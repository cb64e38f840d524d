"""ADD and COPY → :class:`builder.graph.CopyOp`: sources resolved, destination made absolute.

One instruction gives one op per kind of source, in this order: the context (or the
``--from`` stage, image or named context), then each URL or git repository (ADD only),
then the heredoc files. All of them share the instruction's history text, which lists
the sources and destination as expanded, as BuildKit writes it (``COPY a b /d/ # buildkit``).
"""

from __future__ import annotations

import re

from builder.errors import DockerfileError
from builder.graph import (
    ContextSource,
    CopyOp,
    CopySource,
    GitSource,
    InlineFile,
    InlineSource,
    UrlSource,
)
from frontends.dockerfile._dispatch_state import (
    BuildContext,
    StageState,
    expand,
    resolve_dest,
    resolve_from,
)
from frontends.dockerfile.instructions import CopyInstruction

_URL = re.compile(r"^https?://", re.IGNORECASE)
_GIT = re.compile(r"^(git@|git://|ssh://)|\.git(#|$)", re.IGNORECASE)
_OCTAL = re.compile(r"^[0-7]+$")


def _valid_chmod(text: str) -> bool:
    """Octal up to 07777, or chmod(1)'s symbolic clauses (accepted since Dockerfile 1.14)."""
    if _OCTAL.match(text):
        return int(text, 8) <= 0o7777
    if text.isdigit():
        return False
    # Symbolic modes are rare: the parser (and its regexes) loads only for one, not on
    # every build's start-up.
    from builder.fileops.chmod import parse_chmod

    try:
        parse_chmod(text)
    except DockerfileError:
        return False
    return True


def dispatch_copy(build: BuildContext, state: StageState, instruction: CopyInstruction) -> None:
    span = instruction.span
    sources = [expand(build, state, path) for path in instruction.source_paths]
    dest_written = expand(build, state, instruction.dest)
    chown = expand(build, state, instruction.chown)
    chmod = expand(build, state, instruction.chmod)
    if chmod and not _valid_chmod(chmod):
        raise DockerfileError(
            f"invalid chmod parameter: '{chmod}'. it should be octal string and between 0 and 07777", span
        )
    is_add = instruction.kind == "ADD"
    if not is_add and any(_URL.match(source) for source in sources):
        raise DockerfileError("source can't be a URL for COPY", span)
    contents = [
        InlineFile(
            name=content.path,
            content=build.heredoc_lexer.process_word(content.data, state.expansion_env())
            if content.expand
            else content.data,
        )
        for content in instruction.source_contents
    ]
    written = [*sources, *(f"<<{content.path}" for content in instruction.source_contents)]
    created_by = " ".join([instruction.kind, *written, dest_written]) + " # buildkit"
    dest = resolve_dest(state.working_dir, dest_written)
    excludes = tuple(expand(build, state, pattern) for pattern in instruction.excludes)

    def add_op(source: CopySource, paths: tuple[str, ...], unpack: bool) -> None:
        state.ops.append(
            CopyOp(
                location=span,
                created_by=created_by,
                source=source,
                paths=paths,
                dest=dest,
                chown=chown,
                chmod=chmod,
                link=instruction.link,
                parents=instruction.parents,
                exclude=excludes,
                unpack=unpack,
            )
        )

    local = tuple(source for source in sources if not (is_add and _is_remote(source)))
    base: CopySource = ContextSource()
    if instruction.from_:
        base = resolve_from(build, state, instruction.from_, span)
    if local or not (sources or contents):
        add_op(base, local, is_add and instruction.unpack is not False)
    for source in sources:
        if is_add and _is_remote(source):
            add_op(_remote_source(source, instruction, build, state), (), instruction.unpack is True)
    if contents:
        add_op(InlineSource(tuple(contents)), tuple(file.name for file in contents), False)


def _is_remote(source: str) -> bool:
    return bool(_URL.match(source) or source.startswith("git@") or source.startswith("git://"))


def _remote_source(
    source: str, instruction: CopyInstruction, build: BuildContext, state: StageState
) -> CopySource:
    if _GIT.search(source):
        url, _, fragment = source.partition("#")
        ref, _, subdir = fragment.partition(":")
        return GitSource(url=url, ref=ref, subdir=subdir, keep_git_dir=instruction.keep_git_dir)
    checksum = expand(build, state, instruction.checksum) if instruction.checksum else None
    return UrlSource(url=source, checksum=checksum)
