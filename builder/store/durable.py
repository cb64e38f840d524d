"""Small files written whole or not at all, and durably, beside what they describe.

Used for the store's own small documents (its layout file and index, a splice's parts, a
layer's index): a reader sees the old file or the new one, never a torn one, even after a
crash, and the temporary name carries the writer's pid so a later start can remove what a
dead writer left (:func:`builder.store.blobs.remove_stale_temp_entries`).
"""

from __future__ import annotations

import os
from pathlib import Path

from builder.store.blobs import TEMP_PREFIX


def write_durably(path: Path, payload: bytes) -> None:
    """Write ``payload`` to a temporary file beside ``path``, sync it, rename it over ``path``."""
    temp_path = path.with_name(f"{TEMP_PREFIX}{os.getpid()}-{os.urandom(8).hex()}")
    try:
        with temp_path.open("xb") as out:
            out.write(payload)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp_path, path)
    except BaseException:
        temp_path.unlink(missing_ok=True)
        raise
