"""A level as horizontal strips (one tile row each), fetched ahead concurrently: what writers pull.

Memory is bounded by ``lookahead`` strips of ``width × tile_height`` pixels, whatever the image height:
as many as fit in a quarter of the memory budget (:mod:`dezoomify_nb.budget`), at least one. A level whose
strips cannot fit the budget at all is refused before the download (``ZoomableImage.save``).

Locally, rows are fetched on the private I/O loop (:mod:`dezoomify_nb.net.loop`). When a
``dask.distributed`` client is attached to the store's token (:func:`attach_cluster`, what
``save(client=...)`` does), each row is a task: the store (a recipe) goes to a worker, which fetches and
decodes the row's tiles with its own connection pool and sends back the strip and the tile outcomes; the
writer, here, only encodes. Progress and failures are re-emitted under the store's token.
"""

from __future__ import annotations

import asyncio
import copy
import os
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any

import numpy as np
from PIL import Image as PILImage

from ..budget import memory_budget
from ..model import Level
from ..net import loop
from . import events
from .store import TilePyramidStore

#: memory allowed for strips fetched ahead of the writer (at most; a quarter of the memory budget when less)
LOOKAHEAD_BYTES = 256 * 1024 * 1024
#: tiles decoded at once, at most (the threads of the event loop's default executor)
DECODERS = min(32, (os.cpu_count() or 1) + 4)


def strip_bytes(level: Level, width: int, height: int, channels: int) -> int:
    """Bytes of the largest strip of a ``width × height`` window of ``level`` (one row of tiles)."""
    return min(level.tile_height, height) * width * channels


def tile_buffers(level: Level, tiles: int, channels: int, parallelism: int) -> int:
    """Bytes of the tiles being decoded at once: each as large as the level declares (with its overlap),
    up to Pillow's decompression-bomb limit (larger tiles are refused), as a Pillow image and an array."""
    px = min((level.tile_width + 2 * level.overlap) * (level.tile_height + 2 * level.overlap),
             PILImage.MAX_IMAGE_PIXELS or 1 << 62)
    return min(parallelism, tiles, DECODERS) * px * (4 + channels)

_clusters: dict[str, Any] = {}
_clusters_lock = threading.Lock()

#: a tile's outcome as a worker reports it: (ok, url, reason or None, from the tile cache)
Outcome = tuple[bool, str, str | None, bool]


@contextmanager
def attach_cluster(token: str, client: Any) -> Iterator[None]:
    """While inside, every :class:`LevelStrips` over a store with ``token`` fetches on ``client``'s workers."""
    with _clusters_lock:
        _clusters[token] = client
    try:
        yield
    finally:
        with _clusters_lock:
            _clusters.pop(token, None)


def cluster_for(token: str) -> Any | None:
    with _clusters_lock:
        return _clusters.get(token)


