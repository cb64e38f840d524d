"""An overlay unmounted at once, the kernel's teardown of it left to a child process."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from builder.errors import RuntimeSetupError
from builder.exec import teardown
from builder.exec.deferred import deferring, wait_for_unmounts
from builder.exec.overlay import OverlayMount, is_mounted
from tests.conftest import require_root


def _lower(tmp_path: Path, files: int = 50) -> Path:
    lower = tmp_path / "lower"
    (lower / "dir").mkdir(parents=True)
    for index in range(files):
        (lower / "dir" / f"f{index}").write_text(f"{index}\n")
    return lower


def _mount(tmp_path: Path) -> tuple[OverlayMount, Path]:
    target = tmp_path / "merged"
    mounted = OverlayMount([_lower(tmp_path)], tmp_path / "upper", tmp_path / "work", target).__enter__()
    return mounted, target


def test_detached_mount_is_gone_at_once_and_its_teardown_is_the_childs(tmp_path: Path) -> None:
    require_root("mounts overlayfs")
    _, target = _mount(tmp_path)
    assert len(os.listdir(target / "dir")) == 50  # inodes for the kernel to drop
    (target / "new").write_text("kept\n")

    ending = teardown.detach(target)

    assert ending is not None
    assert not is_mounted(target)
    target.rmdir()  # the mount point is free at once
    assert (tmp_path / "upper" / "new").read_text() == "kept\n"  # the changes stay readable
    ending.wait()
    assert ending.done()
    with pytest.raises(ChildProcessError):
        os.waitpid(ending.pid, os.WNOHANG)  # collected


def test_without_cat_the_unmount_is_done_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require_root("mounts overlayfs")
    monkeypatch.setattr(teardown, "_cat", lambda: None)
    _, target = _mount(tmp_path)
    assert teardown.detach(target) is None
    assert not is_mounted(target)


def test_a_child_that_cannot_start_leaves_the_teardown_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_root("mounts overlayfs")
    monkeypatch.setattr(teardown, "_cat", lambda: str(tmp_path / "no-such-program"))
    _, target = _mount(tmp_path)
    assert teardown.detach(target) is None
    assert not is_mounted(target)


def test_what_is_not_mounted_is_an_error(tmp_path: Path) -> None:
    require_root("unmounts")
    with pytest.raises(RuntimeSetupError, match="cannot unmount"):
        teardown.detach(tmp_path)


def test_a_build_hands_the_teardown_over_and_the_next_mount_waits_for_it(tmp_path: Path) -> None:
    require_root("mounts overlayfs")
    removed: list[str] = []
    with deferring():
        mounted, target = _mount(tmp_path)
        os.listdir(target / "dir")
        assert mounted.close_later(lambda: removed.append("step dir"))
        wait_for_unmounts()  # as the next mount does
        assert removed == ["step dir"]
        assert not is_mounted(target)
        assert not (tmp_path / "work").exists()
