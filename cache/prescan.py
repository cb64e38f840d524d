"""The context's directories listed in a helper process while the build starts up.

A rebuild's context walk is mostly ``lstat``: one per entry, 20,000 of them for a large
context, and Python holds its interpreter lock while it builds each result, so a thread
would not overlap that work with anything. A separate process does: forked by the ``kiln``
command before it has even parsed its command line (:mod:`builder.cli.entry`), or else as
soon as ``kiln build`` knows its context (before the build has started a thread or opened a
database), it lists every directory the walk may meet (those the ignore file leaves in) and
sends each one's :func:`~cache.listing.fingerprint` (its names and stat keys) while the
build is still importing, reading the Dockerfile and opening the store. Forked rather than
started afresh: a new interpreter spends some 50 ms importing before it lists anything,
more than half of what the scan takes; and the helper itself loads as little as it can.

The walk then takes a directory from the scan when its fingerprint is the stat cache's
record of it: the directory is as the last walk left it, and its remembered lines are
replayed without listing it again. Anything else (a directory the scan has not reached, one
that changed, one the scan could not read) the walk lists itself, as it would without a
scan.

The helper goes through the tree in the opposite order from the walk (each directory's
subdirectories last name first), so that the two meet in the middle rather than racing
through the same directories; the walk never waits for it.

What the walk trusts is a listing taken a little earlier than its own would have been. That
is the same as a walk started earlier: an entry changed after the scan listed it, like one
changed after the walk passed it, is seen by the next build.
"""

from __future__ import annotations

import os
import stat
import sys

# Nothing more: ``signal`` (which loads ``enum``) and ``threading`` cost 10 ms that the
# helper would start later by, when forked before the command line is parsed.
TYPE_CHECKING = False  # (no ``typing`` import either: see :mod:`builder.cli.entry`)
if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from builder.context import BuildContext
    from builder.patterns import PatternMatcher

#: A directory whose entries could not all be listed: never equal to a record's fingerprint.
UNLISTED = "-"
_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_SIZE = 1 << 16
#: The pipe's capacity asked for: a frame per directory, so that the helper is not held up
#: while the build has not started reading (the default 64 KiB is about 1,000 directories).
_PIPE_SIZE = 1 << 20


