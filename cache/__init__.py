"""The layer cache: keys from ops and their inputs, records of built layers, and transfer
of those records between machines.

A step runner needs only :class:`~cache.steps.BuildCache`, :func:`~cache.steps.compute_inputs`
and a :class:`~cache.contenthash.ContextHasher`; the rest is re-exported for commands
(``kiln build --explain``, ``prune``, ``--cache-to``/``--cache-from`` of the local and
registry kinds). Attributes are loaded
on first use, so importing ``cache`` costs nothing until a name is needed: start-up time is
part of every fully cached build.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # (no ``typing`` import: :mod:`cache.prescan` is loaded before it)
if TYPE_CHECKING:
    from cache.canonical import canonical_digest, canonical_json
    from cache.contenthash import ContextHasher, SourceDigest
    from cache.explain import explain_all, explain_miss
    from cache.keys import CacheKey, InputNeed, image_parent, op_key, required_inputs, stage_parent
    from cache.prune import prune_records
    from cache.records import CacheRecord, step_identity
    from cache.registrycache import export_registry, import_registry
    from cache.steps import BuildCache, InputDigests, InputSources, Probe, compute_inputs
    from cache.transfer import export_local, import_local

_EXPORTS = {
    "canonical_digest": "cache.canonical",
    "canonical_json": "cache.canonical",
    "ContextHasher": "cache.contenthash",
    "SourceDigest": "cache.contenthash",
    "explain_all": "cache.explain",
    "explain_miss": "cache.explain",
    "CacheKey": "cache.keys",
    "InputNeed": "cache.keys",
    "image_parent": "cache.keys",
    "op_key": "cache.keys",
    "required_inputs": "cache.keys",
    "stage_parent": "cache.keys",
    "prune_records": "cache.prune",
    "CacheRecord": "cache.records",
    "export_registry": "cache.registrycache",
    "import_registry": "cache.registrycache",
    "step_identity": "cache.records",
    "BuildCache": "cache.steps",
    "InputDigests": "cache.steps",
    "InputSources": "cache.steps",
    "Probe": "cache.steps",
    "compute_inputs": "cache.steps",
    "export_local": "cache.transfer",
    "import_local": "cache.transfer",
}

__all__ = [
    "BuildCache",
    "CacheKey",
    "CacheRecord",
    "ContextHasher",
    "InputDigests",
    "InputNeed",
    "InputSources",
    "Probe",
    "SourceDigest",
    "canonical_digest",
    "canonical_json",
    "compute_inputs",
    "explain_all",
    "explain_miss",
    "export_local",
    "export_registry",
    "image_parent",
    "import_local",
    "import_registry",
    "op_key",
    "prune_records",
    "required_inputs",
    "stage_parent",
    "step_identity",
]


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cache' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
