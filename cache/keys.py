"""Cache keys: what decides that a step's layer can be reused.

``key = sha256(canonical({version, kind, parent, op, platform, inputs}))`` (DESIGN.md,
"Cache keys"). The preimage is returned beside the digest and stored with the record, so a
later miss can be explained field by field (:mod:`cache.explain`).

* ``parent`` is what the op runs on: the previous filesystem-changing op's key, or the base
  image (:func:`image_parent`), a base stage's final key (:func:`stage_parent`), or
  :data:`SCRATCH`. Config-only ops never change it, so reordering ENV and LABEL lines
  invalidates no layer unless a later op's own fields (a RUN's env) change.
* ``op`` is the op's fields after expansion, minus the fields that cannot change the layer
  (:data:`DROPPED_FIELDS`); mounts keep only their declaration (:func:`_mount_fields`).
* ``inputs`` are digests the runner computed of what the op reads besides its parent
  (:func:`required_inputs` says which): context files, another stage, an image, a bind mount.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

from builder.graph import (
    BindMount,
    CacheMount,
    ConfigOp,
    ContextSource,
    CopyOp,
    CopySource,
    Exec,
    GitSource,
    ImageSource,
    Mount,
    Op,
    Platform,
    SecretMount,
    StageSource,
    UrlSource,
    to_jsonable,
)
from builder.lazyclasses import dataclass
from cache.canonical import canonical_digest

#: Bumped whenever the preimage's shape or meaning changes, so old records stop matching.
KEY_VERSION = 1

#: The parent of a stage's first op when the stage starts ``FROM scratch``.
SCRATCH = "scratch"

#: Op fields left out of the key, and why:
#: ``location``: moving an instruction to another line must not invalidate it;
#: ``created_by``: derived from the op's other fields (the runner writes the current one into
#: the history, not the recorded one);
#: ``config``: config changes ride on the op (WORKDIR sets WorkingDir) but never touch its
#: layer; the runner applies the current op's config on a hit.
DROPPED_FIELDS = frozenset({"location", "created_by", "config"})

#: Name of the input holding the digest of what a COPY/ADD reads.
SOURCE_INPUT = "source"


@dataclass(frozen=True)
class CacheKey:
    """A step's key: ``digest`` names the record, ``preimage`` is what was hashed."""

    digest: str
    preimage: Mapping[str, object]


@dataclass(frozen=True)
class InputNeed:
    """One digest the runner must compute before keying an op, and put in ``inputs[name]``.

    For a context source it is :meth:`cache.contenthash.ContextHasher.digest_sources` over
    ``paths`` (minus ``exclude``); for a stage the stage's final cache key; for an image its
    manifest digest; for a URL its ``--checksum`` or the fetched content's digest; for git
    the commit. ``source_path`` narrows a bind mount to a subpath of its source.
    """

    name: str
    source: CopySource
    paths: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    source_path: str = ""


def image_parent(manifest_digest: str) -> str:
    """The parent of a stage's first op when its base is an image (per-platform manifest)."""
    return f"image@{manifest_digest}"


def stage_parent(stage_final_key: str) -> str:
    """The parent of a stage's first op when its base is an earlier stage."""
    return f"stage@{stage_final_key}"


def mount_input(target: str) -> str:
    """The input name of a bind mount at ``target``."""
    return f"mount:{target}"


def required_inputs(op: Op) -> tuple[InputNeed, ...]:
    """The digests ``op`` needs besides its parent; inline sources need none (their text is
    in the op), nor do cache, tmpfs, secret and ssh mounts (content never keyed)."""
    if isinstance(op, CopyOp):
        if isinstance(op.source, (ContextSource, StageSource, ImageSource, UrlSource, GitSource)):
            return (InputNeed(SOURCE_INPUT, op.source, op.paths, op.exclude),)
        return ()
    if isinstance(op, Exec):
        return tuple(
            InputNeed(mount_input(mount.target), mount.source, source_path=mount.source_path)
            for mount in op.mounts
            if isinstance(mount, BindMount)
        )
    return ()


def op_key(op: Op, *, parent: str, platform: Platform, inputs: Mapping[str, str]) -> CacheKey:
    """The key of a filesystem-changing op run on ``parent`` for ``platform``."""
    if isinstance(op, ConfigOp):
        raise ValueError("a config-only op has no layer and so no cache key")
    preimage: dict[str, object] = {
        "version": KEY_VERSION,
        "kind": type(op).__name__,
        "parent": parent,
        "op": op_fields(op),
        "platform": str(platform),
        "inputs": dict(sorted(inputs.items())),
    }
    return CacheKey(canonical_digest(preimage), preimage)


def op_fields(op: Op) -> dict[str, object]:
    """The op's keyed fields as JSON data (see :data:`DROPPED_FIELDS`)."""
    fields = cast(dict[str, object], to_jsonable(op))
    fields.pop("kind")
    for name in DROPPED_FIELDS:
        fields.pop(name, None)
    if isinstance(op, Exec):
        fields["mounts"] = [_mount_fields(mount) for mount in op.mounts]
    if isinstance(op, CopyOp):
        fields["source"] = _source_fields(op.source)
    return fields


def _mount_fields(mount: Mount) -> dict[str, object]:
    """A mount's declaration, never its content.

    A secret mount keeps only where the secret appears (id, target or env, whether it is
    required): the value is supplied at build time and must not enter a key, a record or a
    log. A cache mount keeps its options but not what it holds, since that content is
    deliberately shared across builds. A bind mount's content is the input
    ``mount:<target>``; its source is described without a stage index.
    """
    if isinstance(mount, SecretMount):
        return {
            "kind": "SecretMount",
            "id": mount.id,
            "target": mount.target,
            "env": mount.env,
            "required": mount.required,
        }
    fields = cast(dict[str, object], to_jsonable(mount))
    if isinstance(mount, (BindMount, CacheMount)) and mount.source is not None:
        fields["source"] = _source_fields(mount.source)
    return fields


def _source_fields(source: CopySource) -> dict[str, object]:
    """A copy source without a stage's index: the stage's content is keyed through its
    final key in the inputs, so reordering stages in the Dockerfile changes nothing."""
    if isinstance(source, StageSource):
        return {"kind": "StageSource"}
    return cast(dict[str, object], to_jsonable(source))
