"""Writing copied entries into a destination root, with BuildKit's copier rules.

The rules (``tonistiigi/fsutil`` ``copy``, which BuildKit's file ops use):

* a file replaces whatever non-directory is at its target, never a directory;
* a directory merges into an existing directory, never into a symlink or a file;
* every copied entry takes the source's mode (or ``--chmod``), times and xattrs, and the
  ``--chown`` owner, else the source's own; the one exception is the top directory of a
  copy when it already exists: its metadata is left alone (``copy-permissions``);
* missing parent directories are made ``0755``, owned by ``--chown`` when given;
* hard links between copied files stay hard links; symlinks are copied as symlinks.

Entries are written below a target that the caller resolved inside the root; below it the
writer never follows a symlink (it checks with ``lstat`` and opens with ``O_NOFOLLOW``).
Ownership is only applied when kiln runs as root: a rootless build cannot chown, and a
user namespace maps its own files to root anyway.
"""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import field
from pathlib import Path

from builder.errors import BuildError
from builder.fileops.chmod import ModeChange
from builder.fileops.donor import DonorLayer
from builder.fileops.sources import PathFilter, SourceTree
from builder.lazyclasses import dataclass
from builder.rootpath import is_within

_CAN_CHOWN = os.geteuid() == 0


def _never(_: str) -> bool:
    return False


@dataclass
class CopyRules:
    """How one copy treats metadata and which entries it leaves out.

    ``chown`` is ``--chown`` resolved; ``source_owner`` overrides the owner read from the
    source when there is no ``--chown`` (the build context is always ``0:0``).
    ``exclude``/``exclude_keep_dir`` are ``--exclude`` over paths below the copied item.
    """

    chown: tuple[int, int] | None = None
    source_owner: tuple[int, int] | None = None
    mode_change: ModeChange | None = None
    exclude: PathFilter = _never
    exclude_keep_dir: PathFilter = _never


