"""A built (uncompressed) layer is checked against its diff id as it goes into a docker
archive: a damaged blob fails the save instead of leaving the store unnoticed."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from builder.errors import ImageFormatError
from builder.export.docker_archive import write_docker_archive
from builder.store import Store, StoredLayer


def _layer_tar() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        data = b"hello\n"
        info = tarfile.TarInfo("hello.txt")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_a_damaged_uncompressed_layer_fails_the_save(tmp_path: Path) -> None:
    with Store.open(tmp_path / "store") as store:
        blob = store.blobs.put_bytes(_layer_tar())
        layer = StoredLayer(blob.digest, blob.digest, blob.size, "application/vnd.oci.image.layer.v1.tar")
        config = {"architecture": "amd64", "os": "linux", "config": {}}
        store.put_image(config, [layer], "app:1")
        write_docker_archive(store, ["app:1"], io.BytesIO())  # whole: fine

        path = store.blobs.path(blob.digest)
        damaged = bytearray(path.read_bytes())
        damaged[600] ^= 0xFF  # one flipped byte in the file's content
        os.chmod(path, 0o644)
        path.write_bytes(bytes(damaged))
        with pytest.raises(ImageFormatError, match="does not match its digest"):
            write_docker_archive(store, ["app:1"], io.BytesIO())
