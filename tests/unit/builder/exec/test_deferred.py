"""Cleanup a build runs beside its next steps."""

from __future__ import annotations

import threading

import pytest

from builder.exec.deferred import deferring, later, wait_for_unmounts


def test_outside_a_build_nothing_is_deferred() -> None:
    ran: list[str] = []
    assert later(lambda: ran.append("x")) is False
    assert ran == []


def test_the_outermost_scope_waits_for_every_action_and_mounts_wait_for_unmounts() -> None:
    release = threading.Event()
    done: list[str] = []

    def slow_unmount() -> None:
        release.wait(5)
        done.append("unmounted")

    with deferring():
        with deferring():
            assert later(slow_unmount, unmount=True)
            assert later(lambda: done.append("removed"))
        assert "unmounted" not in done  # the inner scope does not wait
        release.set()
        wait_for_unmounts()
        assert "unmounted" in done
    assert sorted(done) == ["removed", "unmounted"]


def test_a_failed_action_is_raised_where_the_build_ends() -> None:
    def fail() -> None:
        raise OSError("cannot unmount")

    with pytest.raises(OSError, match="cannot unmount"), deferring():
        later(fail, unmount=True)
    with deferring():  # and forgotten once raised
        pass