class ContextScan:
    """The build's side of a running scan: what the helper has sent so far, by directory
    (its path relative to the context root, ``""`` for the root).

    Not thread-safe: the context walk, its only reader, runs under the hasher's lock.
    """

    def __init__(self, root: str, dockerfile: str | None, pid: int | None, fd: int) -> None:
        #: The context root scanned (resolved).
        self.root = root
        #: The Dockerfile whose ignore file was read (resolved), if any.
        self.dockerfile = dockerfile
        self._pid = pid
        self._fd: int | None = fd
        self._pending = b""
        self._fingerprints: dict[str, str] = {}

    @classmethod
    def start(cls, root: str | Path, dockerfile: str | Path | None) -> ContextScan | None:
        """A scan of the context at ``root`` (its ignore file found from ``dockerfile`` as
        :meth:`BuildContext.open` finds it) in a forked helper; ``None`` when this process
        already runs other threads (forking it could copy a lock some thread holds) or
        cannot fork.

        Called before the build imports most of its modules (by :mod:`builder.cli.entry`
        even before the command line is parsed): the helper imports what it needs itself,
        on the other core. This module imports nothing else until then."""
        threading = sys.modules.get("threading")  # (not imported: no thread started)
        if threading is not None and threading.active_count() != 1:
            return None
        root = os.path.realpath(root)
        dockerfile = None if dockerfile is None else os.path.realpath(dockerfile)
        read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
        _enlarge(read_fd)
        try:
            pid = os.fork()
        except OSError:
            os.close(read_fd)
            os.close(write_fd)
            return None
        if pid == 0:  # the helper
            code = 1
            try:
                # Only the pipe: no descriptor of the build's (a lock, a database) is held
                # open a moment longer by the helper.
                os.closerange(3, write_fd)
                os.closerange(write_fd + 1, os.sysconf("SC_OPEN_MAX"))
                _reset_signals()
                scan_context(root, dockerfile, lambda frame: _send(write_fd, frame))
                code = 0
            finally:
                os._exit(code)  # never back into the build's code, whatever happened
        os.close(write_fd)
        os.set_blocking(read_fd, False)
        return cls(root, dockerfile, pid, read_fd)

    def fingerprint(self, relative: str) -> str | None:
        """The fingerprint the helper sent for directory ``relative``; ``None`` if it has not
        sent one (yet). Never waits."""
        known = self._fingerprints.get(relative)
        if known is None and self._fd is not None:
            self._receive()
            known = self._fingerprints.get(relative)
        return known

    def wait(self) -> None:
        """Take everything the helper sends, until it is done."""
        if self._fd is not None:
            os.set_blocking(self._fd, True)
            while self._fd is not None:
                self._receive()

    def close(self) -> None:
        """Stop the helper (it may still be listing directories no walk asked for) and
        collect it."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._pid is not None:
            pid, self._pid = self._pid, None
            try:
                if os.waitpid(pid, os.WNOHANG) == (0, 0):
                    import signal

                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
            except ChildProcessError:  # collected by someone else already
                pass

    def __enter__(self) -> ContextScan:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _receive(self) -> None:
        """Take what the helper has written so far (without blocking, unless the pipe was
        made blocking by :meth:`wait`)."""
        assert self._fd is not None
        chunks = [self._pending]
        while True:
            try:
                chunk = os.read(self._fd, _READ_SIZE)
            except BlockingIOError:
                break
            if not chunk:  # the helper is done
                os.close(self._fd)
                self._fd = None
                break
            chunks.append(chunk)
        if len(chunks) == 1:
            return
        *frames, self._pending = b"".join(chunks).split(b"\0")
        for frame in frames:
            fingerprint_text, _, relative = frame.partition(b" ")
            self._fingerprints[os.fsdecode(relative)] = fingerprint_text.decode("ascii")


def scan_context(root: str | Path, dockerfile: str | Path | None, send: Callable[[bytes], None]) -> None:
    """:func:`scan` of the context at ``root``; an unreadable or bad ignore file ends it
    (the build reports that where it opens the context).

    With no ignore file nothing is filtered, and no pattern matcher is needed: the helper
    then loads nothing but :mod:`cache.listing` before it lists (some 30 ms sooner)."""
    from builder.ignore_file import find_ignore_file

    root, dockerfile = os.fspath(root), None if dockerfile is None else os.fspath(dockerfile)
    if find_ignore_file(root, dockerfile) is None:
        scan_tree(root, None, send)
        return
    from pathlib import Path

    from builder.lazy_stdlib import defer_standard_modules

    defer_standard_modules()  # (``dataclasses`` would load ``inspect`` for nothing)
    from builder.context import BuildContext
    from builder.errors import ContextError

    try:
        context = BuildContext.open(Path(root), None if dockerfile is None else Path(dockerfile))
    except ContextError:
        return
    scan(context, send)


def scan(context: BuildContext, send: Callable[[bytes], None]) -> None:
    """:func:`scan_tree` of ``context``, filtered by its ignore file."""
    scan_tree(str(context.root), context.matcher if context.matcher.patterns else None, send)


def scan_tree(root: str, matcher: PatternMatcher | None, send: Callable[[bytes], None]) -> None:
    """List each directory below ``root`` a walk may meet, calling ``send`` with one frame
    per directory (``<fingerprint> <path>\\0``) as soon as it is listed.

    Depth first, but each directory's subdirectories are pushed in name order so that the
    last name is listed first: the reverse of the walk's order. A directory that cannot be
    read is sent as :data:`UNLISTED` (the walk will say why); one the ignore file's
    ``matcher`` excludes, with nothing below it let back in, is not entered.
    """
    from cache.listing import fingerprint, lstat_all, sorted_names, stat_list

    stack = [""]
    while stack:
        relative = stack.pop()
        try:
            fd = os.open(f"{root}/{relative}" if relative else root, _OPEN_DIR)
        except OSError:
            send(_frame(relative, None))
            continue
        try:
            names = sorted_names(fd)
            infos, complete = lstat_all(fd, names)
        except OSError:
            send(_frame(relative, None))
            continue
        finally:
            os.close(fd)
        send(_frame(relative, fingerprint(stat_list(names, infos, complete))))
        for name, info in zip(names, infos, strict=True):
            if info is None or not stat.S_ISDIR(info.st_mode):
                continue
            child = f"{relative}/{name}" if relative else name
            if matcher is None or not matcher.excluded(child) or matcher.dir_may_contain_included(child):
                stack.append(child)


def _frame(relative: str, fingerprint_text: str | None) -> bytes:
    return b"%s %s\0" % ((fingerprint_text or UNLISTED).encode("ascii"), os.fsencode(relative))


def _send(fd: int, frame: bytes) -> None:
    """Write ``frame`` to the build's pipe whole (a closed pipe ends the helper)."""
    view = memoryview(frame)
    while view:
        view = view[os.write(fd, view) :]


def _enlarge(fd: int) -> None:
    """Ask for a larger pipe; the default one does too."""
    try:
        import fcntl

        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
    except (ImportError, AttributeError, OSError):
        pass


def _reset_signals() -> None:
    """The helper dies of an interrupt, quietly, rather than running the build's handlers.

    Before the ``signal`` module is loaded nobody has set a handler but Python's own for
    SIGINT, whose ``KeyboardInterrupt`` ends the helper at its ``os._exit`` just as quietly:
    it is not loaded for nothing (it loads ``enum``)."""
    signal = sys.modules.get("signal")
    if signal is None:
        return
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, signal.SIG_DFL)
