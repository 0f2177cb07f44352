"""Tiles as served (encoded bytes) — for byte-for-byte copies — and the metadata they carry.

Everything goes through :func:`dezoomify_nb.net.fetch`, so a tile cache plugged into ``fetch`` serves
these reads too (a byte copy then costs no second request). Progress and failures are reported in
:mod:`~dezoomify_nb.lazy.events` under the store's token, exactly like decoded reads.
"""

from __future__ import annotations

import asyncio
import io
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future
from functools import partial

import numpy as np
from PIL import Image as PILImage

from ..errors import FetchError
from ..model import Level
from ..net import fetch, loop
from . import events
from .decode import decode_tile, open_image, tile_metadata
from .store import TilePyramidStore


def _postprocess(level: Level, data: bytes) -> bytes:
    post = getattr(level, "postprocess", None)
    return post(data) if post is not None else data


def _validate(data: bytes, level: Level) -> bytes:
    """The served bytes, after checking that they are an image of a sane size (else: retried)."""
    data = _postprocess(level, data)
    limit = 4 * (max(level.tile_width, level.tile_height) + 2 * level.overlap) + 64
    open_image(data, limit).close()
    return data


def _validate_and_decode(data: bytes, level: Level, col: int, row: int, mode: str) -> tuple[bytes, np.ndarray]:
    # decode_tile applies the level's postprocessing itself (when the level has one)
    return _postprocess(level, data), decode_tile(data, level, col, row, mode)


async def fetch_raw_tile(store: TilePyramidStore, k: int, col: int, row: int, *, decode: bool = False,
                         report: bool = True) -> tuple[bytes | None, np.ndarray | None]:
    """Tile ``(col, row)`` of level ``k`` as served: ``(bytes, decoded chunk or None)``.

    ``(None, None)`` when it failed and the store's ``on_error`` is ``"fill"``.
    """
    lv = store.image.levels[k]
    url = lv.tile_url(col, row)
    check = (partial(_validate_and_decode, level=lv, col=col, row=row, mode=store.mode) if decode
             else partial(_validate, level=lv))
    try:
        got = await fetch(url, store.net, level_headers=lv.headers, check=check)
    except FetchError as exc:
        if report:
            events.emit(store.token, False, url, exc)
        if store.on_error == "raise":
            raise
        return None, None
    if report:
        events.emit(store.token, True, url)
    return got if decode else (got, None)  # type: ignore[return-value]


def peek_metadata(store: TilePyramidStore, k: int = 0) -> tuple[bytes | None, bytes | None]:
    """``(icc_profile, exif)`` of the first tile of level ``k`` (``(None, None)`` if it cannot be read).

    One request (none with a tile cache that already holds the tile); not counted as progress.
    """
    lv = store.image.levels[k]
    try:
        data = loop.run(fetch(lv.tile_url(0, 0), store.net, level_headers=lv.headers,
                              check=partial(_postprocess, lv)))
    except FetchError:
        return None, None
    return tile_metadata(data)  # type: ignore[arg-type]


def tile_format(data: bytes) -> str | None:
    """Pillow's format name of encoded image bytes (``"JPEG"``, ``"PNG"``…), or None."""
    try:
        with PILImage.open(io.BytesIO(data)) as im:
            return im.format
    except Exception:
        return None


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
        self.lookahead = max(lookahead, -(-2 * store.net.parallelism // lv.cols))
        self.owner = owner
        self._format: str | None | bool = False

    @property
    def format(self) -> str | None:
        """Encoding of the tiles, from the first tile (one request unless cached)."""
        if self._format is False:
            try:
                data = loop.run(fetch(self.level.tile_url(0, 0), self.store.net, level_headers=self.level.headers,
                                      check=partial(_postprocess, self.level)))
                self._format = tile_format(data)  # type: ignore[arg-type]
            except FetchError:
                self._format = None
        return self._format  # type: ignore[return-value]

    async def _row(self, row: int, decode: bool) -> tuple[list[bytes | None], np.ndarray | None]:
        lv = self.level
        got = await asyncio.gather(*(fetch_raw_tile(self.store, self.k, col, row, decode=decode)
                                     for col in range(lv.cols)))
        tiles = [g[0] for g in got]
        if not decode:
            return tiles, None
        h = min(lv.tile_height, lv.height - row * lv.tile_height)
        strip = np.zeros((h, lv.width, self.channels), dtype=np.uint8)
        for col, (_, arr) in enumerate(got):
            if arr is not None:
                x = col * lv.tile_width
                w = min(lv.tile_width, lv.width - x)
                strip[:, x : x + w] = arr[:h, :w]
        return tiles, strip

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
