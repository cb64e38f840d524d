"""``kiln import``: a root filesystem tar (plain, gzip or zstd) becomes a one-layer image.

Like ``docker import``: the tar is the layer as it is, the config gets this machine's
platform, the ``--change`` lines and one history entry ("Imported from …"). The tar is
checked to be a readable tar before anything is stored, and the layer is stored
gzip-compressed with its diff id computed on the way.
"""

from __future__ import annotations

import hashlib
import os
import platform
import secrets
import shutil
import tarfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from builder.durable import TEMP_PREFIX
from builder.errors import ImageFormatError
from builder.export.config_changes import apply_change
from builder.graph import Platform
from builder.layers.compression import open_compressor, open_decompressed
from builder.oci import mediatypes
from builder.store.store import Store, StoredLayer

_CHUNK = 1 << 20
_GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}


def host_architecture() -> str:
    """This machine's architecture in the OCI (Go) spelling."""
    machine = platform.machine()
    return _GO_ARCH.get(machine, machine)


def import_rootfs(
    store: Store,
    stream: BinaryIO,
    name: str | None,
    *,
    changes: Sequence[str] = (),
    source: str = "-",
    message: str = "",
    created: datetime | None = None,
    platform: Platform | None = None,
) -> str:
    """Store the tar read from ``stream`` as a one-layer image named ``name``; return its
    manifest digest. ``platform`` (default: this machine's) is what the config declares."""
    container_config: dict[str, Any] = {}
    for line in changes:
        apply_change(container_config, line)
    moment = (created or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    scratch = store.root / f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(8)}"
    scratch.mkdir(mode=0o700)
    try:
        with store.writing():
            layer = _store_layer(store, stream, scratch)
            config: dict[str, Any] = {
                "architecture": platform.architecture if platform else host_architecture(),
                "os": platform.os if platform else "linux",
                "created": moment,
                "config": container_config,
                "history": [
                    {
                        "created": moment,
                        "created_by": "kiln import",
                        "comment": message or f"Imported from {source}",
                    }
                ],
            }
            if platform is not None and platform.variant:
                config["variant"] = platform.variant
            return store.put_image(config, [layer], name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _store_layer(store: Store, stream: BinaryIO, scratch: Path) -> StoredLayer:
    plain_path = scratch / "layer.tar"
    diff_hasher = hashlib.sha256()
    try:
        reader, _compression = open_decompressed(stream)
        with plain_path.open("wb") as plain:
            while chunk := reader.read(_CHUNK):
                diff_hasher.update(chunk)
                plain.write(chunk)
    except (OSError, EOFError) as err:
        raise ImageFormatError(f"cannot read the root filesystem archive: {err}") from err
    _check_tar(plain_path)
    compressed_path = scratch / "layer.tar.gz"
    with plain_path.open("rb") as plain, compressed_path.open("wb") as out:
        compressor = open_compressor("gzip", out)
        while chunk := plain.read(_CHUNK):
            compressor.write(chunk)
        compressor.close()
    with compressed_path.open("rb") as compressed:
        info = store.blobs.put_stream(compressed)
    return StoredLayer(info.digest, "sha256:" + diff_hasher.hexdigest(), info.size, mediatypes.OCI_LAYER_GZIP)


def _check_tar(path: Path) -> None:
    try:
        with tarfile.open(path, mode="r:") as archive:
            for _member in archive:
                pass
    except tarfile.TarError as err:
        raise ImageFormatError(f"the root filesystem archive is not a valid tar: {err}") from err
