"""A level as horizontal strips (one tile row each), fetched ahead concurrently: what writers pull.

Memory is bounded by ``lookahead`` strips of ``width × tile_height`` pixels, whatever the image height.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future

import numpy as np

from ..net import loop
from .store import TilePyramidStore

#: memory allowed for strips fetched ahead of the writer
LOOKAHEAD_BYTES = 256 * 1024 * 1024


class LevelStrips:
    """:class:`~dezoomify_nb.writers.base.StripSource` over level ``k`` of a :class:`TilePyramidStore`."""

    def __init__(self, store: TilePyramidStore, k: int, *, lookahead: int | None = None) -> None:
        self.store = store
        self.k = k
        self.level = lv = store.image.levels[k]
        self.width, self.height = lv.width, lv.height
        self.channels = store.channels
        self.mode = store.mode
        self.icc_profile: bytes | None = None
        if lookahead is None:
            # enough tile rows in flight to keep every connection busy, within the memory budget
            want = max(2, -(-2 * store.net.parallelism // lv.cols))
            fit = max(1, LOOKAHEAD_BYTES // max(1, lv.width * lv.tile_height * self.channels))
            lookahead = min(want, fit)
        self.lookahead = lookahead

    @property
    def n_tiles(self) -> int:
        return self.level.n_tiles

    async def _row(self, row: int) -> np.ndarray:
        lv = self.level
        tiles = await asyncio.gather(*(self.store.read_tile(self.k, col, row) for col in range(lv.cols)))
        h = min(lv.tile_height, lv.height - row * lv.tile_height)
        strip = np.zeros((h, lv.width, self.channels), dtype=np.uint8)
        for col, tile in enumerate(tiles):
            if tile is not None:
                x = col * lv.tile_width
                w = min(lv.tile_width, lv.width - x)
                strip[:, x : x + w] = tile[:h, :w]
        return strip

    def strips(self) -> Iterator[np.ndarray]:
        io_loop = loop.get_loop()
        pending: deque[Future[np.ndarray]] = deque()
        next_row = 0
        rows = self.level.rows
        try:
            while next_row < rows or pending:
                while next_row < rows and len(pending) < self.lookahead:
                    pending.append(asyncio.run_coroutine_threadsafe(self._row(next_row), io_loop))
                    next_row += 1
                yield pending.popleft().result()
        finally:
            for fut in pending:
                fut.cancel()
