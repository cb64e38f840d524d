"""Files written whole or not at all, and durably, beside what they describe.

For the store's own small documents (its layout file and index, a splice's parts, a layer's
index) and for what a cache export writes: a reader sees the old file or the new one, never
a torn one, even after a crash. The temporary name carries the writer's pid, so a later
start can remove what a dead writer left (:func:`builder.store.blobs.remove_stale_temp_entries`).
It lies outside :mod:`builder.store` so that :mod:`cache`, which may not import the store,
writes the same way.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

#: What a temporary file's name starts with, beside the file it becomes.
TEMP_PREFIX = ".tmp-"
_CHUNK = 1 << 20


def write_durably(path: Path, payload: bytes | BinaryIO) -> None:
    """Write ``payload`` (bytes, or a stream read to its end) to a temporary file beside
    ``path``, sync it, and rename it over ``path``; on failure, nothing is left."""
    temp_path = path.with_name(f"{TEMP_PREFIX}{os.getpid()}-{os.urandom(8).hex()}")
    try:
        with temp_path.open("xb") as out:
            if isinstance(payload, bytes):
                out.write(payload)
            else:
                while chunk := payload.read(_CHUNK):
                    out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp_path, path)
    except BaseException:
        temp_path.unlink(missing_ok=True)
        raise
