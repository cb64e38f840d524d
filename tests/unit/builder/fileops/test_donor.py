"""DonorLayer on plain directories: what it claims, and how it links (or falls back)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from builder.fileops.donor import DonorLayer
from builder.layers.layerindex import FileKey, file_key

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


def _donor(
    layout: dict[str, Path],
    unchanged: tuple[str, ...] = ("app/a.txt",),
    index: dict[bytes, tuple[int, int, FileKey]] | None = None,
) -> DonorLayer:
    return DonorLayer(
        layout["donor"], unchanged, dest_root=layout["merged"], upper=layout["upper"], index=index
    )


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


def _claim_direct(donor: DonorLayer, layout: dict[str, Path], name: str = "a.txt") -> bool:
    """Claim ``app/<name>`` written straight into the upper dir, as below a new directory."""
    source = layout["context"] / "app" / name
    return donor.claim(
        f"app/{name}",
        str(source),
        f"{layout['upper']}/app/{name}",
        os.lstat(source),
        mode=0o644,
        owner=None,
        copy_file=_copy,
    )


def test_a_file_written_into_the_upper_dir_is_linked_at_once(layout: dict[str, Path]) -> None:
    donor = _donor(layout)
    assert _claim_direct(donor, layout)
    assert (donor.linked, donor.claimed) == (1, 1)
    linked = os.lstat(layout["upper"] / "app/a.txt")
    assert linked.st_ino == os.lstat(layout["donor"] / "app/a.txt").st_ino


def test_extended_attributes_on_either_side_stop_a_claim(layout: dict[str, Path]) -> None:
    os.setxattr(layout["donor"] / "app/a.txt", "user.origin", b"donor")
    assert not _claim_direct(_donor(layout), layout)
    os.removexattr(layout["donor"] / "app/a.txt", "user.origin")
    os.setxattr(layout["context"] / "app/a.txt", "user.origin", b"context")
    assert not _claim_direct(_donor(layout), layout)
    os.removexattr(layout["context"] / "app/a.txt", "user.origin")
    assert _claim_direct(_donor(layout), layout)


def test_two_files_never_take_one_donor_inode(layout: dict[str, Path]) -> None:
    os.link(layout["donor"] / "app/a.txt", layout["donor"] / "app/b.txt")
    shutil.copy2(layout["context"] / "app/a.txt", layout["context"] / "app/b.txt")
    donor = _donor(layout, unchanged=("app/a.txt", "app/b.txt"))
    assert _claim_direct(donor, layout, "a.txt")
    assert not _claim_direct(donor, layout, "b.txt")
    assert donor.linked == 1


def test_a_directory_is_judged_at_its_first_claim(layout: dict[str, Path]) -> None:
    for name in ("donor", "context"):
        (layout[name] / "lib").mkdir()
        (layout[name] / "lib/a.txt").write_text("alpha\n")
        os.chmod(layout[name] / "lib/a.txt", 0o644)
        os.utime(layout[name] / "lib/a.txt", ns=(MTIME_NS, MTIME_NS))
    donor = _donor(layout, unchanged=("lib/a.txt",))
    source = layout["context"] / "lib/a.txt"

    def claim(name: str = "lib/a.txt") -> bool:
        return donor.claim(
            name, source, layout["merged"] / name, os.lstat(source), mode=0o644, owner=None, copy_file=_copy
        )

    # A claim refused before the directory is looked at (a changed file) does not settle it...
    assert not claim("lib/changed")
    (layout["upper"] / "lib").mkdir()  # ...so the overlay copying it up meanwhile counts
    assert claim()
    # Once judged, it stays judged for this copy.
    donor = _donor(layout, unchanged=("lib/a.txt",))
    (layout["upper"] / "lib").rmdir()
    assert not claim()
    (layout["upper"] / "lib").mkdir()
    assert not claim()


def test_a_symlink_on_the_way_into_the_donor_stops_a_claim(layout: dict[str, Path]) -> None:
    os.rename(layout["donor"] / "app", layout["donor"] / "real")
    os.symlink("real", layout["donor"] / "app")
    assert not _claim_direct(_donor(layout), layout)


def _indexed_donor(layout: dict[str, Path], **changes: int) -> DonorLayer:
    """A donor with an index entry for app/a.txt (as its layer writer recorded it)."""
    found = os.lstat(layout["donor"] / "app/a.txt")
    key = file_key(found)
    fields = {"size": 2, "mtime_ns": 3, "mode": 4}
    changed = tuple(changes.get(name, key[index]) for name, index in fields.items())
    key = (*key[:2], *changed, *key[5:])
    return _donor(layout, index={b"app/a.txt": (0, 1024, key)})


def test_an_indexed_donor_file_is_judged_by_its_index_entry(layout: dict[str, Path]) -> None:
    # The index, not the file, speaks for the donor: xattrs on the donor file are not looked
    # at (an index holds only files written without any, and snapshots never change).
    os.setxattr(layout["donor"] / "app/a.txt", "user.origin", b"donor")
    assert _claim_direct(_indexed_donor(layout), layout)
    os.unlink(layout["upper"] / "app/a.txt")
    assert not _claim_direct(_indexed_donor(layout, size=99), layout)
    assert not _claim_direct(_indexed_donor(layout, mtime_ns=MTIME_NS + 1), layout)
    assert not _claim_direct(_indexed_donor(layout, mode=0o100600), layout)
    # Still looked at on the source's side.
    os.setxattr(layout["context"] / "app/a.txt", "user.origin", b"context")
    assert not _claim_direct(_indexed_donor(layout), layout)


def test_a_file_missing_from_the_index_is_looked_at(layout: dict[str, Path]) -> None:
    os.setxattr(layout["donor"] / "app/a.txt", "user.origin", b"donor")
    assert not _claim_direct(_donor(layout, index={}), layout)


def test_in_place_a_matching_indexed_file_is_kept_and_an_unindexed_one_is_not(
    layout: dict[str, Path],
) -> None:
    """With the donor's tree as the upper dir, a claim leaves the file where it is; without
    an index entry saying what is there, the copier writes it again."""
    shutil.copytree(layout["donor"], layout["upper"], dirs_exist_ok=True)
    kept = layout["upper"] / "app/a.txt"
    index = {b"app/a.txt": (0, 0, file_key(os.lstat(kept)))}
    donor = DonorLayer(
        layout["upper"],
        ("app/a.txt",),
        dest_root=layout["merged"],
        upper=layout["upper"],
        index=index,
        in_place=True,
    )
    inode = os.lstat(kept).st_ino
    assert _claim(donor, layout)
    assert (donor.kept, donor.claimed, os.lstat(kept).st_ino) == (1, 1, inode)
    unindexed = DonorLayer(
        layout["upper"],
        ("app/a.txt",),
        dest_root=layout["merged"],
        upper=layout["upper"],
        index={},
        in_place=True,
    )
    assert not _claim(unindexed, layout)


def test_in_place_a_replaced_file_of_the_tree_outlives_the_step(
    layout: dict[str, Path], tmp_path: Path
) -> None:
    """Its inode stays taken, so the file written in its place cannot get its number."""
    shutil.copytree(layout["donor"], layout["upper"], dirs_exist_ok=True)
    old = os.lstat(layout["upper"] / "app/a.txt")
    donor = DonorLayer(
        layout["upper"],
        (),
        dest_root=layout["upper"],
        upper=layout["upper"],
        in_place=True,
        graveyard=tmp_path / "replaced",
    )
    donor.replacing(str(layout["upper"] / "app/a.txt"))
    os.unlink(layout["upper"] / "app/a.txt")
    (layout["upper"] / "app/a.txt").write_text("new\n")
    assert os.lstat(tmp_path / "replaced/0").st_ino == old.st_ino
    assert os.lstat(layout["upper"] / "app/a.txt").st_ino != old.st_ino


@pytest.mark.parametrize("added", [False, True])
def test_restamping_keeps_the_times_of_directories_with_the_same_entries_and_gives_now_to_others(
    layout: dict[str, Path], tmp_path: Path, added: bool
) -> None:
    """usr is the base's, copied up with its time; usr/app and usr/app/new were made by the
    previous copy (their times are its); below the item the copier set the times. The
    re-run rewrites a file in usr/app/new (the kernel stamps it), and adds one or not."""
    upper, lower = layout["upper"], tmp_path / "lower"
    (lower / "usr").mkdir(parents=True)
    (upper / "usr/app/new/sub").mkdir(parents=True)
    (upper / "usr/app/new/kept.txt").write_text("old\n")
    old = 1_500_000_000_000_000_000
    for path in (
        lower / "usr",
        upper / "usr",
        upper / "usr/app",
        upper / "usr/app/new",
        upper / "usr/app/new/sub",
    ):
        os.utime(path, ns=(old, old))
    donor = DonorLayer(upper, (), dest_root=layout["merged"], upper=upper, in_place=True)
    donor.note_item(layout["merged"] / "usr/app/new")
    os.unlink(upper / "usr/app/new/kept.txt")
    (upper / "usr/app/new/kept.txt").write_text("new\n")
    if added:
        (upper / "usr/app/new/added.txt").write_text("added\n")
    donor.restamp_items(lower)
    times = {
        path: os.lstat(upper / path).st_mtime_ns
        for path in ("usr", "usr/app", "usr/app/new", "usr/app/new/sub")
    }
    assert times["usr"] == old and times["usr/app"] == old and times["usr/app/new/sub"] == old
    assert times["usr/app/new"] == (donor.now_ns if added else old)
