"""A downloaded level as a :class:`~dezoomify_nb.writers.base.LevelSource`: strips, lower levels, raw tiles.

Lower levels are the **remote** levels when their size is exactly ``ceil(W / 2**i) × ceil(H / 2**i)``
(IIIF, Deep Zoom): their tiles are downloaded (few: a third of the chosen level's count at most) and,
without overlap, offered as raw bytes for byte-for-byte copies. From the first size that no remote level
has (Zoomify's floor-rounded sizes, generic single-level sources), the levels are computed by 2×2 means
while the level above is read, spilled to a temporary file (see :mod:`dezoomify_nb.writers.pyramid`).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..writers.pyramid import SourceLevel, chain, pyramid_sizes
from .raw import RawLevel, peek_metadata
from .store import TilePyramidStore
from .strips import LevelStrips


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
        levels: list = []
        for j in remote:
            src = self._strips if j == self.k else self._level_strips(j)
            lv = SourceLevel(src)
            if self.store.image.levels[j].overlap == 0:
                lv.raw = RawLevel(self.store, j, owner=lv)
            levels.append(lv)
        if len(levels) < len(sizes):
            chain(levels, sizes, len(levels), self.mode, self.icc_profile)
        return levels
