"""Hashing a COPY re-run's layer before it is written: its likely bytes, while the copy runs.

A re-run of ``COPY . /app`` that took its previous snapshot's tree (:mod:`builder.fileops.donor`)
makes a tar that is, up to the first file that changed, the previous tar, but for ``/app``'s
header when the copy gave it other entries: it then gets the time of the copy, fixed before
it starts (:meth:`DonorLayer.restamp_items`). Its new header is the old one with another
mtime. So the bytes of the new tar up to the first changed file can be foretold before the copy
runs, and hashed on another core while it does: on two cores, the 300 MB of assets sorted
before a changed source file are hashed during the copy instead of after it
(:func:`foretold_head`).

Once the copy has rewritten one file in place, of the same length in blocks, the whole new
tar can be foretold: the previous one with that file's entry replaced (:func:`foretold_entry`).
Its hash from the saved state before that entry to the end (the 20 MB of sources after a
changed one, say) is then made while the layer writer walks the tree, not after it.

A guess is all it is: the layer writer compares what it writes with it
(:class:`builder.layers.splicing.TarSink`) and takes the hash states of the guess only up to
where the two agree.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from builder.layers import _tarheader as tarheader
from builder.layers.layerindex import PreviousLayer
from builder.layers.splicing import CheckpointedHash, foretold_pieces, mapped_reader

#: The foretold head of a tar (up to the last restamped directory header) is at most this
#: long: it is read into memory.
_HEAD_MAX = 64 << 10
#: Hashed at most this much between looks at the limit: :meth:`Prehash.stop` waits no longer.
_PIECE = 4 << 20
_MTIME = slice(136, 148)
_CHECKSUM = slice(148, 156)


#: A foretold stream: the previous tar with these bytes in place of as many from this offset.
Patch = tuple[int, bytes]
#: A rewritten file's entry is foretold only up to this length: it is held in memory.
_ENTRY_MAX = 1 << 20


def foretold_head(previous: PreviousLayer, directories: Iterable[bytes], mtime: int) -> Patch | None:
    """The previous tar with ``directories`` (entry names, ending in ``/``) given ``mtime``
    in their headers, as a patch from its first changed byte to its last (empty when nothing
    changed). ``None`` when a directory is not in the previous tar as a plain ustar
    directory header near its start."""
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
    if not differing:
        return 0, b""
    return differing[0], bytes(head[differing[0] : differing[-1] + 1])


def foretold_entry(previous: PreviousLayer, name: bytes, entry: bytes) -> Patch | None:
    """The previous tar with the entry of ``name`` replaced by ``entry`` (a header, content
    and padding), when that takes as many bytes; else ``None``."""
    known = previous.index.entries.get(name)
    if known is None or known[1] != len(entry) or len(entry) > _ENTRY_MAX:
        return None
    return known[0], entry


class Prehash:
    """Hashes the previous tar with ``patch`` in place of its bytes from ``patch_at`` on, on a
    thread of its own, from the previous tar's last saved state at or before ``patch_at``,
    saving a state every :data:`~builder.layers.splicing.CHECKPOINT_EVERY` bytes;
    :meth:`stop` ends it at a given offset and gives the states saved up to it."""

    def __init__(self, previous: PreviousLayer, patch_at: int, patch: bytes) -> None:
        from builder.oci.resumable_sha256 import ResumableSha256

        self._previous = previous
        self._patch_at, self._patch = patch_at, patch
        start, state = 0, None
        for offset, saved in previous.index.checkpoints:
            if offset > patch_at:
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
            size, hashed = self._previous.index.size, self._hashed
            for piece in foretold_pieces(self._patch_at, self._patch, hashed.position, size):
                going = (
                    self._hash_previous(*piece)
                    if isinstance(piece, tuple)
                    else self._hash_up_to_limit(memoryview(piece))
                )
                if not going:
                    break
            if hashed.position in (self._limit_now(), size):
                hashed.save_state()
        except BaseException as err:  # a read failed: no states, the writer hashes it all
            self._error = err

    def _hash_previous(self, offset: int, length: int) -> bool:
        """Hash bytes ``[offset, offset + length)`` of the previous tar (where the hash got
        to), cut short at a limit set meanwhile (false then): from its files mapped into
        memory when they can be (a fifth faster than copying them out, and this hashing is
        what a one-file re-run waits for), else read."""
        for piece in mapped_reader(self._previous)(offset, length):
            if not self._hash_up_to_limit(memoryview(piece)):
                return False
        return True

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
