"""Hashing a COPY re-run's layer before it is written: its likely bytes, while the copy runs.

A re-run of ``COPY . /app`` that took its previous snapshot's tree (:mod:`builder.fileops.donor`)
makes a tar that is, up to the first file that changed, the previous tar, but for ``/app``'s
header when the copy gave it other entries: it then gets the time of the copy, fixed before
it starts (:meth:`DonorLayer.restamp_items`). Its new header is the old one with another
mtime. So the bytes of the new tar up to the first changed file can be foretold before the copy
runs, and hashed on another core while it does: on two cores, the 300 MB of assets sorted
before a changed source file are hashed during the copy instead of after it.

A guess is all it is: the layer writer compares what it writes with it
(:class:`builder.layers.splicing.TarSink`) and takes the hash states of the guess only up to
where the two agree.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from builder.layers import _tarheader as tarheader
from builder.layers.layerindex import PreviousLayer
from builder.layers.splicing import CheckpointedHash, mapped_reader

#: The foretold head of a tar (the changed directory headers and what lies between) is at
#: most this long: it is held in memory.
_HEAD_MAX = 64 << 10
#: Hashed at most this much between looks at the limit: :meth:`Prehash.stop` waits no longer.
_PIECE = 4 << 20
_MTIME = slice(136, 148)
_CHECKSUM = slice(148, 156)


def foretold_head(
    previous: PreviousLayer, directories: Iterable[bytes], mtime: int
) -> tuple[bytes, tuple[int, int]] | None:
    """The previous tar's bytes up to the last of ``directories`` (entry names, ending in
    ``/``), with those directories' headers given ``mtime``, and where that changed them:
    ``(first, end)``, empty if nowhere. ``None`` when a directory is not in the previous tar
    as a plain ustar directory header near its start."""
    spans = []
    for name in directories:
        known = previous.index.entries.get(name)
        if known is None:
            return None
        spans.append((known[0], known[1]))
    if not spans or not 0 <= mtime < 8**11:
        return None
    end = max(start + length for start, length in spans)
    if end > _HEAD_MAX:
        return None
    old = bytearray()
    for chunk in previous.read(0, end):
        old += chunk
    head = bytearray(old)
    for start, length in spans:
        block = start + length - tarheader.BLOCK
        header = head[block : block + tarheader.BLOCK]
        if block < start or header[156:157] != tarheader.DIRECTORY or header[257:265] != b"ustar\x0000":
            return None
        header[_MTIME] = b"%011o\0" % mtime
        header[_CHECKSUM] = b" " * 8
        header[_CHECKSUM] = b"%06o\0 " % sum(header)
        head[block : block + tarheader.BLOCK] = header
    differing = [at for at in range(end) if head[at] != old[at]]
    return bytes(head), (differing[0], differing[-1] + 1) if differing else (0, 0)


class Prehash:
    """Hashes ``head`` followed by the previous tar from ``len(head)`` on, on a thread of its
    own, saving a state every :data:`~builder.layers.splicing.CHECKPOINT_EVERY` bytes;
    :meth:`stop` ends it at a given offset and gives the states saved up to it."""

    def __init__(self, previous: PreviousLayer, head: bytes, *, first_change: int) -> None:
        from builder.oci.resumable_sha256 import ResumableSha256

        self._previous = previous
        self._head = head
        start, state = 0, None
        for offset, saved in previous.index.checkpoints:
            if offset > first_change:
                break
            start, state = offset, saved
        hasher = ResumableSha256() if state is None else ResumableSha256.from_state(state)
        #: Its saved (offset, state) pairs, ascending; only the thread appends, until it stops.
        self._hashed = CheckpointedHash(hasher, start, [])
        self._limit = previous.index.size
        self._lock = threading.Lock()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="layer-prehash", daemon=True)
        self._thread.start()

    def stop(self, offset: int) -> list[tuple[int, bytes]]:
        """Hash no further than ``offset``; the states saved at or before it (one at
        ``offset`` itself when the thread had not passed it). Empty after a failure."""
        with self._lock:
            self._limit = min(self._limit, offset)
        self._thread.join()
        if self._error is not None:
            return []
        return [saved for saved in self._hashed.checkpoints or () if saved[0] <= offset]

    def close(self) -> None:
        self.stop(-1)

    def _limit_now(self) -> int:
        with self._lock:
            return self._limit

    def _run(self) -> None:
        try:
            head, size, hashed = self._head, self._previous.index.size, self._hashed
            going = hashed.position >= len(head) or self._hash_up_to_limit(
                memoryview(head)[hashed.position :]
            )
            if going and hashed.position < size:
                self._hash_previous(size)
            if hashed.position in (self._limit_now(), size):
                hashed.save_state()
        except BaseException as err:  # a read failed: no states, the writer hashes it all
            self._error = err

    def _hash_previous(self, size: int) -> None:
        """Hash the previous tar from where the hash got to, cut short at a limit set
        meanwhile: from its files mapped into memory when they can be (a fifth faster than
        copying them out, and this hashing is what a one-file re-run waits for), else read."""
        position = self._hashed.position
        for piece in mapped_reader(self._previous)(position, size - position):
            if not self._hash_up_to_limit(memoryview(piece)):
                return

    def _hash_up_to_limit(self, data: memoryview) -> bool:
        """Hash ``data`` in pieces, none past the limit; false once the limit is reached."""
        hashed = self._hashed
        while len(data):
            room = min(self._limit_now(), hashed.position + _PIECE) - hashed.position
            if room <= 0:
                return False
            hashed.update(data[:room])
            data = data[room:]
        return hashed.position < self._limit_now()
