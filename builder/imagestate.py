"""The image a stage is building, as it grows op by op: layers, config, history.

Values, not machinery: each op returns a new :class:`ImageState`, so a stage's state after
any step can be kept (for ``--from`` of a later stage, for the cache) without copying by hand.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping
from dataclasses import field, replace

from builder.graph import ConfigChange, Platform
from builder.lazyclasses import dataclass

#: BuildKit writes this comment on every history entry it creates from a Dockerfile.
HISTORY_COMMENT = "buildkit.dockerfile.v0"


@dataclass(frozen=True)
class LayerRef:
    """One layer of an image: its blob in the store and its unpacked snapshot.

    ``chain_id`` names the snapshot directory (the layer applied on all the ones below it).
    """

    diff_id: str
    digest: str
    size: int
    media_type: str
    chain_id: str


@dataclass(frozen=True)
class ImageState:
    """Everything about an image under construction.

    ``config`` is the OCI config's ``config`` object; ``history`` the OCI history entries.
    ``base_digest`` is the manifest digest of the base image ("" for scratch), which keys
    the cache for the stage's first op. ``cache_key`` is the cache key the next
    filesystem op is keyed on as its parent: the base image's, or the last op's key ("" for
    scratch). Config-only changes leave it as it is, since they never touch a layer.
    """

    platform: Platform
    layers: tuple[LayerRef, ...] = ()
    config: Mapping[str, object] = field(default_factory=dict)
    history: tuple[Mapping[str, object], ...] = ()
    base_digest: str = ""
    cache_key: str = ""

    def with_config(self, changes: tuple[ConfigChange, ...]) -> ImageState:
        """A new state with whole-field config changes applied (``None`` removes a field)."""
        if not changes:
            return self
        config = dict(copy.deepcopy(dict(self.config)))
        for change in changes:
            if change.value is None:
                config.pop(change.field, None)
            else:
                config[change.field] = copy.deepcopy(change.value)
        return replace(self, config=config)

    def with_history(self, created_by: str, *, empty_layer: bool, created: str = "") -> ImageState:
        """A new state with one more history entry, in BuildKit's form."""
        entry: dict[str, object] = {
            "created": created or utc_timestamp(),
            "created_by": created_by,
            "comment": HISTORY_COMMENT,
        }
        if empty_layer:
            entry["empty_layer"] = True
        return replace(self, history=(*self.history, entry))

    def with_layer(self, layer: LayerRef) -> ImageState:
        return replace(self, layers=(*self.layers, layer))


def utc_timestamp(epoch: float | None = None) -> str:
    """RFC 3339 UTC time in whole seconds, as image configs carry it: now, or ``epoch``.

    Pass a build's ``SOURCE_DATE_EPOCH`` as ``epoch`` so that a rebuild, cached or not,
    gives the same config bytes."""
    moment = time.time() if epoch is None else epoch
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))
