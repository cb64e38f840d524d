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

import errno
import os
import stat
from dataclasses import field
from pathlib import Path

from builder.errors import BuildError
from builder.fileops.chmod import ModeChange
from builder.fileops.donor import DonorLayer
from builder.fileops.sources import PathFilter, SourceTree
from builder.lazyclasses import dataclass
from builder.rootpath import is_within

CAN_CHOWN = os.geteuid() == 0
#: A path as text or as a ``Path``: the per-entry work uses text, callers may pass either.
StrPath = os.PathLike[str] | str
#: How a copied file is created: never over an existing entry, never through a symlink.
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


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
    #: The upper dir of the overlay mounted at ``dest_root``, when there is one. A directory
    #: this copy makes there is the upper dir's alone (nothing of the lower layers shows
    #: through a new directory), so everything below it is written into the upper dir
    #: directly: creating a file through the overlay costs ~100 us, several times what it
    #: costs on the filesystem below. Those entries are never read back through the mount,
    #: which is unmounted after the copy; the upper dir is the layer.
    upper_root: Path | None = None
    #: Where each hard-linked source inode was first copied to.
    _links: dict[tuple[int, int], str] = field(default_factory=dict)

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
            if self.rules.chown is not None and CAN_CHOWN:
                os.lchown(directory, *self.rules.chown)
            return
        if not stat.S_ISDIR(info.st_mode):
            raise BuildError(f"cannot create directory {self._shown(directory)}: not a directory")

    def copy(
        self,
        source: StrPath,
        rel: str,
        target: StrPath,
        info: os.stat_result,
        *,
        nested: bool,
        fresh: bool = False,
    ) -> None:
        """Copy ``source`` (met as ``rel`` below the copied item) to ``target``.

        ``nested`` is false only for the item a COPY names: an existing directory there
        keeps its metadata. ``fresh`` says ``target`` is known to be absent (its parent was
        made by this copy), which spares a lookup.
        """
        self._copy(os.fspath(source), rel, os.fspath(target), info, nested=nested, fresh=fresh)

    def _copy(
        self, source: str, rel: str, target: str, info: os.stat_result, *, nested: bool, fresh: bool
    ) -> None:
        """:meth:`copy` on path texts. Per entry, joined as text: in a copy of 20,000 files,
        building a ``Path`` for each source and target costs more than linking the file."""
        if rel and self.rules.exclude(rel):
            if not (stat.S_ISDIR(info.st_mode) and self.rules.exclude_keep_dir(rel)):
                return
        mode = info.st_mode
        donor = self.donor
        if donor is not None and not nested:
            donor.note_item(target)
        if donor is not None and not fresh:
            donor.release(target)
        if stat.S_ISDIR(mode):
            created = self._copy_dir(source, rel, target, fresh=fresh)
            if created or nested:
                self.apply_metadata(source, target, info)
            return
        in_place = donor is not None and donor.in_place
        if in_place and stat.S_ISREG(mode) and not fresh and self._claim(source, rel, target, info):
            return  # already there: the upper dir is the donor's tree
        if not fresh:
            self._clear_for_file(target)
        if (
            not in_place
            and stat.S_ISREG(mode)
            and donor is not None
            and self._claim(source, rel, target, info)
        ):
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

    def _copy_dir(self, source: str, rel: str, target: str, *, fresh: bool) -> bool:
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
                self._conflict()
                raise BuildError(f"cannot copy to non-directory: {self._shown(target)}")
        source_prefix = _as_prefix(source)
        target_prefix = _as_prefix(self._direct(target) if created else target)
        rel_prefix = f"{rel}/" if rel else ""
        for name, child_info in self.tree.entries(source):
            self._copy(
                source_prefix + name,
                rel_prefix + name,
                target_prefix + name,
                child_info,
                nested=True,
                fresh=created,
            )
        return created

    def _same_side(self, path: str, like: str) -> str:
        """``path`` as seen from the side ``like`` is on. Below a directory this copy made,
        files are written into the upper dir, elsewhere through the mount, and a hard link
        cannot cross from one to the other; a file written either way is in the upper dir,
        and shows through the mount."""
        if self.upper_root is None:
            return path
        upper, mount = f"{self.upper_root}/", f"{self.dest_root}/"
        if like.startswith(upper) and path.startswith(mount):
            return os.path.join(self.upper_root, path[len(mount) :])
        if like.startswith(mount) and path.startswith(upper):
            return os.path.join(self.dest_root, path[len(upper) :])
        return path

    def _direct(self, directory: str) -> str:
        """Where to write below a directory this copy just made: its path in the upper dir
        when it was made through the overlay mount, else itself."""
        if self.upper_root is None:
            return directory
        root = str(self.dest_root)
        if not directory.startswith(root + "/"):
            return directory  # already below the upper dir, or the root itself
        return os.path.join(self.upper_root, directory[len(root) + 1 :])

    def _claim(self, source: str, rel: str, target: str, info: os.stat_result) -> bool:
        """Leave ``target`` to be linked from the donor layer when it holds the same file."""
        if self.donor is None:
            return False
        item = self.item_name
        name = (rel or item) if item in ("", ".") else (f"{item}/{rel}" if rel else item)
        mode = stat.S_IMODE(info.st_mode)
        if self.rules.mode_change is not None:
            mode = self.rules.mode_change.apply(mode, is_dir=False)
        owner = self.owner(info) if CAN_CHOWN else None
        return self.donor.claim(
            name, source, target, info, mode=mode, owner=owner, copy_file=self._copy_with_metadata
        )

    def _copy_with_metadata(self, source: str, target: str, info: os.stat_result) -> None:
        self._copy_file(source, target, info)
        self.apply_metadata(source, target, info)

    def owner(self, info: os.stat_result) -> tuple[int, int]:
        return self.rules.chown or self.rules.source_owner or (info.st_uid, info.st_gid)

    def _clear_for_file(self, target: str) -> None:
        try:
            existing = os.lstat(target)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(existing.st_mode):
            self._conflict()
            raise BuildError(f"cannot replace to directory {self._shown(target)} with file")
        if self.donor is not None:
            self.donor.replacing(target)
        os.unlink(target)

    def _conflict(self) -> None:
        """An entry of another type is in the way: when the upper dir is a donor's tree it may
        be the donor's, so the step starts over without it (:class:`DonorConflictError`)."""
        if self.donor is not None and self.donor.in_place:
            from builder.fileops.donor import DonorConflictError

            raise DonorConflictError

    def _copy_file(self, source: str, target: str, info: os.stat_result) -> None:
        key = (info.st_dev, info.st_ino)
        if info.st_nlink > 1 and key in self._links:
            os.link(self._same_side(self._links[key], target), target)
            return
        source_fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            target_fd = os.open(target, _NEW_FILE, 0o600)
            try:
                _copy_content(source_fd, target_fd)
            finally:
                os.close(target_fd)
        finally:
            os.close(source_fd)
        if info.st_nlink > 1:
            self._links[key] = target

    def apply_metadata(self, source: StrPath, target: StrPath, info: os.stat_result) -> None:
        """Owner, mode (or ``--chmod``), xattrs and times of ``source`` onto ``target``."""
        is_link = stat.S_ISLNK(info.st_mode)
        owner = self.owner(info)
        if CAN_CHOWN:
            os.lchown(target, *owner)
        if not is_link:
            mode = stat.S_IMODE(info.st_mode)
            if self.rules.mode_change is not None:
                mode = self.rules.mode_change.apply(mode, is_dir=stat.S_ISDIR(info.st_mode))
            os.chmod(target, mode)
            _copy_xattrs(source, target)
        os.utime(target, ns=(info.st_atime_ns, info.st_mtime_ns), follow_symlinks=False)

    def _shown(self, path: StrPath, root: StrPath | None = None) -> str:
        if root is None and self.upper_root is not None and os.fspath(path).startswith(f"{self.upper_root}/"):
            root = self.upper_root
        return "/" + os.path.relpath(path, root or self.dest_root).removeprefix(".")


def _as_prefix(directory: str) -> str:
    """``directory`` ready to have an entry's name appended."""
    return directory if directory.endswith("/") else directory + "/"


def _copy_content(source_fd: int, target_fd: int) -> None:
    """Copy a whole file inside the kernel (``sendfile``; several times faster than reading
    into Python and writing back, for the hundreds of megabytes a large COPY moves), with a
    plain read/write loop where the kernel refuses."""
    try:
        while os.sendfile(target_fd, source_fd, None, 1 << 30):
            pass
        return
    except OSError as err:
        if err.errno not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise
    os.lseek(source_fd, 0, os.SEEK_SET)
    os.lseek(target_fd, 0, os.SEEK_SET)
    os.ftruncate(target_fd, 0)
    while chunk := os.read(source_fd, 1 << 20):
        view = memoryview(chunk)
        while view:
            view = view[os.write(target_fd, view) :]


def _copy_xattrs(source: StrPath, target: StrPath) -> None:
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
