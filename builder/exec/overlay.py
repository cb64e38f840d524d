"""The step's root filesystem: an overlayfs of the parent chain's snapshots plus a fresh upper dir.

``lower_dirs`` are given bottom first, in the order of the image's layers (the base image's
first layer first); overlayfs wants them top first, which is done here.

Mounting uses ``mount(2)`` through libc directly: about a millisecond, where running
``mount(8)`` costs tens (measured: 2 ms against 40 ms for 120 lower dirs). The legacy
mount call copies at most one page of options, so a deep image (100+ snapshot paths of ~100
characters each) does not fit as absolute paths. kiln then names each lower dir by an
``O_PATH`` descriptor, ``/proc/self/fd/N`` (18 characters: ~220 lower dirs in a page; an
image has at most 127 layers under Docker). Deeper still, up to overlayfs's own limit of
500, kiln makes a directory of short-named symlinks (``0``, ``1``, ...) to the lower dirs
and runs ``mount(8)`` from inside it with relative names: overlayfs resolves each name once,
at mount time, against the mounting process's working directory; the child has its own, so
the builder's threads never see a ``chdir``. The symlinks are removed right after.

Options: ``index=off`` (the same snapshots sit under many overlays at once; kiln needs no
hardlink-consistent copy-up across them) and, where the kernel has it (5.10+), ``volatile``:
overlayfs then never syncs the upper filesystem. Without it every unmount syncs the whole
filesystem holding the upper dir, measured at 3 to 400 ms on a busy disk, for data that
is read once to make a layer and is worthless after a crash anyway (a crashed step is
rerun from scratch; the layer writer fsyncs the blob it makes).

A step over ``scratch`` has no lower dir, which overlayfs does not allow; the mount target
itself is then the lower dir: an empty directory, hidden under the mount it makes.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

from builder.errors import RuntimeSetupError
from builder.exec.deferred import later, tearing_down, wait_for_unmounts

MNT_DETACH = 2
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
EXTRA_OPTIONS = ("index=off",)
VOLATILE_OPTION = "volatile"
# Overlayfs's own cap on stacked lower dirs (OVL_MAX_STACK).
MAX_LOWER_DIRS = 500


class _VolatileSupport:
    """Whether this kernel takes ``volatile``; learnt from the first mount that refuses it."""

    supported = True


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


def _options(lower_names: Sequence[str], upper: Path, work: Path, *, volatile: bool = False) -> str:
    return ",".join(
        [
            "lowerdir=" + ":".join(lower_names),
            f"upperdir={_escape(upper)}",
            f"workdir={_escape(work)}",
            *EXTRA_OPTIONS,
            *((VOLATILE_OPTION,) if volatile else ()),
        ]
    )


def _fail(target: Path, reason: str) -> RuntimeSetupError:
    if not overlay_supported():
        reason = (
            "this kernel has no overlayfs (no 'overlay' in /proc/filesystems; "
            "try `modprobe overlay`, or run kiln where overlayfs is available)"
        )
    return RuntimeSetupError(f"cannot mount the overlay filesystem on {target}: {reason}")


def _mount_call(options: str, target: Path) -> int:
    """mount(2) of an overlay; 0, or the errno."""
    if _libc.mount(b"overlay", os.fsencode(target), b"overlay", 0, options.encode()) == 0:
        return 0
    return ctypes.get_errno()


def _mount_syscall(lower_names: Sequence[str], upper: Path, work: Path, target: Path) -> None:
    """mount(2), with ``volatile`` unless the kernel has been seen to refuse it."""
    code = errno.EINVAL
    if _VolatileSupport.supported:
        code = _mount_call(_options(lower_names, upper, work, volatile=True), target)
        if code == 0:
            return
    if code == errno.EINVAL:
        # EINVAL has other causes too: only a success without the option proves it unknown.
        code = _mount_call(_options(lower_names, upper, work), target)
        if code == 0:
            _VolatileSupport.supported = False
            return
    reason = os.strerror(code)
    if code == errno.EPERM:
        reason += " (mounting needs root, or CAP_SYS_ADMIN)"
    elif code == errno.EINVAL:
        reason += " (the upper dir's filesystem may not support overlay, e.g. overlay on overlay)"
    raise _fail(target, reason)


def _fits(lower_names: Sequence[str], upper: Path, work: Path) -> bool:
    return len(_options(lower_names, upper, work, volatile=True)) < PAGE_SIZE


def _mount_by_descriptors(lower_dirs: Sequence[Path], upper: Path, work: Path, target: Path) -> bool:
    """Mount naming each lower dir ``/proc/self/fd/N``; False when even that is too long."""
    descriptors: list[int] = []
    try:
        for lower in lower_dirs:
            descriptors.append(os.open(lower, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC))
        names = [f"/proc/self/fd/{descriptor}" for descriptor in descriptors]
        if not _fits(names, upper, work):
            return False
        _mount_syscall(names, upper, work, target)
        return True
    except (FileNotFoundError, NotADirectoryError) as err:
        raise _fail(target, f"lower dir {err.filename} is missing or not a directory") from err
    finally:
        for descriptor in descriptors:
            os.close(descriptor)


def _mount_from_symlink_farm(lower_dirs: Sequence[Path], upper: Path, work: Path, target: Path) -> None:
    import subprocess  # (this rare path only: a build's start-up does without them)
    import tempfile

    if len(lower_dirs) > MAX_LOWER_DIRS:
        raise RuntimeSetupError(
            f"cannot mount {len(lower_dirs)} lower dirs: overlayfs stacks at most {MAX_LOWER_DIRS}"
        )
    farm = Path(tempfile.mkdtemp(prefix=".kiln-lowers-", dir=work.parent))
    try:
        names = [str(index) for index in range(len(lower_dirs))]
        for name, lower in zip(names, lower_dirs, strict=True):
            (farm / name).symlink_to(lower.resolve())
        stderr = ""
        for volatile in (True, False) if _VolatileSupport.supported else (False,):
            options = _options(names, upper.resolve(), work.resolve(), volatile=volatile)
            completed = subprocess.run(
                ["mount", "-t", "overlay", "overlay", "-o", options, str(target.resolve())],
                cwd=farm,
                capture_output=True,
                text=True,
                check=False,
            )
            if completed.returncode == 0:
                return
            stderr = completed.stderr.strip() or f"mount(8) exited {completed.returncode}"
        raise _fail(target, stderr)
    except FileNotFoundError as err:
        raise RuntimeSetupError(f"cannot mount {len(lower_dirs)} lower dirs: {err}") from err
    finally:
        shutil.rmtree(farm, ignore_errors=True)


def mount_overlay(lower_dirs: Sequence[Path], upper: Path, work: Path, target: Path) -> None:
    """Mount ``lower_dirs`` (bottom first) under ``upper`` on ``target``; ``work`` is overlay's.

    ``upper``, ``work`` and ``target`` must exist, on one filesystem for upper and work.
    A mount made ``volatile`` marks ``work``, and overlayfs refuses to reuse that work dir:
    give each mount a fresh one (:class:`OverlayMount` removes it on exit). Raises
    :class:`RuntimeSetupError` naming the reason when the kernel refuses.
    """
    top_first = [Path(lower) for lower in reversed(lower_dirs)]
    if not top_first:
        if any(target.iterdir()):
            raise RuntimeSetupError(f"cannot mount a scratch overlay on {target}: it is not empty")
        top_first = [target]
    names = [_escape(lower) for lower in top_first]
    if _fits(names, upper, work):
        _mount_syscall(names, upper, work, target)
    elif not _mount_by_descriptors(top_first, upper, work, target):
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
        self._handed_off = False

    def __enter__(self) -> OverlayMount:
        wait_for_unmounts()  # no snapshot is a lower dir here while another overlay's upper
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
        """Unmount and remove the work dir; safe to call twice (and a no-op once
        :meth:`close_later` took the closing over)."""
        if self._handed_off:
            return
        if self._mounted:
            unmount(self.target)
            self._mounted = False
        shutil.rmtree(self.work, ignore_errors=True)

    def close_later(self, then: Callable[[], None]) -> bool:
        """:meth:`close`, then ``then``, on a thread of its own during a build
        (:mod:`builder.exec.deferred`): call once nothing uses the overlay any more. The
        mount is detached and the kernel's teardown of it left to a child process
        (:mod:`builder.exec.teardown`), which the next mount waits for and the end of the
        build does not. The upper dir may be read and renamed meanwhile. False, with nothing
        done, outside a build."""
        if not self._mounted or self._handed_off:
            return False
        target, work = self.target, self.work

        def close_then() -> None:
            from builder.exec.teardown import detach  # (only once a step has run)

            teardown = detach(target)
            if teardown is not None:
                tearing_down(teardown)
            shutil.rmtree(work, ignore_errors=True)
            then()

        self._handed_off = later(close_then, unmount=True)
        return self._handed_off
