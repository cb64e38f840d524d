"""Unpacked layers: ``snapshots/<chain id hex>/``, one per distinct layer chain, shared by images.

A snapshot holds one layer's own changes in the form overlayfs wants for a lower directory:
the layer's OCI whiteouts (``.wh.name``, ``.wh..wh..opq``) become overlay whiteouts (a 0/0
character device, the ``trusted.overlay.opaque`` xattr), so stacking the chain's snapshots as
lower directories gives the image's filesystem. It is keyed by chain id, not diff id, because
what a whiteout hides depends on the layers below it. A snapshot is unpacked into a
temporary directory and renamed into place, so it is whole or absent; two processes
unpacking the same layer both succeed and one result is kept.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

from builder.durable import TEMP_PREFIX
from builder.errors import StoreError
from builder.store.blobs import BlobStore, digest_hex
from builder.store.meta import MetaStore


def chain_ids(diff_ids: Sequence[str]) -> list[str]:
    """Chain ids per the OCI image spec: ``ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln))``."""
    chains: list[str] = []
    for diff_id in diff_ids:
        if not chains:
            chains.append(diff_id)
        else:
            preimage = f"{chains[-1]} {diff_id}".encode()
            chains.append("sha256:" + hashlib.sha256(preimage).hexdigest())
    return chains


class SnapshotStore:
    """Snapshot directories under ``<root>/snapshots`` with their records in the metadata."""

    def __init__(self, root: Path, blobs: BlobStore, meta: MetaStore) -> None:
        self.directory = root / "snapshots"
        self.directory.mkdir(parents=True, exist_ok=True)
        self.blobs = blobs
        self.meta = meta

    def path(self, chain_id: str) -> Path:
        """The directory of a snapshot; hex only, as ``:`` separates overlay lower dirs."""
        return self.directory / digest_hex(chain_id)

    def has(self, chain_id: str) -> bool:
        return self.path(chain_id).is_dir() and self.meta.snapshot(chain_id) is not None

    def ensure(self, chain_id: str, parent: str, diff_id: str, blob_digest: str) -> Path:
        """The snapshot for ``chain_id``, unpacking layer blob ``blob_digest`` if not yet done."""
        target = self.path(chain_id)
        if self.has(chain_id):
            self.meta.touch_snapshot(chain_id)
            return target
        from builder.layers import apply_layer  # (tarfile and zstandard: only to unpack)

        temp_dir = self.directory / f"{TEMP_PREFIX}{os.getpid()}-{os.urandom(8).hex()}"
        temp_dir.mkdir(mode=0o755)
        try:
            with self.blobs.open(blob_digest) as stream:
                apply_layer(stream, temp_dir, whiteout_format="overlay", diff_id=diff_id)
            size = _tree_size(temp_dir)
            try:
                os.rename(temp_dir, target)
            except OSError:
                if not target.is_dir():
                    raise
                # Another process finished the same snapshot first: keep theirs.
                _remove_tree(temp_dir)
        except BaseException:
            _remove_tree(temp_dir)
            raise
        else:
            self.meta.add_snapshot(chain_id, parent, diff_id, size)
        return target

    def adopt(
        self,
        directory: Path,
        chain_id: str,
        parent: str,
        diff_id: str,
        *,
        size: int | None = None,
        remove_if_stored: bool = True,
    ) -> Path:
        """Take a directory already in snapshot form (a step's overlay upper dir) as the
        snapshot ``chain_id``, by rename: a build never unpacks the layer it just wrote.

        ``directory`` must be on the store's filesystem. When the snapshot exists already
        (another build made the same layer), theirs is kept and the directory removed
        (unless not ``remove_if_stored``: the caller removes it later). ``size`` is the
        tree's size when the caller knows it (the layer writer counts it on its walk,
        ``LayerDescriptor.content_size``); otherwise the tree is walked to measure.
        """
        target = self.path(chain_id)
        if self.has(chain_id):
            if remove_if_stored:
                _remove_tree(directory)
            self.meta.touch_snapshot(chain_id)
            return target
        if size is None:
            size = _tree_size(directory)
        try:
            os.rename(directory, target)
        except OSError:
            if not target.is_dir():
                raise
            if remove_if_stored:
                _remove_tree(directory)
        self.meta.add_snapshot(chain_id, parent, diff_id, size)
        return target

    def remove(self, chain_id: str) -> None:
        """Delete a snapshot's directory, then its record (a crash in between leaves a record
        without a directory, which :meth:`has` treats as absent)."""
        path = self.path(chain_id)
        if path.exists():
            trash = self.directory / f"{TEMP_PREFIX}{os.getpid()}-{os.urandom(8).hex()}"
            os.rename(path, trash)
            _remove_tree(trash)
        self.meta.delete_snapshot(chain_id)

    def directories(self) -> list[str]:
        """Chain ids of the snapshot directories present on disk."""
        return [
            "sha256:" + entry.name
            for entry in self.directory.iterdir()
            if not entry.name.startswith(TEMP_PREFIX) and entry.is_dir()
        ]


def directory_identity(path: Path) -> tuple[int, ...] | None:
    """A snapshot directory's device, inode and change time (``None`` when absent): a
    directory removed and made again may get the same inode number (ext4 reuses them at
    once), not the same change time."""
    try:
        found = os.lstat(path)
    except OSError:
        return None
    return (found.st_dev, found.st_ino, found.st_ctime_ns)


def _tree_size(root: Path) -> int:
    total = 0
    for directory, _subdirs, files in os.walk(root):
        for name in files:
            try:
                total += os.lstat(os.path.join(directory, name)).st_size
            except OSError as err:
                raise StoreError(f"cannot measure snapshot file {name}: {err}") from err
    return total


def _remove_tree(directory: Path) -> None:
    """``shutil.rmtree`` ignoring errors, with ``shutil`` loaded only when a tree is removed:
    a cached build removes none, and ``shutil`` brings ``bz2``, ``lzma`` and ``zlib``."""
    import shutil

    shutil.rmtree(directory, ignore_errors=True)
