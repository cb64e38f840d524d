"""The byte sink of an uncompressed layer tar that may reuse ranges of a previous layer.

The layer writer hands it either new bytes (:meth:`TarSink.write`), which go to the blob
being written, or a range of the previous layer's tar (:meth:`TarSink.reference`), which
is only named: the store keeps the result as a splice of the two
(:mod:`builder.store.splices`). The diff id still covers every byte of the new tar. While
the new tar repeats the previous one from its start, nothing is hashed; at the first
difference the hash resumes from the previous layer's last saved state before it (or,
without the resumable hash, from the start, reading the previous bytes), and from there
every byte, new or referenced, is hashed. States of the new tar are saved every few MB
for the next layer to resume from (:mod:`builder.layers.layerindex`).

Hashing runs on a thread of its own, fed in order: OpenSSL and ``pread`` release the GIL,
so the 300 MB of a large layer are hashed while the writer walks the tree (on two cores a
one-file rebuild of such a layer took 0.5 s for walking and hashing one after the other).
"""

from __future__ import annotations

import hashlib
import mmap
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import BinaryIO, Protocol

from builder.layers.layerindex import PreviousLayer

#: A hash state is saved after at least this many bytes since the last one.
CHECKPOINT_EVERY = 4 << 20
#: New bytes shorter than this (tar headers, small files) are gathered before hashing.
_SMALL = 64 << 10
_BATCH = 1 << 20
#: New bytes queued for hashing at most (beyond one chunk), so memory stays bounded.
_IN_FLIGHT = 32 << 20


class _Hash(Protocol):
    def update(self, data: bytes | bytearray | memoryview, /) -> None: ...

    def hexdigest(self) -> str: ...


def _resumable(state: bytes | None = None) -> _Hash | None:
    """A SHA-256 whose state can be saved, from ``state`` if given; ``None`` without one."""
    from builder.oci.resumable_sha256 import ResumableHashUnavailableError, ResumableSha256

    try:
        return ResumableSha256() if state is None else ResumableSha256.from_state(state)
    except (ResumableHashUnavailableError, ValueError):
        return None


class CheckpointedHash:
    """A SHA-256 of a stream from ``position`` on, its state saved each time
    :data:`CHECKPOINT_EVERY` more bytes are hashed (in ``checkpoints``, ``(offset, state)``
    ascending), so that a later layer sharing a beginning with this one resumes close before
    its first change. ``checkpoints`` is ``None`` when no state is kept (a hash that cannot
    give one)."""

    def __init__(self, hasher: _Hash, position: int, checkpoints: list[tuple[int, bytes]] | None) -> None:
        self.hasher = hasher
        self.position = self._last_saved = position
        self.checkpoints = checkpoints

    def update(self, data: bytes | memoryview) -> None:
        if self.checkpoints is None:
            self.hasher.update(data)
            self.position += len(data)
            return
        view = memoryview(data)
        while view:
            # Long data (a range of the previous tar comes in chunks of 16 MiB) is cut at
            # each checkpoint.
            piece = view[: CHECKPOINT_EVERY - (self.position - self._last_saved)]
            self.hasher.update(piece)
            self.position += len(piece)
            view = view[len(piece) :]
            if self.position - self._last_saved >= CHECKPOINT_EVERY:
                self.save_state()

    def save_state(self) -> None:
        """Save the state at :attr:`position` (once)."""
        assert self.checkpoints is not None
        if not self.checkpoints or self.checkpoints[-1][0] != self.position:
            self.checkpoints.append((self.position, self.hasher.state()))  # type: ignore[attr-defined]
        self._last_saved = self.position


