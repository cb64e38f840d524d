"""The instruction graph: what a frontend hands the builder.

Like BuildKit's LLB the ops are low-level and every word in them is already expanded, so
the solver and the cache know nothing of Dockerfile syntax. Everything here is a frozen
dataclass of plain values (strings, ints, tuples), so a graph can be compared, hashed for
cache keys and printed as JSON (``kiln debug graph``) without special cases.

A stage is a base plus a list of ops. Each op is one history entry of the image:

* :class:`Exec` runs a command in a container and yields a layer (RUN);
* :class:`CopyOp` and :class:`MkdirOp` write a layer without a container (COPY, ADD, WORKDIR);
* :class:`ConfigOp` changes the image config only (ENV, CMD, ...), no layer.

Every op may also carry ``config`` changes, applied after its filesystem change: WORKDIR is
a :class:`MkdirOp` that also sets ``WorkingDir``, and is one history entry, as in BuildKit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import field
from typing import Literal

from builder.lazyclasses import dataclass
from builder.source import SourceSpan

# ---------------------------------------------------------------------------------------
# Platforms


@dataclass(frozen=True, order=True)
class Platform:
    """An OCI platform: ``linux/amd64``, ``linux/arm64/v8``."""

    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        text = f"{self.os}/{self.architecture}"
        return f"{text}/{self.variant}" if self.variant else text


# ---------------------------------------------------------------------------------------
# Where a stage starts


@dataclass(frozen=True)
class ImageBase:
    """``FROM <image reference>``: an image from the store or a registry."""

    ref: str


@dataclass(frozen=True)
class StageBase:
    """``FROM <earlier stage>``: the result of that stage, by index in the graph."""

    stage: int


@dataclass(frozen=True)
class ScratchBase:
    """``FROM scratch``: an empty filesystem and an empty config."""


Base = ImageBase | StageBase | ScratchBase


# ---------------------------------------------------------------------------------------
# Where copied (or mounted) content comes from


@dataclass(frozen=True)
class ContextSource:
    """The build context, or a named build context (``--build-context NAME=DIR``)."""

    name: str = "context"


@dataclass(frozen=True)
class StageSource:
    """The final filesystem of an earlier stage (``--from=<stage>``)."""

    stage: int


@dataclass(frozen=True)
class ImageSource:
    """The filesystem of an image (``--from=<image reference>``)."""

    ref: str


@dataclass(frozen=True)
class UrlSource:
    """``ADD https://...``: fetched at build time; ``checksum`` from ``--checksum``."""

    url: str
    checksum: str | None = None


@dataclass(frozen=True)
class GitSource:
    """``ADD https://host/repo.git#ref:subdir``."""

    url: str
    ref: str = ""
    subdir: str = ""
    keep_git_dir: bool = False


@dataclass(frozen=True)
class InlineFile:
    """A file whose content is written in the Dockerfile (a heredoc)."""

    name: str
    content: str
    mode: int = 0o644


@dataclass(frozen=True)
class InlineSource:
    """``COPY <<EOF /dest``: files given by heredocs."""

    files: tuple[InlineFile, ...]


CopySource = ContextSource | StageSource | ImageSource | UrlSource | GitSource | InlineSource


# ---------------------------------------------------------------------------------------
# RUN --mount


@dataclass(frozen=True)
class CacheMount:
    """A persistent directory shared across builds; never part of a layer or a key."""

    target: str
    id: str
    sharing: Literal["shared", "private", "locked"] = "shared"
    source: CopySource | None = None
    source_path: str = ""
    mode: int = 0o755
    uid: int = 0
    gid: int = 0
    readonly: bool = False


@dataclass(frozen=True)
class BindMount:
    """Content from the context, a stage or an image, bound for one RUN; writes discarded."""

    target: str
    source: CopySource
    source_path: str = ""
    readwrite: bool = False


@dataclass(frozen=True)
class SecretMount:
    """A secret by id: a file on a tmpfs (``target``) or an env variable (``env``)."""

    id: str
    target: str = ""
    env: str = ""
    required: bool = False
    mode: int = 0o400
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True)
class SshMount:
    """The forwarded SSH agent socket (``--ssh``)."""

    id: str = "default"
    target: str = ""
    required: bool = False
    mode: int = 0o600
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True)
class TmpfsMount:
    """A fresh tmpfs for one RUN; ``size`` in bytes, 0 for the kernel's default."""

    target: str
    size: int = 0


Mount = CacheMount | BindMount | SecretMount | SshMount | TmpfsMount


# ---------------------------------------------------------------------------------------
# Config changes


ConfigField = Literal[
    "Env",
    "Cmd",
    "Entrypoint",
    "User",
    "WorkingDir",
    "Labels",
    "ExposedPorts",
    "Volumes",
    "StopSignal",
    "Healthcheck",
    "Shell",
    "OnBuild",
    "ArgsEscaped",
]


