"""Hostile layer tars are refused, naming the entry, and nothing outside the root changes."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import pytest

from builder.errors import LayerError
from builder.layers import apply_layer
from tests.fixtures.hostile_tars import ALL_HOSTILE, HostileTar
from tests.unit.builder.layers.conftest import describe_tree


def _outside_state(path: Path) -> dict[str, object]:
    return {"tree": describe_tree(path), "self": os.lstat(path).st_mtime_ns}


@pytest.mark.parametrize("whiteout_format", ["overlay", "oci"])
@pytest.mark.parametrize("make_hostile", ALL_HOSTILE, ids=lambda make: make.__name__)
def test_hostile_tar_is_refused_and_outside_untouched(
    tmp_path: Path,
    make_hostile: Callable[[Path, Path], HostileTar],
    whiteout_format: Literal["overlay", "oci"],
) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "sentinel").write_text("precious")
    hostile = make_hostile(root, outside)
    before = _outside_state(outside)

    with pytest.raises(LayerError) as raised:
        apply_layer(io.BytesIO(hostile.tar), root, whiteout_format=whiteout_format)

    assert repr(hostile.bad_entry) in str(raised.value)
    assert _outside_state(outside) == before
    assert (outside / "sentinel").read_text() == "precious"
    assert sorted(os.listdir(tmp_path)) == ["outside", "root"]


def test_garbage_is_a_layer_error(tmp_path: Path) -> None:
    with pytest.raises(LayerError, match="not valid gzip data"):
        apply_layer(io.BytesIO(b"\x1f\x8b" + b"not gzip at all" * 40), tmp_path)


def test_truncated_gzip_is_a_layer_error(tmp_path: Path) -> None:
    import gzip

    from tests.fixtures.hostile_tars import Member, build_tar

    blob = gzip.compress(build_tar([Member("f", content=b"x" * 5000)]))
    with pytest.raises(LayerError, match="not valid gzip data"):
        apply_layer(io.BytesIO(blob[: len(blob) // 2]), tmp_path)


def test_bytes_that_are_no_tar_are_a_layer_error(tmp_path: Path) -> None:
    with pytest.raises(LayerError, match="not a valid tar stream"):
        apply_layer(io.BytesIO(b"plain text, not a tar" * 100), tmp_path)


def test_hardlink_to_missing_or_directory_is_refused(tmp_path: Path) -> None:
    import tarfile

    from tests.fixtures.hostile_tars import Member, build_tar

    (tmp_path / "dir").mkdir()
    for target, reason in (("missing", "does not exist"), ("dir", "hardlink to directory")):
        tar = build_tar([Member("link", tarfile.LNKTYPE, linkname=target)])
        with pytest.raises(LayerError, match=reason):
            apply_layer(io.BytesIO(tar), tmp_path)
