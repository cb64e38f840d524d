"""RUN → :class:`builder.graph.Exec`: the argv, the environment, the mounts, the history text.

Heredocs follow BuildKit: a RUN that is exactly one heredoc gives the shell the body as
its command (``/bin/sh -c '<body>'``), unless the body starts with ``#!``: then the body
becomes an executable :class:`InlineFile` that the builder mounts read-only at
``/dev/pipes/<name>``, and the shell runs that path, so the interpreter named by the
shebang runs it. Any other RUN with heredocs (``<<EOF | python``, several heredocs) is
rebuilt as one shell script with the bodies inline, for the shell to read.
The command itself is never expanded (the shell does that); mount options are.
"""

from __future__ import annotations

import posixpath
import re
from functools import cache

from builder.errors import DockerfileError
from builder.graph import (
    BindMount,
    CacheMount,
    ContextSource,
    Exec,
    InlineFile,
    Mount,
    SecretMount,
    SshMount,
    TmpfsMount,
)
from builder.source import SourceSpan
from frontends.dockerfile._dispatch_state import (
    BuildContext,
    StageState,
    build_arg_pairs,
    expand,
    join_path,
    process_env,
    resolve_from,
)
from frontends.dockerfile._instruction_args import chomp_heredoc, parse_heredoc_word
from frontends.dockerfile.instructions import RunInstruction, RunMountSpec

#: Where the builder mounts a RUN's inline files (BuildKit's choice for shebang heredocs).
INLINE_FILE_DIR = "/dev/pipes"


@cache
def _size_pattern() -> re.Pattern[str]:
    """``64m``, ``1.5GiB``: compiled on the first tmpfs size, not at import (start-up)."""
    return re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgtp]?)i?b?$", re.IGNORECASE)


def dispatch_run(build: BuildContext, state: StageState, instruction: RunInstruction) -> None:
    command, inline_files = _command(instruction)
    argv = (*state.shell, *command) if instruction.prepend_shell else command
    mounts = tuple(
        _mount(build, state, spec, position, instruction.span)
        for position, spec in enumerate(instruction.mounts)
    )
    build_args = build_arg_pairs(state)
    history = [f"|{len(build_args)}", *build_args] if build_args else []
    state.ops.append(
        Exec(
            location=instruction.span,
            created_by="RUN " + " ".join([*history, *argv]) + " # buildkit",
            argv=argv,
            env=process_env(build, state),
            cwd=state.working_dir,
            user=state.user,
            network=instruction.network,
            security=instruction.security,
            mounts=mounts,
            inline_files=inline_files,
            shell_form=instruction.prepend_shell,
            build_args=build_args,
        )
    )


def _command(instruction: RunInstruction) -> tuple[tuple[str, ...], tuple[InlineFile, ...]]:
    command = instruction.command
    if not instruction.heredocs or not instruction.prepend_shell or len(command) != 1:
        return command, ()
    first = instruction.heredocs[0]
    if parse_heredoc_word(command[0].strip()) is None or len(instruction.heredocs) != 1:
        script = command[0] + "".join(f"\n{doc.content}{doc.name}" for doc in instruction.heredocs)
        return (script,), ()
    body = chomp_heredoc(first.content) if first.chomp else first.content
    if body.startswith("#!"):
        inline = InlineFile(name=first.name, content=body, mode=0o755)
        return (posixpath.join(INLINE_FILE_DIR, first.name),), (inline,)
    return (body,), ()


def _mount(
    build: BuildContext, state: StageState, spec: RunMountSpec, position: int, span: SourceSpan
) -> Mount:
    def word(text: str) -> str:
        return expand(build, state, text) if text else ""

    target = word(spec.target)
    if target and not target.startswith("/"):
        target = join_path(state.working_dir, target)
    source_path = word(spec.source)
    uid = int(word(spec.uid) or "0")
    gid = int(word(spec.gid) or "0")
    mode = int(word(spec.mode), 8) if spec.mode else None
    if spec.type in ("bind", "cache", "tmpfs") and not target:
        raise DockerfileError(f"mount target is required for a {spec.type} mount", span)
    source = resolve_from(build, state, spec.from_, span, verb="mount") if spec.from_ else None
    if spec.type == "bind":
        return BindMount(
            target=target,
            source=source or ContextSource(),
            source_path=source_path,
            readwrite=not spec.readonly,
        )
    if spec.type == "cache":
        return CacheMount(
            target=target,
            id=word(spec.id) or target,
            sharing=spec.sharing,
            source=source,
            source_path=source_path,
            mode=0o755 if mode is None else mode,
            uid=uid,
            gid=gid,
            readonly=spec.readonly,
        )
    if spec.type == "tmpfs":
        return TmpfsMount(target=target, size=parse_size(word(spec.size), span))
    if spec.type == "secret":
        secret_id = word(spec.id) or source_path or posixpath.basename(target)
        env_name = word(spec.env) if spec.env else ""
        if not target and not env_name:
            target = f"/run/secrets/{secret_id}"
        return SecretMount(
            id=secret_id,
            target=target,
            env=env_name,
            required=spec.required,
            mode=0o400 if mode is None else mode,
            uid=uid,
            gid=gid,
        )
    return SshMount(
        id=word(spec.id) or source_path or "default",
        target=target or f"/run/buildkit/ssh_agent.{position}",
        required=spec.required,
        mode=0o600 if mode is None else mode,
        uid=uid,
        gid=gid,
    )


def parse_size(text: str, span: SourceSpan | None = None) -> int:
    """A tmpfs ``size`` in bytes: ``64m``, ``1g``, ``512k``, ``1048576`` (binary units)."""
    if not text:
        return 0
    match = _size_pattern().match(text.strip())
    if match is None:
        raise DockerfileError(f"invalid size: '{text}'", span)
    power = " kmgtp".index(match.group(2).lower() or " ")
    return int(float(match.group(1)) * 1024**power)