@dataclass(frozen=True)
class ConfigChange:
    """Set one field of the image config to a whole new value (JSON-shaped).

    Whole values rather than deltas keep applying a change trivial and order-proof: the
    frontend already tracks the config to expand words, so it knows the full new value.
    ``None`` removes the field.
    """

    field: ConfigField
    value: object


# ---------------------------------------------------------------------------------------
# Ops


@dataclass(frozen=True)
class Exec:
    """RUN: a command in a container over the stage's filesystem; its upper dir is a layer.

    ``env`` is the complete process environment in order (image env, then the build args in
    scope that the env does not set); the builder adds only ``HOME`` (from the image's
    /etc/passwd) when absent, as BuildKit does. ``user`` is the unresolved ``user[:group]``.
    ``inline_files`` are mounted read-only at ``/dev/pipes/<name>`` (a RUN heredoc that
    starts with ``#!`` runs that path, as BuildKit does).
    """

    location: SourceSpan
    created_by: str
    argv: tuple[str, ...]
    env: tuple[str, ...]
    cwd: str
    user: str = ""
    network: Literal["default", "none", "host"] = "default"
    security: Literal["sandbox", "insecure"] = "sandbox"
    mounts: tuple[Mount, ...] = ()
    inline_files: tuple[InlineFile, ...] = ()
    shell_form: bool = True
    build_args: tuple[str, ...] = ()
    config: tuple[ConfigChange, ...] = ()


@dataclass(frozen=True)
class CopyOp:
    """COPY or ADD: files from a source into the stage's filesystem, without a container.

    ``paths`` are the source paths as written (after expansion; wildcards allowed), relative
    to the source's root. ``dest`` is absolute (joined with the working directory); a
    trailing slash is kept because it decides whether ``dest`` is a directory.
    ``unpack`` is ADD's rule: a local tar archive is extracted rather than copied.
    """

    location: SourceSpan
    created_by: str
    source: CopySource
    paths: tuple[str, ...]
    dest: str
    chown: str = ""
    chmod: str = ""
    link: bool = False
    parents: bool = False
    exclude: tuple[str, ...] = ()
    unpack: bool = False
    config: tuple[ConfigChange, ...] = ()


@dataclass(frozen=True)
class MkdirOp:
    """Make a directory (and its parents) owned by ``user``: WORKDIR's filesystem half."""

    location: SourceSpan
    created_by: str
    path: str
    user: str = ""
    mode: int = 0o755
    config: tuple[ConfigChange, ...] = ()


@dataclass(frozen=True)
class ConfigOp:
    """A config-only step (ENV, LABEL, CMD, ...): no layer.

    ``in_history`` is false for changes BuildKit does not record (ONBUILD triggers, the
    default PATH given to a base without one).
    """

    location: SourceSpan
    created_by: str
    config: tuple[ConfigChange, ...] = ()
    in_history: bool = True


FileOp = CopyOp | MkdirOp
Op = Exec | CopyOp | MkdirOp | ConfigOp


def changes_filesystem(op: Op) -> bool:
    """Whether an op yields a layer (and so a new cache key)."""
    return not isinstance(op, ConfigOp)


# ---------------------------------------------------------------------------------------
# Stages and the graph


@dataclass(frozen=True)
class Stage:
    """One ``FROM`` and the ops under it.

    ``reads`` are the indexes of the stages this one depends on (its base, ``--from``,
    bind and cache mount sources), so the solver can order and parallelise stages.
    ``base_config`` is the config the frontend resolved for the base (an OCI image config
    ``config`` object), recorded so the builder applies ops on exactly what was expanded.
    """

    index: int
    name: str
    base: Base
    platform: Platform
    ops: tuple[Op, ...]
    location: SourceSpan
    reads: frozenset[int] = frozenset()
    base_config: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class BuildGraph:
    """All stages the target needs, in Dockerfile order, and the target stage's index."""

    stages: tuple[Stage, ...]
    target: int
    warnings: tuple[str, ...] = ()

    def stage(self, index: int) -> Stage:
        for stage in self.stages:
            if stage.index == index:
                return stage
        raise KeyError(index)


def to_jsonable(value: object) -> object:
    """A graph value as plain JSON data, each dataclass tagged with its type name.

    Used by ``kiln debug graph`` and by the cache's canonical encoder.
    """
    if value is None or type(value) in (str, int, bool, float):
        return value  # most leaves: skip the dataclass and ``Mapping`` (an ABC) checks
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, object] = {"kind": type(value).__name__}
        for item in dataclasses.fields(value):
            out[item.name] = to_jsonable(getattr(value, item.name))
        return out
    if isinstance(value, (frozenset, set)):
        return sorted(to_jsonable(v) for v in value)  # type: ignore[type-var]
    if isinstance(value, (tuple, list)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    return value
