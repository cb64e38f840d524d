"""What the dispatch functions share: the build-wide context and one stage's running state.

A stage's state is the image config as it stands after each instruction (so words can be
expanded with exactly the environment BuildKit would use), the build args in scope, and
the ops produced so far. ENV wins over ARG when both set a name.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import field

from builder.errors import DockerfileError
from builder.graph import ContextSource, CopySource, ImageSource, Op, StageSource
from builder.lazyclasses import dataclass
from builder.source import SourceSpan
from frontends.dockerfile.shell import ShellLexer
from frontends.dockerfile.stages import PROXY_ARGS, StageSpec, StageTable

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_SHELL = ("/bin/sh", "-c")


@dataclass
class BuildContext:
    """Build-wide inputs every stage's dispatch reads; ``finished`` grows as stages end.

    ``arg_values`` are the values that beat an ARG's default: the automatic platform args
    and the user's build args. ``meta_values`` are the evaluated ARGs before the first FROM,
    which an ARG without a default inherits. ``finished`` and ``finished_args`` hold each
    dispatched stage's final config and args in scope: a stage built ``FROM`` another starts
    with both (BuildKit carries the parent stage's ARGs into the child).
    """

    table: StageTable
    build_args: Mapping[str, str]
    arg_values: Mapping[str, str]
    meta_values: Mapping[str, str]
    build_contexts: Mapping[str, str]
    lexer: ShellLexer
    heredoc_lexer: ShellLexer
    finished: dict[int, dict[str, object]] = field(default_factory=dict)
    finished_args: dict[int, dict[str, str]] = field(default_factory=dict)
    used_args: set[str] = field(default_factory=set)


@dataclass
class StageState:
    """One stage being dispatched: its config, env, args in scope and ops so far."""

    spec: StageSpec
    config: dict[str, object]
    env: dict[str, str]
    args: dict[str, str] = field(default_factory=dict)
    inherited_args: dict[str, str] = field(default_factory=dict)
    ops: list[Op] = field(default_factory=list)
    reads: set[int] = field(default_factory=set)
    cmd_set: bool = False

    def expansion_env(self) -> dict[str, str]:
        """Args in scope overlaid by the image env: ENV beats ARG.

        ``inherited_args`` are the args of the stage this one is built ``FROM``: BuildKit keeps
        them in the inherited state's environment, so they expand and reach a RUN, but they
        are not this stage's build args (no ``|N k=v`` history prefix)."""
        return {**self.inherited_args, **self.args, **self.env}

    def env_list(self) -> list[str]:
        return [f"{key}={value}" for key, value in self.env.items()]

    @property
    def working_dir(self) -> str:
        value = self.config.get("WorkingDir")
        return value if isinstance(value, str) and value else "/"

    @property
    def user(self) -> str:
        value = self.config.get("User")
        return value if isinstance(value, str) else ""

    @property
    def shell(self) -> tuple[str, ...]:
        value = self.config.get("Shell")
        if isinstance(value, list) and value:
            return tuple(str(item) for item in value)
        return DEFAULT_SHELL


def expand(build: BuildContext, state: StageState, word: str) -> str:
    return build.lexer.process_word(word, state.expansion_env())


def process_env(build: BuildContext, state: StageState) -> tuple[str, ...]:
    """A RUN's environment: image env, then args in scope it lacks, then proxy build args."""
    entries = state.env_list()
    entries += [f"{key}={value}" for key, value in state.args.items() if key not in state.env]
    entries += [
        f"{key}={value}"
        for key, value in state.inherited_args.items()
        if key not in state.env and key not in state.args
    ]
    for key in PROXY_ARGS:
        if key in build.build_args and key not in state.env and key not in state.args:
            entries.append(f"{key}={build.build_args[key]}")
    return tuple(entries)


def build_arg_pairs(state: StageState) -> tuple[str, ...]:
    """``K=V`` for each arg in scope (an ENV of the same name shows its value, as BuildKit)."""
    return tuple(f"{key}={state.env.get(key, value)}" for key, value in state.args.items())


def join_path(directory: str, path: str) -> str:
    """Go's ``path.Join("/", directory, path)``: absolute and cleaned."""
    joined = posixpath.normpath(posixpath.join("/", directory, path))
    return "/" + joined.lstrip("/")


def resolve_dest(working_dir: str, dest: str) -> str:
    """A COPY destination made absolute; a trailing ``/`` (or ``/.``, ``.``) is kept."""
    if not dest:
        return working_dir
    joined = join_path("/" if dest.startswith("/") else working_dir, dest)
    keeps_slash = dest.endswith("/") or dest.endswith("/.") or dest == "."
    if keeps_slash and not joined.endswith("/"):
        joined += "/"
    return joined


#: A named build context that is an image (``--build-context NAME=docker-image://REF``);
#: any other value names a directory. The CLI turns ``oci-layout://`` into this form.
IMAGE_CONTEXT_SCHEME = "docker-image://"


def resolve_from(
    build: BuildContext, state: StageState, ref: str, span: SourceSpan, *, verb: str = "copy"
) -> CopySource:
    """``--from`` / ``from=``: an earlier stage, a named build context, or an image."""
    found = build.table.find(ref)
    if found is not None:
        if found.index not in build.finished:
            raise DockerfileError(
                f'cannot {verb} from stage "{ref}", it needs to be defined before current stage '
                f'"{state.spec.display_name}"',
                span,
            )
        state.reads.add(found.index)
        return StageSource(found.index)
    if ref in build.build_contexts:
        value = build.build_contexts[ref]
        if value.startswith(IMAGE_CONTEXT_SCHEME):
            return ImageSource(value.removeprefix(IMAGE_CONTEXT_SCHEME))
        return ContextSource(name=ref)
    return ImageSource(ref)
