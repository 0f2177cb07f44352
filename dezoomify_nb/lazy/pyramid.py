"""A downloaded level as a :class:`~dezoomify_nb.writers.base.LevelSource`: strips, lower levels, raw tiles.

Lower levels are the **remote** levels when their size is exactly ``ceil(W / 2**i) × ceil(H / 2**i)``
(IIIF, Deep Zoom): their tiles are downloaded (few: a third of the chosen level's count at most) and,
without overlap, offered as raw bytes for byte-for-byte copies. From the first size that no remote level
has (Zoomify's floor-rounded sizes, generic single-level sources), the levels are computed by 2×2 means
while the level above is read, spilled to a temporary file (see :mod:`dezoomify_nb.writers.pyramid`).

The lower remote levels are downloaded **while** the chosen level is written (:class:`LowerLevelPrefetch`,
started by the first read of the chosen level's pixels): one background thread fetches them in turn
into a temporary spill file each (memory: one level's ``lookahead`` rows), so the writer's encoding and
these downloads overlap instead of running one after the other. Writers that copy raw tiles and never
read the chosen level's pixels (IIIF JPEG) do not start it: the lower levels then stream as before.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np

from ..errors import WriterError
from ..writers.pyramid import SPILL_READ_BYTES, SourceLevel, chain, pyramid_sizes
from .raw import RawLevel, peek_metadata
from .store import TilePyramidStore
from .strips import LevelStrips


class _Spill:
    """One lower level's strips, prefetched into a temporary file (see :class:`LowerLevelPrefetch`)."""

    def __init__(self, strips: LevelStrips) -> None:
        self.source = strips
        self.width, self.height, self.channels = strips.width, strips.height, strips.channels
        self.mode, self.icc_profile = strips.mode, strips.icc_profile
        self.file: BinaryIO | None = None
        self.rows = 0
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.prefetch: LowerLevelPrefetch | None = None

    def strips(self) -> Iterator[np.ndarray]:
        if self.prefetch is None or not self.prefetch.started:
            yield from self.source.strips()  # not prefetched: streamed as usual
            return
        while not self.done.wait(0.1):
            if self.prefetch.stopped:
                raise WriterError("pyramid: the lower levels' download was stopped")
        if self.error is not None:
            raise self.error
        assert self.file is not None
        rowbytes = self.width * self.channels
        step = max(1, SPILL_READ_BYTES // rowbytes)
        self.file.seek(0)
        for y in range(0, self.rows, step):
            n = min(step, self.rows - y)
            buf = bytearray(n * rowbytes)
            if self.file.readinto(buf) != len(buf):
                raise WriterError("pyramid: the spill file is short")
            yield np.frombuffer(buf, dtype=np.uint8).reshape(n, self.width, self.channels)

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


class LowerLevelPrefetch:
    """Downloads the lower remote levels, in turn, into spill files on a background thread."""

    def __init__(self, spills: list[_Spill]) -> None:
        self.spills = spills
        for sp in spills:
            sp.prefetch = self
        self.started = False
        self.stopped = False
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self.started or self.stopped or not self.spills:
                return
            self.started = True
            self._thread = threading.Thread(target=self._run, name="dezoomify_nb-prefetch", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        for sp in self.spills:
            try:
                if self.stopped:
                    raise WriterError("pyramid: the lower levels' download was stopped")
                sp.file = tempfile.TemporaryFile(prefix="dezoomify-level-")
                strips = sp.source.strips()
                try:
                    for strip in strips:
                        if self.stopped:
                            raise WriterError("pyramid: the lower levels' download was stopped")
                        sp.file.write(np.ascontiguousarray(strip, dtype=np.uint8).data)
                        sp.rows += strip.shape[0]
                finally:
                    strips.close()  # cancels the rows fetched ahead
            except BaseException as e:  # re-raised by the writer's read of this level
                sp.error = e
            finally:
                sp.done.set()

    def stop(self) -> None:
        with self._lock:
            self.stopped = True
        if self._thread is not None:
            self._thread.join()
        for sp in self.spills:
            sp.close()


class _Starting:
    """The chosen level's strips; the first read starts the lower levels' prefetch."""

    def __init__(self, strips: LevelStrips, prefetch: LowerLevelPrefetch) -> None:
        self.source, self.prefetch = strips, prefetch
        self.width, self.height, self.channels = strips.width, strips.height, strips.channels
        self.mode, self.icc_profile = strips.mode, strips.icc_profile

    def strips(self) -> Iterator[np.ndarray]:
        self.prefetch.start()
        yield from self.source.strips()

    def close(self) -> None:
        self.prefetch.stop()


class RemoteLevelSource:
    """Level ``k`` of a store, streamed as strips, with :meth:`pyramid` for pyramid writers."""

    def __init__(self, store: TilePyramidStore, k: int, *, metadata: bool = True) -> None:
        self.store, self.k = store, k
        self.level = lv = store.image.levels[k]
        self.width, self.height = lv.width, lv.height
        self.channels, self.mode = store.channels, store.mode
        self.icc_profile: bytes | None = None
        self.exif: bytes | None = None
        if metadata:
            self.icc_profile, self.exif = peek_metadata(store, k)
        self._strips = self._level_strips(k)

    def _level_strips(self, j: int) -> LevelStrips:
        s = LevelStrips(self.store, j)
        s.icc_profile = self.icc_profile
        return s

    def strips(self) -> Iterator[np.ndarray]:
        return self._strips.strips()

    def _remote_index(self, size: tuple[int, int]) -> int | None:
        for j in range(self.k, len(self.store.image.levels)):
            if self.store.image.levels[j].size == size:
                return j
        return None

    def remote_levels(self, tile: int = 256) -> list[int]:
        """Indices of the remote levels that :meth:`pyramid` downloads (the chosen one first)."""
        out = []
        for i, size in enumerate(pyramid_sizes(self.width, self.height, tile)):
            j = self.k if i == 0 else self._remote_index(size)
            if j is None:
                break
            out.append(j)
        return out

    def expected_tiles(self, tile: int = 256) -> int:
        """Tiles a pyramid writer downloads (for the progress total)."""
        return sum(self.store.image.levels[j].n_tiles for j in self.remote_levels(tile))

    def pyramid(self, tile: int) -> list:
        sizes = pyramid_sizes(self.width, self.height, tile)
        remote = self.remote_levels(tile)
        spills = [_Spill(self._level_strips(j)) for j in remote[1:]]
        prefetch = LowerLevelPrefetch(spills)
        levels: list = []
        for i, j in enumerate(remote):
            src = _Starting(self._strips, prefetch) if i == 0 else spills[i - 1]
            lv = SourceLevel(src)
            if self.store.image.levels[j].overlap == 0:
                lv.raw = RawLevel(self.store, j, owner=lv)
            levels.append(lv)
        if len(levels) < len(sizes):
            chain(levels, sizes, len(levels), self.mode, self.icc_profile)
        return levels