class _HashFeed:
    """Hashes what it is given, in order, on its own thread: owned bytes, or ranges of the
    previous tar (read there). Errors surface from :meth:`finish`."""

    def __init__(
        self,
        hasher: _Hash,
        *,
        read_previous: Callable[[int, int], Iterator[bytes | memoryview]] | None,
        hashed_to: int,
        checkpoints: list[tuple[int, bytes]] | None,
    ) -> None:
        #: Its saved states, when kept (only with a resumable ``hasher``); only the feed's
        #: thread appends until :meth:`finish`.
        self.hashed = CheckpointedHash(hasher, hashed_to, checkpoints)
        self._read_previous = read_previous
        # Unbounded: a range costs a few bytes to queue, however long it is. New bytes are
        # bounded instead (:data:`_IN_FLIGHT`), so the writer waits only for memory.
        self._queue: queue.SimpleQueue[bytes | tuple[int, int] | None] = queue.SimpleQueue()
        self._in_flight = 0
        self._drained = threading.Condition()
        self._error: BaseException | None = None
        self._cancelled = False
        self._thread = threading.Thread(target=self._run, name="layer-hash", daemon=True)
        self._thread.start()

    def add(self, item: bytes | tuple[int, int]) -> None:
        if isinstance(item, bytes):
            with self._drained:
                while self._in_flight > _IN_FLIGHT and self._thread.is_alive():
                    self._drained.wait(0.5)
                self._in_flight += len(item)
        self._queue.put(item)

    def finish(self) -> str:
        """Wait for everything given so far to be hashed; the hex digest."""
        self._stop()
        if self._error is not None:
            raise self._error
        return self.hashed.hasher.hexdigest()

    def close(self) -> None:
        """Stop at once, leaving what is queued unhashed (the layer is being given up)."""
        self._cancelled = True
        self._stop()

    def _stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is not None or self._cancelled:
                continue  # drain, so the writer never blocks on a full queue
            try:
                if isinstance(item, tuple):
                    assert self._read_previous is not None
                    for chunk in self._read_previous(*item):
                        self.hashed.update(chunk)
                else:
                    self.hashed.update(item)
            except BaseException as err:  # re-raised by finish() on the writer's thread
                self._error = err
            if isinstance(item, bytes):
                with self._drained:
                    self._in_flight -= len(item)
                    self._drained.notify()


def foretold_pieces(patch_at: int, patch: bytes, start: int, end: int) -> list[bytes | tuple[int, int]]:
    """Bytes ``[start, end)`` of a foretold tar, the previous one with ``patch`` in place of
    as many of its bytes from ``patch_at`` on, in order: ranges of the previous tar
    (``(offset, length)``) and the patch's own bytes, as a hash feed takes them."""
    patch_end = patch_at + len(patch)
    pieces: list[bytes | tuple[int, int]] = []
    if start < min(end, patch_at):
        pieces.append((start, min(end, patch_at) - start))
    if max(start, patch_at) < min(end, patch_end):
        pieces.append(patch[max(start, patch_at) - patch_at : min(end, patch_end) - patch_at])
    if max(start, patch_end) < end:
        pieces.append((max(start, patch_end), end - max(start, patch_end)))
    return pieces


#: A range of the previous tar at least this long is hashed from its files mapped into
#: memory rather than copied out (a fifth faster; a map costs more than a short copy).
_MAP_AT_LEAST = 1 << 20


def mapped_reader(previous: PreviousLayer) -> Callable[[int, int], Iterator[bytes | memoryview]]:
    """``previous.read``, but long ranges come as views of their files mapped into memory
    where the reader can say where they lie (:attr:`PreviousLayer.extents`)."""
    extents = previous.extents
    if extents is None:
        return previous.read

    def read(offset: int, length: int) -> Iterator[bytes | memoryview]:
        if length < _MAP_AT_LEAST:
            yield from previous.read(offset, length)
            return
        for descriptor, file_offset, count in extents(offset, length):
            aligned = file_offset - file_offset % mmap.ALLOCATIONGRANULARITY
            with (
                mmap.mmap(
                    descriptor, count + file_offset - aligned, prot=mmap.PROT_READ, offset=aligned
                ) as mapped,
                memoryview(mapped) as whole,
            ):
                piece = whole[file_offset - aligned :]
                try:
                    yield piece
                finally:
                    piece.release()  # (the map closes next: nothing may point into it)

    return read


