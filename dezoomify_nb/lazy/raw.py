"""Tiles as served (encoded bytes) — for byte-for-byte copies — and the metadata they carry.

Everything goes through :meth:`TilePyramidStore.fetch_tile`, so the tile cache serves these reads too
and progress and failures are reported under the store's token, exactly like decoded reads.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future

import numpy as np

from ..budget import memory_budget
from ..imageformats import image_format
from ..net import loop
from .decode import tile_metadata
from .store import TilePyramidStore
from .strips import strip_bytes


def peek_metadata(store: TilePyramidStore, k: int = 0, col: int = 0, row: int = 0) -> tuple[bytes | None, bytes | None]:
    """``(icc_profile, exif)`` of the first tile of level ``k`` (``(None, None)`` if it cannot be read).

    No extra request: the tile is kept for its read by the download (or comes from the tile cache).
    """
    data = loop.run(store.peek(k, col, row))
    return (None, None) if data is None else tile_metadata(data)


def tile_format(data: bytes) -> str | None:
    """Pillow's format name of encoded image bytes (``"JPEG"``, ``"PNG"``…), or None (also for a format
    that is not allowed, see :mod:`dezoomify_nb.imageformats`)."""
    return image_format(data)


class RawLevel:
    """:class:`~dezoomify_nb.writers.base.RawTiles` over level ``k`` of a store (overlap must be 0).

    ``halver`` (set by the pyramid) receives each decoded row, so that the level below can be computed
    from the same download.
    """

    def __init__(self, store: TilePyramidStore, k: int, *, lookahead: int = 2, owner=None) -> None:
        lv = store.image.levels[k]
        if lv.overlap:
            raise ValueError("raw tiles with overlap cannot be copied")
        self.store, self.k, self.level = store, k, lv
        self.width, self.height = lv.width, lv.height
        self.tile_width, self.tile_height = lv.tile_width, lv.tile_height
        self.cols, self.rows = lv.cols, lv.rows
        self.channels = store.channels
        want = max(lookahead, -(-2 * store.net.parallelism // lv.cols))
        budget = memory_budget()  # rows of decoded pixels fetched ahead: within a quarter of the budget
        fit = max(1, (budget // 4) // strip_bytes(lv, lv.width, lv.height, self.channels)) if budget else want
        self.lookahead = min(want, fit)
        self.owner = owner
        self._format: str | None | bool = False

    @property
    def format(self) -> str | None:
        """Encoding of the tiles, from the first tile (one request unless cached)."""
        if self._format is False:
            data = loop.run(self.store.peek(self.k))
            self._format = None if data is None else tile_format(data)
        return self._format  # type: ignore[return-value]

    async def _row(self, row: int, decode: bool) -> tuple[list[bytes | None], np.ndarray | None]:
        lv = self.level
        h = min(lv.tile_height, lv.height - row * lv.tile_height)
        strip = np.zeros((h, lv.width, self.channels), dtype=np.uint8) if decode else None

        def placer(col: int) -> Callable[[np.ndarray], None] | None:
            if strip is None:
                return None
            x = col * lv.tile_width
            w = min(lv.tile_width, lv.width - x)

            def place(arr: np.ndarray) -> None:  # in the decoding thread, not on the event loop
                got = arr[:h, :w]  # a tile served smaller than its box leaves zeros
                strip[: got.shape[0], x : x + got.shape[1]] = got

            return place

        got = await asyncio.gather(*(self.store.fetch_tile(self.k, col, row, decode=decode, place=placer(col))
                                     for col in range(lv.cols)))
        return [g[0] for g in got], strip

    def tile_rows(self, decode: bool = False) -> Iterator[tuple[list[bytes | None], np.ndarray | None]]:
        halver = getattr(self.owner, "halver", None)
        decode = decode or halver is not None
        io_loop = loop.get_loop()
        pending: deque[Future] = deque()
        next_row = 0
        try:
            while next_row < self.rows or pending:
                while next_row < self.rows and len(pending) < self.lookahead:
                    pending.append(asyncio.run_coroutine_threadsafe(self._row(next_row, decode), io_loop))
                    next_row += 1
                tiles, strip = pending.popleft().result()
                if halver is not None and strip is not None:
                    halver.push(strip)
                yield tiles, strip
            if halver is not None:
                halver.finish()
        finally:
            for fut in pending:
                fut.cancel()
