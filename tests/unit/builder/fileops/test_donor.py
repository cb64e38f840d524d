"""DonorLayer on plain directories: what it claims, and how it links (or falls back)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from builder.fileops.donor import DonorLayer

MTIME_NS = 1_600_000_000_000_000_000


@pytest.fixture
def layout(tmp_path: Path) -> dict[str, Path]:
    """A donor snapshot holding app/a.txt, a source file like it, and an empty step."""
    paths = {name: tmp_path / name for name in ("donor", "merged", "upper", "context")}
    for name, root in paths.items():
        (root / "app").mkdir(parents=True)
        if name in ("donor", "context"):
            (root / "app/a.txt").write_text("alpha\n")
            os.chmod(root / "app/a.txt", 0o644)
            os.utime(root / "app/a.txt", ns=(MTIME_NS, MTIME_NS))
    return paths


def _donor(layout: dict[str, Path], unchanged: tuple[str, ...] = ("app/a.txt",)) -> DonorLayer:
    return DonorLayer(layout["donor"], unchanged, dest_root=layout["merged"], upper=layout["upper"])


def _copy(source: Path, target: Path, info: os.stat_result) -> None:
    shutil.copyfile(source, target)


def _claim(donor: DonorLayer, layout: dict[str, Path], *, mode: int = 0o644) -> bool:
    source = layout["context"] / "app/a.txt"
    return donor.claim(
        "app/a.txt",
        source,
        layout["merged"] / "app/a.txt",
        os.lstat(source),
        mode=mode,
        owner=None,
        copy_file=_copy,
    )


def test_a_matching_file_is_linked_into_the_upper_dir_keeping_its_directory_times(
    layout: dict[str, Path],
) -> None:
    os.utime(layout["upper"] / "app", ns=(MTIME_NS, MTIME_NS))
    donor = _donor(layout)
    assert _claim(donor, layout)
    assert donor.claimed == 1
    donor.link_claimed()
    linked = os.lstat(layout["upper"] / "app/a.txt")
    assert linked.st_ino == os.lstat(layout["donor"] / "app/a.txt").st_ino
    assert os.lstat(layout["upper"] / "app").st_mtime_ns == MTIME_NS


def test_what_differs_is_not_claimed(layout: dict[str, Path]) -> None:
    assert not _claim(_donor(layout, unchanged=()), layout)  # its entry digest changed
    assert not _claim(_donor(layout), layout, mode=0o600)  # --chmod gives another mode
    os.utime(layout["donor"] / "app/a.txt", ns=(MTIME_NS + 1, MTIME_NS + 1))
    assert not _claim(_donor(layout), layout)  # another modification time


def test_a_donor_gone_before_linking_is_copied_and_a_whiteout_replaced(layout: dict[str, Path]) -> None:
    donor = _donor(layout)
    assert _claim(donor, layout)
    (layout["donor"] / "app/a.txt").unlink()  # a concurrent prune
    (layout["upper"] / "app/a.txt").write_text("")  # stands for the whiteout left behind
    donor.link_claimed()
    assert (layout["upper"] / "app/a.txt").read_text() == "alpha\n"


def test_a_released_claim_is_not_linked(layout: dict[str, Path]) -> None:
    donor = _donor(layout)
    assert _claim(donor, layout)
    donor.release(layout["merged"] / "app/a.txt")
    donor.link_claimed()
    assert not (layout["upper"] / "app/a.txt").exists()
