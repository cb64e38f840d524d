"""Helpers for layer tests: describe a tree exactly, and make the trees the tests write."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

TreeRow = tuple[object, ...]


def describe_tree(root: Path, *, with_dir_mtimes: bool = True) -> dict[str, TreeRow]:
    """Every path under ``root`` → (type, mode, uid, gid, mtime, detail, xattrs, inode group).

    ``detail`` is the content hash, link target or device numbers. Hardlinked files are
    reported with the sorted names sharing their inode, so a lost link shows.
    """
    rows: dict[str, TreeRow] = {}
    by_inode: dict[int, list[str]] = {}
    for directory, dirs, files in os.walk(root):
        for name in sorted(dirs + files):
            path = Path(directory) / name
            relative = str(path.relative_to(root))
            status = os.lstat(path)
            mode = status.st_mode
            if stat.S_ISREG(mode):
                kind, detail = "f", hashlib.sha256(path.read_bytes()).hexdigest()
                by_inode.setdefault(status.st_ino, []).append(relative)
            elif stat.S_ISDIR(mode):
                kind, detail = "d", ""
            elif stat.S_ISLNK(mode):
                kind, detail = "l", os.readlink(path)
            elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
                kind = "c" if stat.S_ISCHR(mode) else "b"
                detail = f"{os.major(status.st_rdev)}:{os.minor(status.st_rdev)}"
            elif stat.S_ISFIFO(mode):
                kind, detail = "p", ""
            else:
                kind, detail = "?", ""
            xattrs = tuple(
                (key, os.getxattr(path, key, follow_symlinks=False))
                for key in sorted(os.listxattr(path, follow_symlinks=False))
            )
            mtime = int(status.st_mtime) if (kind != "d" or with_dir_mtimes) else 0
            rows[relative] = (
                kind,
                oct(stat.S_IMODE(mode)),
                status.st_uid,
                status.st_gid,
                mtime,
                detail,
                xattrs,
            )
    groups = {name: tuple(sorted(names)) for names in by_inode.values() for name in names}
    return {name: (*row, groups.get(name, ())) for name, row in rows.items()}


def set_times(root: Path, mtime: int) -> None:
    """Give every path under ``root`` (links included, root last) the same mtime."""
    for directory, dirs, files in os.walk(root, topdown=False):
        for name in dirs + files:
            os.utime(Path(directory) / name, (mtime, mtime), follow_symlinks=False)
    os.utime(root, (mtime, mtime))


def make_rich_tree(root: Path) -> None:
    """Every kind of entry a layer carries: run as root (owners, devices, trusted xattrs)."""
    root.mkdir(exist_ok=True)
    (root / "etc").mkdir(mode=0o755)
    (root / "etc" / "hostname").write_text("kiln\n")
    (root / "bin").mkdir()
    tool = root / "bin" / "tool"
    tool.write_bytes(b"\x7fELF" + bytes(range(256)) * 5000)
    os.chown(tool, 0, 0)
    os.chmod(tool, 0o4755)
    os.setxattr(tool, "security.capability", b"\x01\x00\x00\x02\x00\x20\x00\x00" + b"\0" * 12)
    (root / "bin" / "alias").hardlink_to(tool)
    (root / "bin" / "sh").symlink_to("/bin/busybox")
    (root / "bin" / "relative").symlink_to("../etc/hostname")
    home = root / "home" / "user"
    home.mkdir(parents=True)
    os.chown(home, 1000, 1000)
    os.chmod(home, 0o750)
    (home / "notes").write_text("x" * 300)
    os.chown(home / "notes", 1000, 1001)
    os.setxattr(home / "notes", "user.origin", b"test")
    shared = root / "tmp"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    grouped = root / "srv"
    grouped.mkdir()
    os.chmod(grouped, 0o2775)
    os.chown(grouped, 0, 50)
    os.mknod(root / "etc" / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    os.mknod(root / "etc" / "loop", 0o660 | stat.S_IFBLK, os.makedev(7, 0))
    os.mkfifo(root / "etc" / "pipe", 0o600)
    long_dir = root / ("d" * 120)
    long_dir.mkdir()
    (long_dir / ("f" * 150)).write_bytes(b"long name")
    (root / "caf\u00e9").write_text("utf-8 name")
    (root / "empty").write_bytes(b"")
    (root / "dangling").symlink_to("/nowhere/" + "n" * 120)
    set_times(root, 1_700_000_000)
    os.utime(home / "notes", (1_650_000_000, 1_650_000_000))