class TarSink:
    """Collects one layer tar: literal bytes into ``out``, references into :attr:`parts`.

    ``parts`` lists ``(literal, offset, length)``: a range of ``out`` when ``literal``, else
    of the previous layer's tar. Without ``previous`` every byte is literal, and ``out``
    receives the whole tar. Call :meth:`close` when done (or on failure): it stops the
    hashing thread.
    """

    def __init__(self, out: BinaryIO, *, previous: PreviousLayer | None, checkpoints: bool) -> None:
        self._out = out
        self._previous = previous
        self._keep_checkpoints = checkpoints
        #: Bytes of the tar so far, written or referenced.
        self.position = 0
        self.literal_size = 0
        self.parts: list[tuple[bool, int, int]] = []
        self._literal_hash = hashlib.sha256() if previous is not None else None
        self._feed: _HashFeed | None = None
        self._digest: str | None = None
        #: Small new bytes gathered for the feed.
        self._batch = bytearray()
        #: A referenced range not yet fed: (offset in the previous tar, length).
        self._pending: tuple[int, int] | None = None
        #: Until hashing starts, the new tar is the *foretold* one so far: the previous tar,
        #: but for ``previous.patch`` in place of its bytes ``[first, end)`` (see
        #: :mod:`prehash`).
        self._patch = previous.patch if previous is not None else b""
        at = previous.patch_at if previous is not None else 0
        self._changed = (at, at + len(self._patch)) if self._patch else (0, 0)
        if previous is None:
            self._start_hash(None)

    @property
    def checkpoints(self) -> list[tuple[int, bytes]]:
        """The saved hash states of this tar (complete once :meth:`diff_id` returned)."""
        return (self._feed.hashed.checkpoints if self._feed is not None else None) or []

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """New bytes of the tar."""
        count = len(data)
        if not count:
            return 0
        if self._feed is None:
            if (
                self._forecast_missed(count)
                and not self._repeats_foretold(data)
                and self._repeats_previous(data)
            ):
                self._forget_forecast()
            if not self._touches_change(self.position, count) and self._repeats_previous(data):
                self.reference(self.position, count)
                return count
            if self._repeats_foretold(data):
                self._keep(data)  # new bytes, but the foretold ones: hashing can still wait
                return count
        self._diverge()
        self._flush_pending()
        self._keep(data)
        if count < _SMALL:
            self._batch += data
            if len(self._batch) >= _BATCH:
                self._flush_batch()
        else:
            self._flush_batch()
            self._fed(bytes(data))  # the caller reuses its buffer
        return count

    def _keep(self, data: bytes | bytearray | memoryview) -> None:
        """Write ``data`` to the blob (it is not the previous tar's at this place)."""
        count = len(data)
        self._out.write(data)
        if self._literal_hash is not None:
            self._literal_hash.update(data)
        self._add_part(True, self.literal_size, count)
        self.literal_size += count
        self.position += count

    def write_or_reference(self, data: bytes, span: tuple[int, int] | None) -> None:
        """``data`` next: named as the previous tar's ``span`` when it holds exactly these
        bytes (a directory's unchanged header), else written."""
        if span is not None and span[1] == len(data) and self._previous_equals(span[0], data):
            self.reference(*span)
        else:
            self.write(data)

    def reference(self, offset: int, length: int) -> None:
        """The previous tar's bytes ``[offset, offset + length)`` come next in this one."""
        if self._previous is None:
            raise ValueError("no previous layer to reference")
        if not length:
            return
        self._add_part(False, offset, length)
        if self._feed is None and offset == self.position and self._forecast_missed(length):
            self._forget_forecast()
        if self._feed is None and offset == self.position and not self._touches_change(offset, length):
            self.position += length  # still the same bytes as the previous tar, unhashed
            return
        self._diverge()
        self.position += length
        if self._pending is not None and sum(self._pending) == offset:
            self._pending = (self._pending[0], self._pending[1] + length)
        else:
            self._flush_pending()
            self._pending = (offset, length)

    def diff_id(self) -> str:
        """``sha256:`` of the whole tar; call once, after the last byte."""
        if self._digest is None:
            self._diverge()
            self._flush_pending()
            self._flush_batch()
            assert self._feed is not None
            self._digest = "sha256:" + self._feed.finish()
        return self._digest

    def literal_digest(self) -> str:
        """``sha256:`` of the bytes written to ``out`` (the whole tar when nothing was reused)."""
        if self._literal_hash is None:
            return self.diff_id()
        return "sha256:" + self._literal_hash.hexdigest()

    def close(self) -> None:
        """Stop the hashing threads; after :meth:`diff_id` they have stopped already, and
        before it (the layer failed) what they have not hashed yet is dropped."""
        if self._feed is not None:
            self._feed.close()
        if self._previous is not None and self._previous.prehash is not None:
            self._previous.prehash.close()

    @property
    def spliced(self) -> bool:
        """Whether any range of the previous tar was reused."""
        return any(not literal for literal, _offset, _length in self.parts)

    def _add_part(self, literal: bool, offset: int, length: int) -> None:
        if self.parts:
            last_literal, last_offset, last_length = self.parts[-1]
            if last_literal == literal and last_offset + last_length == offset:
                self.parts[-1] = (literal, last_offset, last_length + length)
                return
        self.parts.append((literal, offset, length))

    def _start_hash(self, previous: PreviousLayer | None) -> None:
        """Start hashing at :attr:`position`, all of it so far the foretold tar (the previous
        one, but for its patch): from the latest saved state of it at or before."""
        position, changed_from = self.position, self._changed[0] if self._changed[1] else self.position
        # States of the previous tar hold for this one before its first changed byte; the
        # foretelling thread's, up to where this tar stopped matching.
        valid_to = min(position, changed_from)
        usable = [c for c in previous.index.checkpoints if c[0] <= valid_to] if previous else []
        if previous is not None and previous.prehash is not None:
            usable = sorted({*usable, *previous.prehash.stop(position)})
        state_offset, state = usable[-1] if usable else (0, None)
        hasher = _resumable(state) if state is not None else None
        if hasher is None:
            state_offset, usable = 0, []
            hasher = _resumable() if self._keep_checkpoints else None
        kept: list[tuple[int, bytes]] | None = None
        if self._keep_checkpoints and hasher is not None:
            kept = [c for c in usable if c[0] <= state_offset]
        self._feed = _HashFeed(
            hasher or hashlib.sha256(),
            read_previous=mapped_reader(previous) if previous is not None else None,
            hashed_to=state_offset,
            checkpoints=kept,
        )
        for piece in foretold_pieces(self._changed[0], self._patch, state_offset, position):
            self._feed.add(piece)

    def _forecast_missed(self, length: int) -> bool:
        """Whether ``length`` bytes next would reach the foretold patch with none of it met
        yet: if they are the previous tar's (the directory whose restamp was foretold kept
        its time after all), the new tar is still the previous one, and the foretold states
        describe another stream."""
        return self.position <= self._changed[0] and self._touches_change(self.position, length)

    def _forget_forecast(self) -> None:
        """Stop hashing the foretold tar: its states describe another stream."""
        self._patch, self._changed = b"", (0, 0)
        if self._previous is not None and self._previous.prehash is not None:
            self._previous.prehash.close()
            self._previous = replace(self._previous, prehash=None)

    def _touches_change(self, offset: int, length: int) -> bool:
        """Whether ``[offset, offset + length)`` meets the foretold patch."""
        first, end = self._changed
        return first < end and offset < end and first < offset + length

    def _repeats_foretold(self, data: bytes | bytearray | memoryview) -> bool:
        """Whether ``data``, which meets the foretold patch, is the foretold tar's bytes at
        :attr:`position`: the patch's where it lies, the previous tar's around it."""
        position, count = self.position, len(data)
        first, end = self._changed
        if not self._touches_change(position, count):
            return False
        view = memoryview(data).cast("B")
        before, after = max(0, first - position), max(0, position + count - end)
        inside = view[before : count - after]
        if self._patch[position + before - first : position + count - after - first] != inside:
            return False
        if before and not self._previous_equals(position, view[:before]):
            return False
        return not after or self._previous_equals(end, view[count - after :])

    def _repeats_previous(self, data: bytes | bytearray | memoryview) -> bool:
        """Whether small new bytes (a directory's header, say) are the previous tar's at the
        same place: then the two still share their beginning, and hashing can wait."""
        return len(data) <= _SMALL and self._previous_equals(self.position, data)

    def _previous_equals(self, offset: int, data: bytes | bytearray | memoryview) -> bool:
        """Whether the previous tar holds ``data`` at ``offset``."""
        previous = self._previous
        if previous is None or offset + len(data) > previous.index.size:
            return False
        view, compared = memoryview(data).cast("B"), 0
        for chunk in previous.read(offset, len(data)):
            if chunk != view[compared : compared + len(chunk)]:
                return False
            compared += len(chunk)
        return compared == len(data)

    def _diverge(self) -> None:
        if self._feed is None:
            self._start_hash(self._previous)

    def _fed(self, item: bytes | tuple[int, int]) -> None:
        assert self._feed is not None
        self._feed.add(item)

    def _flush_batch(self) -> None:
        if self._batch:
            self._fed(bytes(self._batch))
            self._batch.clear()

    def _flush_pending(self) -> None:
        if self._pending is not None:
            self._flush_batch()
            self._fed(self._pending)
            self._pending = None
