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
    """:class:`~dezoomify_nb.writers.base.StripSource` over level ``k`` of a :class:`TilePyramidStore`.

    ``region=(x, y, w, h)`` in this level's pixels streams only that window (only its tiles are fetched).
    """

    def __init__(
        self,
        store: TilePyramidStore,
        k: int,
        *,
        lookahead: int | None = None,
        region: tuple[int, int, int, int] | None = None,
    ) -> None:
        self.store = store
        self.k = k
        self.level = lv = store.image.levels[k]
        x, y, w, h = region if region is not None else (0, 0, lv.width, lv.height)
        if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > lv.width or y + h > lv.height:
            raise ValueError(f"region {region} is not inside the {lv.width}x{lv.height} level")
        self.region = (x, y, w, h)
        self.width, self.height = w, h
        self.channels = store.channels
        self.mode = store.mode
        self.icc_profile: bytes | None = None
        self._cols = range(x // lv.tile_width, -(-(x + w) // lv.tile_width))
        self._rows = range(y // lv.tile_height, -(-(y + h) // lv.tile_height))
        if lookahead is None:
            # enough tile rows in flight to keep every connection busy, within the memory budget
            want = max(2, -(-2 * store.net.parallelism // len(self._cols)))
            fit = max(1, LOOKAHEAD_BYTES // max(1, w * lv.tile_height * self.channels))
            lookahead = min(want, fit)
        self.lookahead = lookahead

    @property
    def n_tiles(self) -> int:
        return len(self._cols) * len(self._rows)

    @property
    def first_tile(self) -> tuple[int, int]:
        """``(col, row)`` of the first tile read (where the colour profile is taken from)."""
        return self._cols[0], self._rows[0]

    async def _row(self, row: int) -> np.ndarray:
        lv = self.level
        rx, ry, rw, rh = self.region
        tiles = await asyncio.gather(*(self.store.read_tile(self.k, col, row) for col in self._cols))
        y0 = max(ry, row * lv.tile_height)
        y1 = min(ry + rh, (row + 1) * lv.tile_height)
        strip = np.zeros((y1 - y0, rw, self.channels), dtype=np.uint8)
        for col, tile in zip(self._cols, tiles, strict=True):
            if tile is None:
                continue
            x0 = max(rx, col * lv.tile_width)
            x1 = min(rx + rw, (col + 1) * lv.tile_width)
            tx, ty = x0 - col * lv.tile_width, y0 - row * lv.tile_height
            strip[:, x0 - rx : x1 - rx] = tile[ty : ty + y1 - y0, tx : tx + x1 - x0]
        return strip

    def strips(self) -> Iterator[np.ndarray]:
        io_loop = loop.get_loop()
        pending: deque[Future[np.ndarray]] = deque()
        rows = iter(self._rows)
        left = len(self._rows)
        try:
            while left or pending:
                while left and len(pending) < self.lookahead:
                    pending.append(asyncio.run_coroutine_threadsafe(self._row(next(rows)), io_loop))
                    left -= 1
                yield pending.popleft().result()
        finally:
            for fut in pending:
                fut.cancel()
