"""``--cache-to`` and ``--cache-from`` of ``kiln build``: parsing the specs, and moving cache
records between the store and a directory or a registry around one build.

Imports happen before the build (so its steps can hit what another machine built); the
export after it, of the records the build used or made (``mode=max``, the default) or only
of the final image's layers (``mode=min``). Layers the store keeps uncompressed leave
compressed, as the spec's ``compression=`` says, else as the build's ``--compression``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TextIO

from builder.cli.outputs import parse_compression
from builder.errors import UsageError
from builder.lazyclasses import dataclass

if TYPE_CHECKING:
    from builder.layers.compression import Compression
    from builder.registry.client import RegistryClient
    from builder.store.store import Store
    from cache.records import CacheRecord

CacheKind = Literal["local", "registry"]


@dataclass(frozen=True)
class CacheSpec:
    """One ``--cache-to``/``--cache-from`` value: a directory or a registry reference."""

    kind: CacheKind
    location: str
    mode: Literal["min", "max"] = "max"
    #: ``compression=`` of ``--cache-to``; None leaves it to the build's ``--compression``.
    compression: Compression | None = None


def parse_cache_spec(text: str, flag: str) -> CacheSpec:
    """Parse ``type=local,dest=DIR[,mode=min|max]`` (``src=`` for ``--cache-from``) or
    ``type=registry,ref=REF[,mode=...]``; a bare value is a registry reference, as in docker."""
    fields: dict[str, str] = {}
    if "=" not in text:
        fields = {"type": "registry", "ref": text}
    else:
        for part in text.split(","):
            key, has_value, value = part.partition("=")
            if not has_value or not key:
                raise UsageError(f"{flag} {text!r}: expected KEY=VALUE fields")
            fields[key.strip()] = value.strip()
    kind_text = fields.pop("type", "")
    mode = fields.pop("mode", "max")
    if mode not in ("min", "max"):
        raise UsageError(f"{flag} {text!r}: mode must be min or max")
    kind: CacheKind
    if kind_text == "local":
        kind = "local"
        where_key = "dest" if flag == "--cache-to" else "src"
        location = fields.pop(where_key, "")
        if not location:
            raise UsageError(f"{flag} {text!r}: type=local needs {where_key}=DIR")
    elif kind_text == "registry":
        kind = "registry"
        location = fields.pop("ref", "")
        if not location:
            raise UsageError(f"{flag} {text!r}: type=registry needs ref=REGISTRY/REPOSITORY:TAG")
    else:
        raise UsageError(f"{flag} {text!r}: type must be local or registry")
    compression = parse_compression(fields.pop("compression", None), f"{flag} {text!r}")
    if fields:
        raise UsageError(f"{flag} {text!r}: unknown field {next(iter(fields))!r}")
    return CacheSpec(kind, location, "min" if mode == "min" else "max", compression)


def import_caches(store: Store, specs: Sequence[CacheSpec], insecure: Sequence[str]) -> int:
    """Import every ``--cache-from`` source into ``store``; return how many records came in.

    A local source that does not exist yet is skipped (the first CI run has no cache), as
    docker does; a registry cache that cannot be read fails the build.
    """
    added = 0
    for spec in specs:
        if spec.kind == "local":
            from cache.transfer import import_local

            source = Path(spec.location)
            if (source / "index.json").exists():
                added += len(import_local(store, source))
        else:
            from cache.registrycache import import_registry

            added += len(import_registry(store, _client(spec.location, insecure), spec.location))
    return added


def export_caches(
    store: Store,
    specs: Sequence[CacheSpec],
    used: Sequence[CacheRecord],
    final_chain_ids: Collection[str],
    insecure: Sequence[str],
    *,
    compression: Compression = "gzip",
) -> None:
    """Write the records of one build to every ``--cache-to`` destination."""
    unique = list({record.key: record for record in used}.values())
    for spec in specs:
        leaving = _record_exporter(store, spec.compression or compression)
        if spec.kind == "local":
            from cache.transfer import export_local

            export_local(
                store,
                unique,
                Path(spec.location),
                spec.mode,
                final_chain_ids=final_chain_ids,
                exported=leaving,
            )
        else:
            from cache.registrycache import export_registry

            client = _client(spec.location, insecure)
            export_registry(
                store,
                client,
                spec.location,
                unique,
                spec.mode,
                final_chain_ids=final_chain_ids,
                exported=leaving,
            )


def _record_exporter(store: Store, compression: Compression) -> Callable[[CacheRecord], CacheRecord]:
    """A record as it leaves the store: an uncompressed layer swapped for its variant in
    ``compression`` (made the first time it is asked for); a compressed one as it is."""
    from dataclasses import replace

    from builder.store.store import StoredLayer
    from builder.store.variants import outgoing_layer

    def exported(record: CacheRecord) -> CacheRecord:
        stored = StoredLayer(record.blob_digest, record.diff_id, record.size, record.media_type)
        layer = outgoing_layer(store, stored, compression)
        return replace(record, blob_digest=layer.digest, size=layer.size, media_type=layer.media_type)

    return exported


def _client(ref: str, insecure: Sequence[str]) -> RegistryClient:
    from builder.oci.reference import parse_reference
    from builder.registry.client import RegistryClient

    try:
        registry = parse_reference(ref).registry
    except UsageError as err:
        raise UsageError(f"invalid cache reference {ref!r}: {err}") from err
    return RegistryClient(registry, insecure=insecure)


def print_explanations(explained: Sequence[tuple[int, tuple[str, ...]]], stream: TextIO) -> None:
    """``--explain``: every rebuilt step (by its ``#N`` in the progress output) and every
    input that differed from the closest previous build of it."""
    if not explained:
        print("explain: every step came from the cache", file=stream)
        return
    for step, reasons in sorted(explained):
        print(f"explain: #{step} was rebuilt because:", file=stream)
        for reason in reasons:
            print(f"  - {reason}", file=stream)


class CacheCollector:
    """What one build tells the command about the cache: the records its steps used or
    made (for ``--cache-to``) and the reasons of its rebuilt steps (for ``--explain``)."""

    def __init__(self) -> None:
        self.records: list[CacheRecord] = []
        self.explained: list[tuple[int, tuple[str, ...]]] = []
        self._lock = threading.Lock()

    def record(self, record: CacheRecord) -> None:
        """Called from the stage threads, for each step."""
        with self._lock:
            self.records.append(record)

    def explain(self, step: int, reasons: tuple[str, ...]) -> None:
        with self._lock:
            self.explained.append((step, reasons))
