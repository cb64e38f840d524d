"""Unmounting an overlay without waiting for the kernel to tear it down.

Once a RUN step's container has exited, its overlay is unmounted. The unmount itself is
quick; what costs is what follows the last reference to the mount going away: the kernel
frees every inode and dentry the overlay made for what the command looked at (about 50 ms
after ``ls -R`` over 20,000 files). Linux does that work in the task that dropped the last
reference, on its way back to user space, so a build ending with such a step waited for it
before it could exit.

Here the mount is detached (``MNT_DETACH``: gone from the mount table at once, its mount
point free to remove) while this process holds the mount's root open, and that descriptor is
given to a child process first: the child's reference is then the last one, and the kernel's
teardown runs as the child exits, on whichever core is free, while the build goes on or has
already ended. The child is ``cat`` reading a pipe: it exits when the pipe's last writer
(this process) closes it, which is done only after this process has closed its own copy of
the root, so that the child's release is always the last. Nothing is left in any mount
table meanwhile, and a child killed by a signal still releases the mount as it dies.

Without ``cat`` (or when the child cannot be started) the unmount is done here and waited
for, as before.
"""

from __future__ import annotations

import ctypes
import functools
import os
import shutil
from pathlib import Path

from builder.errors import RuntimeSetupError
from builder.exec.overlay import unmount

MNT_DETACH = 2
_OPEN_ROOT = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_libc = ctypes.CDLL(None, use_errno=True)
_libc.umount2.argtypes = (ctypes.c_char_p, ctypes.c_int)


@functools.cache
def _cat() -> str | None:
    return shutil.which("cat")


class Teardown:
    """A child process holding a detached mount's last reference: the kernel's teardown of
    that mount is done once the child has exited."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._reaped = False

    def done(self) -> bool:
        """Whether the teardown is over (the child collected if so); never blocks."""
        if not self._reaped:
            self._reap(os.WNOHANG)
        return self._reaped

    def wait(self) -> None:
        """Wait until the teardown is over."""
        if not self._reaped:
            self._reap(0)

    def _reap(self, options: int) -> None:
        try:
            pid, _ = os.waitpid(self.pid, options)
        except ChildProcessError:  # collected elsewhere
            pid = self.pid
        self._reaped = pid == self.pid


def detach(target: Path) -> Teardown | None:
    """Unmount ``target`` at once, leaving the kernel's teardown of it to a child process
    (returned); ``None`` when the unmount was done in full here instead.

    Raises :class:`RuntimeSetupError` when ``target`` cannot be unmounted."""
    path = os.fsencode(target)
    cat = _cat()
    try:
        root = os.open(path, _OPEN_ROOT) if cat is not None else None
    except OSError:
        root = None
    if cat is None or root is None:
        unmount(target)
        return None
    write_end = None
    try:
        if _libc.umount2(path, MNT_DETACH) != 0:
            code = ctypes.get_errno()
            raise RuntimeSetupError(f"cannot unmount {target}: {os.strerror(code)}")
        pid, write_end = _holder(cat, root)
    finally:
        os.close(root)  # while the child cannot have exited yet: its reference is the last
        if write_end is not None:
            os.close(write_end)  # the child's stdin ends: it exits
    return Teardown(pid) if pid is not None else None


def _holder(cat: str, root: int) -> tuple[int | None, int | None]:
    """A child holding ``root`` until the returned pipe end is closed: its pid and that
    end, or ``(None, None)`` when it cannot be started (the caller's close of ``root`` is
    then the last reference, and the teardown is done there)."""
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    held = next(fd for fd in range(3, 6) if fd not in (root, read_end))  # not clobbered below
    try:
        pid = os.posix_spawn(
            cat,
            [cat],
            {},
            file_actions=[
                (os.POSIX_SPAWN_DUP2, root, held),
                (os.POSIX_SPAWN_DUP2, read_end, 0),
                (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
            ],
            setpgroup=0,  # a Ctrl-C meant for the build does not end it early
        )
    except OSError:
        os.close(write_end)
        return None, None
    finally:
        os.close(read_end)
    return pid, write_end