@dataclass
class TreeWriter:
    """Copies items of one source tree under ``dest_root``; one per copied source path."""

    dest_root: Path
    tree: SourceTree
    rules: CopyRules
    #: The previous layer of this COPY step, whose unchanged files are linked, not copied.
    donor: DonorLayer | None = None
    #: The copied item's name as the context digest names it ("." for the context root),
    #: which with the path below the item names a file in the donor's selection.
    item_name: str = "."
    _links: dict[tuple[int, int], Path] = field(default_factory=dict)

    def make_dirs(self, directory: Path) -> None:
        """``mkdir -p`` of a path already resolved inside the root (parents ``0755``)."""
        if not is_within(self.dest_root, directory) or directory == self.dest_root:
            return
        self.make_dirs(directory.parent)
        try:
            info = os.lstat(directory)
        except FileNotFoundError:
            os.mkdir(directory, 0o755)
            os.chmod(directory, 0o755)
            if self.rules.chown is not None and _CAN_CHOWN:
                os.lchown(directory, *self.rules.chown)
            return
        if not stat.S_ISDIR(info.st_mode):
            raise BuildError(f"cannot create directory {self._shown(directory)}: not a directory")

    def copy(
        self, source: Path, rel: str, target: Path, info: os.stat_result, *, nested: bool, fresh: bool = False
    ) -> None:
        """Copy ``source`` (met as ``rel`` below the copied item) to ``target``.

        ``nested`` is false only for the item a COPY names: an existing directory there
        keeps its metadata.
        """
        if rel and self.rules.exclude(rel):
            if not (stat.S_ISDIR(info.st_mode) and self.rules.exclude_keep_dir(rel)):
                return
        mode = info.st_mode
        if self.donor is not None and not fresh:
            self.donor.release(target)
        if stat.S_ISDIR(mode):
            created = self._copy_dir(source, rel, target, info, fresh=fresh)
            if created or nested:
                self.apply_metadata(source, target, info)
            return
        if not fresh:
            self._clear_for_file(target)
        if stat.S_ISREG(mode) and self.donor is not None and self._claim(source, rel, target, info):
            return
        if stat.S_ISREG(mode):
            self._copy_file(source, target, info)
        elif stat.S_ISLNK(mode):
            os.symlink(os.readlink(source), target)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            os.mknod(target, mode, info.st_rdev)
        elif stat.S_ISFIFO(mode):
            os.mkfifo(target)
        else:
            raise BuildError(f"cannot copy {self._shown(source, self.tree.root)}: unsupported file type")
        self.apply_metadata(source, target, info)

    def _copy_dir(self, source: Path, rel: str, target: Path, info: os.stat_result, *, fresh: bool) -> bool:
        """Copy a directory's entries; ``fresh`` says ``target`` is known to be absent (its
        parent was made by this copy), which spares a lookup per entry below it."""
        created = False
        try:
            if fresh:
                raise FileNotFoundError
            existing = os.lstat(target)
        except FileNotFoundError:
            os.mkdir(target, 0o700)  # its real mode is set once its children are written
            created = True
        else:
            if not stat.S_ISDIR(existing.st_mode):
                raise BuildError(f"cannot copy to non-directory: {self._shown(target)}")
        for name, child_info in self.tree.entries(source):
            child_rel = f"{rel}/{name}" if rel else name
            self.copy(source / name, child_rel, target / name, child_info, nested=True, fresh=created)
        return created

    def _claim(self, source: Path, rel: str, target: Path, info: os.stat_result) -> bool:
        """Leave ``target`` to be linked from the donor layer when it holds the same file."""
        if self.donor is None:
            return False
        item = self.item_name
        name = (rel or item) if item in ("", ".") else (f"{item}/{rel}" if rel else item)
        mode = stat.S_IMODE(info.st_mode)
        if self.rules.mode_change is not None:
            mode = self.rules.mode_change.apply(mode, is_dir=False)
        owner = self._owner(info) if _CAN_CHOWN else None
        return self.donor.claim(
            name, source, target, info, mode=mode, owner=owner, copy_file=self._copy_with_metadata
        )

    def _copy_with_metadata(self, source: Path, target: Path, info: os.stat_result) -> None:
        self._copy_file(source, target, info)
        self.apply_metadata(source, target, info)

    def _owner(self, info: os.stat_result) -> tuple[int, int]:
        return self.rules.chown or self.rules.source_owner or (info.st_uid, info.st_gid)

    def _clear_for_file(self, target: Path) -> None:
        try:
            existing = os.lstat(target)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(existing.st_mode):
            raise BuildError(f"cannot replace to directory {self._shown(target)} with file")
        os.unlink(target)

    def _copy_file(self, source: Path, target: Path, info: os.stat_result) -> None:
        key = (info.st_dev, info.st_ino)
        if info.st_nlink > 1 and key in self._links:
            os.link(self._links[key], target)
            return
        source_fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with open(source_fd, "rb") as reader:
            target_fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with open(target_fd, "wb") as writer:
                shutil.copyfileobj(reader, writer, 1 << 20)
        if info.st_nlink > 1:
            self._links[key] = target

    def apply_metadata(self, source: Path, target: Path, info: os.stat_result) -> None:
        """Owner, mode (or ``--chmod``), xattrs and times of ``source`` onto ``target``."""
        is_link = stat.S_ISLNK(info.st_mode)
        owner = self._owner(info)
        if _CAN_CHOWN:
            os.lchown(target, *owner)
        if not is_link:
            mode = stat.S_IMODE(info.st_mode)
            if self.rules.mode_change is not None:
                mode = self.rules.mode_change.apply(mode, is_dir=stat.S_ISDIR(info.st_mode))
            os.chmod(target, mode)
            _copy_xattrs(source, target)
        os.utime(target, ns=(info.st_atime_ns, info.st_mtime_ns), follow_symlinks=False)

    def _shown(self, path: Path, root: Path | None = None) -> str:
        return "/" + os.path.relpath(path, root or self.dest_root).removeprefix(".")


def _copy_xattrs(source: Path, target: Path) -> None:
    """Copy extended attributes where the filesystems allow; a refusal is not an error."""
    try:
        names = os.listxattr(source, follow_symlinks=False)
    except OSError:
        return
    for name in names:
        try:
            os.setxattr(target, name, os.getxattr(source, name, follow_symlinks=False))
        except OSError:
            continue


def copy_tree(source: Path, target: Path) -> None:
    """``cp -a`` of ``source`` to the new path ``target``, by the copier's rules.

    Owners, modes, times, xattrs, hard links and symlinks are kept; device nodes and fifos
    are recreated, never read (``shutil.copytree`` would read ``/dev/zero`` forever).
    """
    info = os.lstat(source)
    writer = TreeWriter(target.parent, SourceTree(source), CopyRules())
    writer.copy(source, "", target, info, nested=True)
