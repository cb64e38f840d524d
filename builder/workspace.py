"""Scratch directories for one step, and read-only views of an image's filesystem.

A step works in ``<store>/containers/<id>/`` (upper, work and mount point), on the store's
filesystem so that its upper dir can be renamed into ``snapshots/`` when the layer is kept.
Whatever happens, leaving the ``with`` block removes what is left of it (during a build, on
a thread of its own: :mod:`builder.exec.deferred`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from builder.exec.deferred import later
from builder.exec.overlay import OverlayMount
from builder.lazyclasses import dataclass
from builder.leftovers import STEP_DIR_PREFIX


@dataclass(frozen=True)
class StepWorkspace:
    """The directories of one step: ``upper`` collects its changes."""

    directory: Path

    @property
    def upper(self) -> Path:
        return self.directory / "upper"

    @property
    def work(self) -> Path:
        return self.directory / "work"

    @property
    def merged(self) -> Path:
        return self.directory / "merged"

    def empty_upper(self) -> None:
        """Start the step over: an empty upper dir and no overlay work dir (nothing mounted)."""
        for directory in (self.upper, self.work):
            shutil.rmtree(directory, ignore_errors=True)
        self.upper.mkdir()


@contextmanager
def step_workspace(containers_dir: Path) -> Iterator[StepWorkspace]:
    """A fresh workspace under ``containers_dir``, removed on exit (the upper dir too,
    unless it was moved away meanwhile)."""
    # Named after this process, like run_step's scratch dirs, so a later kiln can tell a dead
    # build's leftovers from a running one's (:mod:`builder.leftovers`).
    directory = containers_dir / f"{STEP_DIR_PREFIX}{os.getpid()}-{os.urandom(8).hex()}"  # (no uuid import)
    directory.mkdir(parents=True)
    workspace = StepWorkspace(directory)
    workspace.upper.mkdir()
    try:
        yield workspace
    finally:
        _remove(directory)


def _remove(directory: Path) -> None:
    if not later(lambda: shutil.rmtree(directory, ignore_errors=True)):
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def rootfs_view(snapshot_dirs: Sequence[Path], containers_dir: Path) -> Iterator[Path]:
    """A directory showing the filesystem of a stack of snapshots (bottom first).

    No layer gives an empty directory and one layer its snapshot itself (a bottom layer has
    no whiteouts to hide); more are merged by an overlay whose upper dir is thrown away, so
    nothing read through the view can change a snapshot.
    """
    if len(snapshot_dirs) == 1:
        yield snapshot_dirs[0]
        return
    with step_workspace(containers_dir) as workspace:
        if not snapshot_dirs:
            workspace.merged.mkdir()
            yield workspace.merged
            return
        with OverlayMount(snapshot_dirs, workspace.upper, workspace.work, workspace.merged):
            yield workspace.merged
