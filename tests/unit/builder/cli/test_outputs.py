"""``-o/--output`` of ``kiln build``: the ``compression=`` field and where it applies."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from builder.cli.outputs import OutputSpec, parse_output, write_output
from builder.errors import UsageError
from builder.layers.compression import Compression
from builder.oci import mediatypes
from builder.store import Store, StoredLayer


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("type=oci,dest=o.tar", OutputSpec("oci", Path("o.tar"))),
        ("type=oci,dest=o.tar,compression=zstd", OutputSpec("oci", Path("o.tar"), "", "zstd")),
        ("type=registry,name=r/a:1,compression=none", OutputSpec("registry", Path(), "r/a:1", "none")),
        ("out-dir", OutputSpec("local", Path("out-dir"))),
    ],
)
def test_outputs_parse(text: str, expected: OutputSpec) -> None:
    assert parse_output(text) == expected


def test_buildkits_uncompressed_is_none() -> None:
    assert parse_output("type=oci,dest=o.tar,compression=uncompressed").compression == "none"


def test_an_unknown_compression_is_a_usage_error() -> None:
    with pytest.raises(UsageError) as caught:
        parse_output("type=oci,dest=o.tar,compression=xz")
    assert str(caught.value) == (
        "--output 'type=oci,dest=o.tar,compression=xz': compression must be gzip, zstd or none, not 'xz'"
    )


def _layer_tar() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        entry = tarfile.TarInfo("f")
        entry.size = 3
        archive.addfile(entry, io.BytesIO(b"abc"))
    return buffer.getvalue()


def _archived_layer_types(path: Path) -> list[str]:
    with tarfile.open(path) as archive:

        def read(name: str) -> bytes:
            member = archive.extractfile(name)
            assert member is not None
            return member.read()

        index = json.loads(read("index.json"))
        manifest = json.loads(read(f"blobs/sha256/{index['manifests'][0]['digest'][7:]}"))
    return [layer["mediaType"] for layer in manifest["layers"]]


@pytest.mark.parametrize(
    ("field", "flag", "expected"),
    [
        ("", "gzip", mediatypes.OCI_LAYER_GZIP),
        ("", "zstd", mediatypes.OCI_LAYER_ZSTD),
        (",compression=none", "zstd", mediatypes.OCI_LAYER),  # the output's own field wins
    ],
)
def test_an_oci_output_compresses_as_asked(
    tmp_path: Path, field: str, flag: Compression, expected: str
) -> None:
    with Store.open(tmp_path / "store") as store:
        info = store.blobs.put_bytes(_layer_tar())
        layer = StoredLayer(info.digest, info.digest, info.size, mediatypes.OCI_LAYER)
        digest = store.put_image({"architecture": "amd64", "os": "linux", "config": {}}, [layer], "app:1")
        dest = tmp_path / "out.tar"
        write_output(store, digest, parse_output(f"type=oci,dest={dest}{field}"), compression=flag)
    assert _archived_layer_types(dest) == [expected]
