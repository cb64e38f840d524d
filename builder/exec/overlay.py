"""The step's root filesystem: an overlayfs of the parent chain's snapshots plus a fresh upper dir.

``lower_dirs`` are given bottom first, in the order of the image's layers (the base image's
first layer first); overlayfs wants them top first, which is done here.

Mounting uses ``mount(2)`` through libc directly: it costs tens of microseconds, where
running ``mount(8)`` costs milliseconds, and every RUN step mounts once. The legacy mount
call copies at most one page of options, so a deep image (100+ snapshot paths of ~100
characters each) does not fit. Then kiln makes a directory of short-named symlinks (``0``,
``1``, ...) to the lower dirs and runs ``mount(8)`` from inside it with relative lower dir
names: overlayfs resolves each name once, at mount time, against the mounting process's
working directory. The child process has its own working directory, so the builder's
threads never see a ``chdir``. The symlinks are removed right after the mount.

A step over ``scratch`` has no lower dir, which overlayfs does not allow; the mount target
itself is then the lower dir: an empty directory, hidden under the mount it makes.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from builder.errors import RuntimeSetupError

MNT_DETACH = 2
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
# index=off: kiln mounts the same snapshots in many overlays at once and never needs
# hardlink-copy-up consistency across them; it also avoids "lowerdir is in-use" refusals.
EXTRA_OPTIONS = ("index=off",)

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p)
_libc.umount2.argtypes = (ctypes.c_char_p, ctypes.c_int)


def overlay_supported() -> bool:
    """Whether the running kernel offers overlayfs (built in or as a loaded module)."""
    try:
        listed = Path("/proc/filesystems").read_text(encoding="ascii")
    except OSError:
        return False
    return any(line.split()[-1:] == ["overlay"] for line in listed.splitlines())


def _escape(path: Path) -> str:
    """A path as an overlayfs option value: ``:`` and ``\\`` escaped; ``,`` cannot be."""
    text = str(path)
    if "," in text:
        raise RuntimeSetupError(f"cannot use {text!r} in an overlay mount: the path holds a comma")
    return text.replace("\\", "\\\\").replace(":", "\\:")


def _options(lower_names: Sequence[str], upper: Path, work: Path) -> str:
    return ",".join(
        [
            "lowerdir=" + ":".join(lower_names),
            f"upperdir={_escape(upper)}",
            f"workdir={_escape(work)}",
            *EXTRA_OPTIONS,
        ]
    )


def _fail(target: Path, reason: str) -> RuntimeSetupError:
    if not overlay_supported():
        reason = (
            "this kernel has no overlayfs (no 'overlay' in /proc/filesystems; "
            "try `modprobe overlay`, or run kiln where overlayfs is available)"
        )
    return RuntimeSetupError(f"cannot mount the overlay filesystem on {target}: {reason}")


def _mount_syscall(options: str, target: Path) -> None:
    result = _libc.mount(b"overlay", os.fsencode(target), b"overlay", 0, options.encode())
    if result != 0:
        code = ctypes.get_errno()
        reason = os.strerror(code)
        if code == errno.EPERM:
            reason += " (mounting needs root, or CAP_SYS_ADMIN)"
        elif code == errno.EINVAL:
            reason += " (the upper dir's filesystem may lack overlay support, e.g. overlay on overlay)"
        raise _fail(target, reason)


def _mount_from_symlink_farm(lower_dirs: Sequence[Path], upper: Path, work: Path, target: Path) -> None:
    farm = Path(tempfile.mkdtemp(prefix=".kiln-lowers-", dir=work.parent))
    try:
        names = [str(index) for index in range(len(lower_dirs))]
        for name, lower in zip(names, lower_dirs, strict=True):
            (farm / name).symlink_to(lower.resolve())
        options = _options(names, upper.resolve(), work.resolve())
        if len(options) >= PAGE_SIZE:
            raise RuntimeSetupError(
                f"cannot mount {len(lower_dirs)} lower dirs: even short names exceed the "
                f"{PAGE_SIZE}-byte mount option limit"
            )
        completed = subprocess.run(
            ["mount", "-t", "overlay", "overlay", "-o", options, str(target.resolve())],
            cwd=farm,
            capture_output=True,
            text=True,
            check=False,
        )
        if completed.returncode != 0:
            raise _fail(target, completed.stderr.strip() or f"mount exited {completed.returncode}")
    except FileNotFoundError as err:
        raise RuntimeSetupError(f"cannot mount {len(lower_dirs)} lower dirs: {err}") from err
    finally:
        shutil.rmtree(farm, ignore_errors=True)


def mount_overlay(lower_dirs: Sequence[Path], upper: Path, work: Path, target: Path) -> None:
    """Mount ``lower_dirs`` (bottom first) under ``upper`` on ``target``; ``work`` is overlay's.

    ``upper``, ``work`` and ``target`` must exist, on one filesystem for upper and work.
    Raises :class:`RuntimeSetupError` naming the reason when the kernel refuses.
    """
    top_first = [Path(lower) for lower in reversed(lower_dirs)]
    if not top_first:
        if any(target.iterdir()):
            raise RuntimeSetupError(f"cannot mount a scratch overlay on {target}: it is not empty")
        top_first = [target]
    options = _options([_escape(lower) for lower in top_first], upper, work)
    if len(options) < PAGE_SIZE:
        _mount_syscall(options, target)
    else:
        _mount_from_symlink_farm(top_first, upper, work, target)


def unmount(target: Path) -> None:
    """Unmount ``target``; a busy mount is detached (gone from view, freed when unused)."""
    path = os.fsencode(target)
    if _libc.umount2(path, 0) == 0:
        return
    code = ctypes.get_errno()
    if code == errno.EBUSY and _libc.umount2(path, MNT_DETACH) == 0:
        return
    code = ctypes.get_errno() if code == errno.EBUSY else code
    raise RuntimeSetupError(f"cannot unmount {target}: {os.strerror(code)}")


def is_mounted(target: Path) -> bool:
    """Whether ``target`` is a mount point (per /proc/self/mountinfo)."""
    wanted = os.path.realpath(target)
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as mountinfo:
        for line in mountinfo:
            fields = line.split()
            mount_point = fields[4].replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\")
            if mount_point == wanted:
                return True
    return False


class OverlayMount:
    """``with OverlayMount(lowers, upper, work, target):`` a mounted rootfs at ``target``.

    On leaving, however it is left, the overlay is unmounted and ``work`` (overlayfs's
    private scratch dir) removed; ``upper`` stays: it holds the step's changes.
    """

    def __init__(self, lower_dirs: Sequence[Path], upper: Path, work: Path, target: Path) -> None:
        self.lower_dirs = tuple(lower_dirs)
        self.upper = upper
        self.work = work
        self.target = target
        self._mounted = False

    def __enter__(self) -> OverlayMount:
        for directory in (self.upper, self.work, self.target):
            directory.mkdir(parents=True, exist_ok=True)
        try:
            mount_overlay(self.lower_dirs, self.upper, self.work, self.target)
        except BaseException:
            shutil.rmtree(self.work, ignore_errors=True)
            raise
        self._mounted = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Unmount and remove the work dir; safe to call twice."""
        if self._mounted:
            unmount(self.target)
            self._mounted = False
        shutil.rmtree(self.work, ignore_errors=True)
