"""Cleanup a build lets run beside its next steps, and waits for before it ends.

Two kinds, each costing a step tens of milliseconds it need not wait for: removing a step's
workspace (unlinking the files a copy replaced waits on the filesystem's journal), and
unmounting a RUN step's overlay once its container has exited (the kernel drops every
inode the command looked at: 30 to 60 ms after ``ls -R`` over 20,000 files, which
:mod:`builder.exec.teardown` leaves to a child process). The layer is written from the upper
dir and renamed into the store meanwhile: the overlay is no longer used.

Only within :func:`deferring` (a build): elsewhere the cleanup is done at once. Every mount
waits for the unmounts pending (:func:`wait_for_unmounts`), the kernel's teardown of each
detached overlay included (:mod:`builder.exec.teardown`), so no snapshot is ever a lower
dir of one overlay while still the upper dir of another. Leaving the outermost
:func:`deferring` waits for everything but those teardowns, which need nothing from the
build (the mounts are gone from view), and raises the first failure; a teardown still
running then is waited for by the next mount, or not at all by a build that ends the
process.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from builder.exec.teardown import Teardown


class _Pending:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.depth = 0
        self.removals: list[threading.Thread] = []
        self.unmounts: list[threading.Thread] = []
        self.teardowns: list[Teardown] = []
        self.errors: list[BaseException] = []


_PENDING = _Pending()


@contextmanager
def deferring() -> Iterator[None]:
    """Within: :func:`later` runs cleanup on threads. Nested, the outermost waits."""
    with _PENDING.lock:
        _PENDING.depth += 1
    failed = True
    try:
        yield
        failed = False
    finally:
        with _PENDING.lock:
            _PENDING.depth -= 1
            last = _PENDING.depth == 0
            threads = [*_PENDING.removals, *_PENDING.unmounts] if last else []
            if last:
                _PENDING.removals, _PENDING.unmounts = [], []
        for thread in threads:
            thread.join()
        if last:
            with _PENDING.lock:
                errors, _PENDING.errors = _PENDING.errors, []
                _PENDING.teardowns = [teardown for teardown in _PENDING.teardowns if not teardown.done()]
            if errors and not failed:
                raise errors[0]


def later(action: Callable[[], None], *, unmount: bool = False) -> bool:
    """Run ``action`` on a thread of its own, within :func:`deferring`; false, with nothing
    done, outside it. ``unmount`` marks an unmount, which mounts wait for."""
    with _PENDING.lock:
        if not _PENDING.depth:
            return False

        def run() -> None:
            try:
                action()
            except BaseException as err:  # raised where the build ends
                with _PENDING.lock:
                    _PENDING.errors.append(err)

        thread = threading.Thread(target=run, name="cleanup", daemon=True)
        (_PENDING.unmounts if unmount else _PENDING.removals).append(thread)
        thread.start()
    return True


def tearing_down(teardown: Teardown) -> None:
    """Note a detached mount's teardown, for the next mount to wait for."""
    with _PENDING.lock:
        _PENDING.teardowns.append(teardown)


def wait_for_unmounts() -> None:
    """Wait for the unmounts pending and the kernel's teardown of each (call before
    mounting an overlay)."""
    with _PENDING.lock:
        threads, _PENDING.unmounts = _PENDING.unmounts, []
    for thread in threads:
        thread.join()
    with _PENDING.lock:
        teardowns, _PENDING.teardowns = _PENDING.teardowns, []
    for teardown in teardowns:
        teardown.wait()