class LevelStrips:
    """:class:`~dezoomify_nb.writers.base.StripSource` over level ``k`` of a :class:`TilePyramidStore`.

    ``region=(x, y, w, h)`` in this level's pixels streams only that window (only its tiles are fetched).
    ``client``: a ``distributed.Client`` whose workers fetch and decode the rows (default: the one
    attached to the store's token, if any, else this process).
    """

    def __init__(
        self,
        store: TilePyramidStore,
        k: int,
        *,
        lookahead: int | None = None,
        region: tuple[int, int, int, int] | None = None,
        client: Any | None = None,
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
        self._client = client
        self._cols = range(x // lv.tile_width, -(-(x + w) // lv.tile_width))
        self._rows = range(y // lv.tile_height, -(-(y + h) // lv.tile_height))
        self._lookahead = lookahead

    @property
    def client(self) -> Any | None:
        """The ``distributed.Client`` fetching the rows (given, or attached to the token), or None."""
        return self._client if self._client is not None else cluster_for(self.store.token)

    def lookahead(self, client: Any | None = None) -> int:
        """Rows fetched ahead of the writer: enough to keep every connection (on a cluster: every worker
        thread) busy, within :data:`LOOKAHEAD_BYTES`."""
        if self._lookahead is not None:
            return self._lookahead
        budget = memory_budget()
        room = LOOKAHEAD_BYTES if budget is None else min(LOOKAHEAD_BYTES, budget // 4)
        fit = max(1, room // max(1, self.strip_bytes))
        want = max(2, -(-2 * self.store.net.parallelism // len(self._cols)))
        if client is not None:
            want = max(want, 1 + sum(client.nthreads().values()))
        return min(want, fit)

    @property
    def n_tiles(self) -> int:
        return len(self._cols) * len(self._rows)

    @property
    def strip_bytes(self) -> int:
        """Bytes of the largest strip (one row of tiles across the window)."""
        return strip_bytes(self.level, self.width, self.height, self.channels)

    @property
    def first_tile(self) -> tuple[int, int]:
        """``(col, row)`` of the first tile read (where the colour profile is taken from)."""
        return self._cols[0], self._rows[0]

    async def _row(self, row: int) -> np.ndarray:
        """Tile row ``row`` as a strip; each tile is copied into it by the thread that decoded it (the
        event loop only schedules requests). A failed tile (``on_error="fill"``) stays zeros."""
        lv = self.level
        rx, ry, rw, rh = self.region
        y0 = max(ry, row * lv.tile_height)
        y1 = min(ry + rh, (row + 1) * lv.tile_height)
        strip = np.zeros((y1 - y0, rw, self.channels), dtype=np.uint8)  # pages zeroed on first touch

        def placer(col: int) -> Callable[[np.ndarray], None]:
            x0 = max(rx, col * lv.tile_width)
            x1 = min(rx + rw, (col + 1) * lv.tile_width)
            tx, ty = x0 - col * lv.tile_width, y0 - row * lv.tile_height

            def place(tile: np.ndarray) -> None:  # a tile served smaller than its box leaves zeros
                got = tile[ty : ty + y1 - y0, tx : tx + x1 - x0]
                strip[: got.shape[0], x0 - rx : x0 - rx + got.shape[1]] = got

            return place

        await asyncio.gather(*(self.store.fetch_tile(self.k, col, row, place=placer(col)) for col in self._cols))
        return strip

    def strips(self) -> Iterator[np.ndarray]:
        client = self.client
        if client is not None:
            yield from self._cluster_strips(client)
            return
        lookahead = self.lookahead()
        io_loop = loop.get_loop()
        pending: deque[Future[np.ndarray]] = deque()
        rows = iter(self._rows)
        left = len(self._rows)
        try:
            while left or pending:
                while left and len(pending) < lookahead:
                    pending.append(asyncio.run_coroutine_threadsafe(self._row(next(rows)), io_loop))
                    left -= 1
                yield pending.popleft().result()
        finally:
            for fut in pending:
                fut.cancel()

    def _cluster_strips(self, client: Any) -> Iterator[np.ndarray]:
        lookahead = self.lookahead(client)
        token = self.store.token
        pending: deque[Any] = deque()
        rows = iter(self._rows)
        left = len(self._rows)
        try:
            while left or pending:
                while left and len(pending) < lookahead:
                    row = next(rows)
                    pending.append(client.submit(
                        remote_row, self.store, self.k, row, self.region, pure=False,
                        key=f"dezoomify_nb-strip-{token[:12]}-{self.k}-{row}-{uuid.uuid4().hex[:8]}"))
                    left -= 1
                strip, outcomes = pending.popleft().result()
                for ok, url, reason, cached in outcomes:
                    events.emit(token, ok, url, None if ok else RuntimeError(reason), cached=cached)
                yield strip
        finally:
            if pending:
                client.cancel(list(pending))


def remote_row(
    store: TilePyramidStore, k: int, row: int, region: tuple[int, int, int, int]
) -> tuple[np.ndarray, list[Outcome]]:
    """Run on a dask worker: tile row ``row`` of level ``k`` as a strip, and each tile's outcome.

    Tiles go through the worker's own clients (one pool per process) and its own tile-cache access; a
    fresh token keeps this task's outcomes apart from other tasks running on the same worker.
    """
    local = copy.copy(store)  # a recipe copy: its own memo and token
    local.token = uuid.uuid4().hex
    outcomes: list[Outcome] = []

    def listener(ok: bool, url: str, error: Exception | None) -> None:
        outcomes.append((ok, url, None if error is None else str(error), False))

    unsubscribe = events.subscribe(local.token, listener)
    try:
        strip = loop.run(LevelStrips(local, k, region=region, lookahead=1)._row(row))
    finally:
        unsubscribe()
        cached = events.stats(local.token).cached
        events.forget(local.token)
    # the listener does not see which tiles came from the cache, only how many: mark that many
    marked: list[Outcome] = []
    for ok, url, reason, _ in outcomes:
        from_cache = ok and cached > 0
        cached -= from_cache
        marked.append((ok, url, reason, from_cache))
    return strip, marked
