"""The same tree gives the same bytes: rebuilds are reproducible, whatever the mtimes."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from builder.layers import _tarheader as tarheader
from builder.layers import write_layer
from builder.layers._parallel_gzip import BLOCK_SIZE, ParallelGzipWriter
from builder.layers.compression import Compression
from tests.unit.builder.layers.conftest import set_times


def _tree(root: Path, mtime: int) -> Path:
    (root / "dir").mkdir(parents=True)
    (root / "dir" / "big").write_bytes(os.urandom(16) * (3 * BLOCK_SIZE // 16 + 7))
    (root / "dir" / "small").write_text("small")
    (root / "link").symlink_to("dir/small")
    set_times(root, mtime)
    return root


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_same_tree_twice_gives_same_digest(tmp_path: Path, compression: Compression) -> None:
    tree = _tree(tmp_path / "tree", 1_700_000_000)

    first = write_layer(tree, io.BytesIO(), compression=compression)
    second = write_layer(tree, io.BytesIO(), compression=compression)

    assert first == second


def test_copies_of_a_tree_made_at_other_times_match_under_source_date_epoch(tmp_path: Path) -> None:
    one = _tree(tmp_path / "one", 1_700_000_000)
    two = tmp_path / "two"
    (two / "dir").mkdir(parents=True)
    (two / "dir" / "big").write_bytes((one / "dir" / "big").read_bytes())
    (two / "dir" / "small").write_text("small")
    (two / "link").symlink_to("dir/small")
    set_times(two, 1_800_000_000)

    unclamped = {write_layer(tree, io.BytesIO()).digest for tree in (one, two)}
    clamped = {write_layer(tree, io.BytesIO(), source_date_epoch=1_500_000_000).digest for tree in (one, two)}

    assert len(unclamped) == 2
    assert len(clamped) == 1


def test_source_date_epoch_only_lowers_mtimes(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "old").write_text("o")
    (tree / "new").write_text("n")
    os.utime(tree / "old", (1_000_000_000, 1_000_000_000))
    os.utime(tree / "new", (1_900_000_000, 1_900_000_000))
    blob = io.BytesIO()
    write_layer(tree, blob, compression="none", source_date_epoch=1_500_000_000)
    blob.seek(0)

    with tarfile.open(fileobj=blob) as archive:
        times = {member.name: member.mtime for member in archive}

    assert times == {"new": 1_500_000_000, "old": 1_000_000_000}


def test_parallel_gzip_output_does_not_depend_on_worker_count() -> None:
    content = os.urandom(BLOCK_SIZE) + b"compressible " * BLOCK_SIZE
    outputs = []
    for workers in (1, 2, 4):
        out = io.BytesIO()
        writer = ParallelGzipWriter(out, workers=workers)
        for start in range(0, len(content), 100_000):
            writer.write(content[start : start + 100_000])
        writer.close()
        outputs.append(out.getvalue())

    import gzip

    assert outputs[0] == outputs[1] == outputs[2]
    assert gzip.decompress(outputs[0]) == content
    assert outputs[0][:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"


@pytest.mark.parametrize(
    "entry",
    [
        tarheader.TarEntry(
            name=b"etc/hosts", type_flag=tarheader.REGULAR, mode=0o644, size=17, mtime=1700000000
        ),
        tarheader.TarEntry(name=b"usr/", type_flag=tarheader.DIRECTORY, mode=0o4755, uid=1000, gid=100),
        tarheader.TarEntry(name=b"bin/sh", type_flag=tarheader.SYMLINK, mode=0o777, linkname=b"busybox"),
        tarheader.TarEntry(name=b"dev/null", type_flag=tarheader.CHAR_DEVICE, devmajor=1, devminor=3),
        tarheader.TarEntry(name=b"a" * 100, type_flag=tarheader.HARDLINK, linkname=b"b" * 100),
        tarheader.TarEntry(name=b"big", type_flag=tarheader.REGULAR, size=8**11 - 1, mtime=8**11 - 1),
    ],
)
def test_the_plain_header_fast_path_writes_the_general_path_s_bytes(entry: tarheader.TarEntry) -> None:
    fast = tarheader._plain_ustar_block(entry)
    assert fast is not None
    assert fast == tarheader._ustar_block(entry, entry.name, entry.linkname, {})


@pytest.mark.parametrize(
    "entry",
    [
        tarheader.TarEntry(name=b"n" * 101, type_flag=tarheader.REGULAR),
        tarheader.TarEntry(name="caf\u00e9".encode(), type_flag=tarheader.REGULAR),
        tarheader.TarEntry(name=b"x", type_flag=tarheader.REGULAR, uid=8**7),
        tarheader.TarEntry(name=b"x", type_flag=tarheader.REGULAR, size=8**11),
        tarheader.TarEntry(name=b"x", type_flag=tarheader.REGULAR, xattrs={"user.a": b"1"}),
    ],
)
def test_entries_that_need_pax_leave_the_fast_path(entry: tarheader.TarEntry) -> None:
    assert tarheader._plain_ustar_block(entry) is None
    assert tarheader.encode_header(entry).startswith(b"PaxHeaders.0/")
