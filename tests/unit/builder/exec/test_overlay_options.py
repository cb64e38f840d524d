"""Overlay mount options: ordering, escaping and the one-page limit (no mount made here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.errors import RuntimeSetupError
from builder.exec import overlay


def test_options_name_lowers_top_first_as_given_then_upper_and_work() -> None:
    options = overlay._options(["/s/top", "/s/base"], Path("/c/upper"), Path("/c/work"), volatile=True)
    assert options == "lowerdir=/s/top:/s/base,upperdir=/c/upper,workdir=/c/work,index=off,volatile"


def test_colons_escaped_and_commas_refused() -> None:
    assert overlay._escape(Path("/s/a:b")) == "/s/a\\:b"
    with pytest.raises(RuntimeSetupError, match="holds a comma"):
        overlay._escape(Path("/s/a,b"))


def test_fits_in_one_page() -> None:
    upper, work = Path("/c/upper"), Path("/c/work")
    short = [f"/proc/self/fd/{number}" for number in range(100, 300)]
    long = [f"/var/lib/kiln/snapshots/sha256:{number:064d}" for number in range(100)]
    assert overlay._fits(short, upper, work)
    assert not overlay._fits(long, upper, work)


def test_too_many_lowers_for_overlayfs_is_refused(tmp_path: Path) -> None:
    lowers = [tmp_path / f"l{index}" for index in range(overlay.MAX_LOWER_DIRS + 1)]
    with pytest.raises(RuntimeSetupError, match="overlayfs stacks at most 500"):
        overlay._mount_from_symlink_farm(lowers, tmp_path / "upper", tmp_path / "work", tmp_path / "merged")


def test_scratch_target_must_be_empty(tmp_path: Path) -> None:
    (tmp_path / "merged").mkdir()
    (tmp_path / "merged" / "leftover").write_text("x")
    with pytest.raises(RuntimeSetupError, match="it is not empty"):
        overlay.mount_overlay([], tmp_path / "upper", tmp_path / "work", tmp_path / "merged")
