"""Mount-point stubs are removed only when the runtime's empty placeholder is all there is."""

from __future__ import annotations

import os
from pathlib import Path

from builder.exec.stubs import missing_mount_points, remove_mount_stubs


def test_missing_destinations_and_parents_deepest_first(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "hosts").write_text("127.0.0.1 localhost\n")
    missing = missing_mount_points(tmp_path, ["/etc/hosts", "/etc/resolv.conf", "/run/a/b", "/run/c"])
    assert [str(path.relative_to(tmp_path)) for path in missing] == [
        "run/a/b",
        "etc/resolv.conf",
        "run/a",
        "run/c",
        "run",
    ]


def test_missing_destination_under_symlinked_dir_stays_in_root(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to("/real")
    assert missing_mount_points(tmp_path, ["/link/hosts"]) == [tmp_path / "real" / "hosts"]


def test_empty_stubs_removed_and_parent_times_restored(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    stubs = missing_mount_points(tmp_path, ["/etc/hosts", "/mnt/cache"])
    os.utime(etc, ns=(1_000_000_000, 2_000_000_000))
    (etc / "hosts").touch()
    (tmp_path / "mnt" / "cache").mkdir(parents=True)
    os.utime(etc, ns=(1_000_000_000, 2_000_000_000))
    removed = remove_mount_stubs(stubs)
    assert sorted(str(path.relative_to(tmp_path)) for path in removed) == ["etc/hosts", "mnt", "mnt/cache"]
    assert sorted(os.listdir(tmp_path)) == ["etc"]
    assert os.stat(etc).st_mtime_ns == 2_000_000_000


def test_stubs_the_step_filled_are_kept(tmp_path: Path) -> None:
    stubs = missing_mount_points(tmp_path, ["/etc/hosts", "/mnt/cache"])
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "hosts").write_text("written by the step\n")
    (tmp_path / "mnt" / "cache").mkdir(parents=True)
    (tmp_path / "mnt" / "cache" / "file").write_text("x")
    assert remove_mount_stubs(stubs) == []
    assert (tmp_path / "etc" / "hosts").read_text() == "written by the step\n"
    assert (tmp_path / "mnt" / "cache" / "file").exists()
