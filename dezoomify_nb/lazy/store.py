"""A remote tile pyramid as a read-only zarr 3 Store: one array per level, one chunk per tile.

The store is a picklable *recipe* (the :class:`~dezoomify_nb.model.Image`, the
:class:`~dezoomify_nb.net.NetConfig`, the pixel mode): live HTTP clients come from the per-process,
per-loop registry in :mod:`dezoomify_nb.net.clients`, so a store unpickled on a dask worker builds its
own connection pool.

Layout: ``zarr.json`` (root group, multiscales attributes), ``{k}/zarr.json`` (level ``k``, ``0`` = full
resolution, shape ``(H, W, C)``, chunks ``(tile_h, tile_w, C)``) and chunk keys ``{k}/c/{row}/{col}/0``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, Literal

import numpy as np
from zarr.abc.store import ByteRequest, OffsetByteRequest, RangeByteRequest, Store, SuffixByteRequest
from zarr.core.buffer import Buffer, BufferPrototype

from ..cache import TileCache, source_key
from ..errors import FetchError, TileFetchError
from ..model import Image
from ..net import NetConfig, fetch
from . import events
from .decode import channels_of, decode_tile, open_image, tile_size_limit

OnError = Literal["raise", "fill"]

log = logging.getLogger("dezoomify_nb.store")


def _slice(data: bytes, byte_range: ByteRequest | None) -> bytes:
    if byte_range is None:
        return data
    if isinstance(byte_range, RangeByteRequest):
        return data[byte_range.start : byte_range.end]
    if isinstance(byte_range, OffsetByteRequest):
        return data[byte_range.offset :]
    if isinstance(byte_range, SuffixByteRequest):
        return data[-byte_range.suffix :] if byte_range.suffix else b""
    raise TypeError(f"unexpected byte range {byte_range!r}")


class TilePyramidStore(Store):
    """Read-only zarr Store whose chunks are the tiles of a remote image, fetched on demand.

    ``on_error="raise"`` turns a tile that fails after its retries into a
    :class:`~dezoomify_nb.errors.TileFetchError`; ``"fill"`` leaves that chunk empty (zeros) and records
    the failure in :mod:`dezoomify_nb.lazy.events` under :attr:`token` (what the writers use).
    """

    supports_writes = False
    supports_deletes = False
    supports_partial_writes = False
    supports_listing = True

    def __init__(
        self,
        image: Image,
        net: NetConfig | None = None,
        *,
        mode: str = "RGB",
        on_error: OnError = "raise",
        token: str | None = None,
        cache: TileCache | None = None,
    ) -> None:
        super().__init__(read_only=True)
        channels_of(mode)
        if on_error not in ("raise", "fill"):
            raise ValueError("on_error must be 'raise' or 'fill'")
        self.image = image
        self.net = net or NetConfig()
        self.mode = mode
        self.on_error: OnError = on_error
        self.token = token or uuid.uuid4().hex
        self.cache = cache
        self.source = source_key(image)
        self._memo: dict[tuple[int, int, int], bytes] = {}
        self._meta = self._metadata()

    # --- recipe identity -------------------------------------------------------------------------
    def _recipe(self) -> tuple[Any, ...]:
        return (self.image, self.net, self.mode, self.on_error, self.cache)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TilePyramidStore) and self._recipe() == other._recipe()

    def __hash__(self) -> int:
        return hash(self._recipe())

    def __dask_tokenize__(self) -> tuple[Any, ...]:
        return ("dezoomify_nb.TilePyramidStore", repr(self._recipe()))

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_meta", None)
        state["_memo"] = {}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._meta = self._metadata()

    def with_mode(self, mode: str) -> TilePyramidStore:
        return TilePyramidStore(
            self.image, self.net, mode=mode, on_error=self.on_error, token=self.token, cache=self.cache
        )

    # --- synthetic metadata ----------------------------------------------------------------------
    @property
    def channels(self) -> int:
        return channels_of(self.mode)

    def _metadata(self) -> dict[str, bytes]:
        c = self.channels
        full = self.image.levels[0]
        datasets = []
        meta: dict[str, bytes] = {}
        for k, lv in enumerate(self.image.levels):
            meta[f"{k}/zarr.json"] = json.dumps(
                {
                    "zarr_format": 3,
                    "node_type": "array",
                    "shape": [lv.height, lv.width, c],
                    "data_type": "uint8",
                    "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [lv.tile_height, lv.tile_width, c]}},
                    "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
                    "fill_value": 0,
                    "codecs": [{"name": "bytes"}],
                    "attributes": {"level": k, "name": lv.describe()},
                    "dimension_names": ["y", "x", "c"],
                }
            ).encode()
            datasets.append(
                {
                    "path": str(k),
                    "coordinateTransformations": [
                        {"type": "scale", "scale": [full.height / lv.height, full.width / lv.width, 1.0]}
                    ],
                }
            )
        meta["zarr.json"] = json.dumps(
            {
                "zarr_format": 3,
                "node_type": "group",
                "attributes": {
                    "title": self.image.title,
                    "source": self.image.url,
                    "dezoomer": self.image.dezoomer,
                    "multiscales": [
                        {
                            "name": self.image.title or "image",
                            "axes": [
                                {"name": "y", "type": "space"},
                                {"name": "x", "type": "space"},
                                {"name": "c", "type": "channel"},
                            ],
                            "datasets": datasets,
                        }
                    ],
                },
            }
        ).encode()
        return meta

    # --- reading ---------------------------------------------------------------------------------
    def _parse_chunk_key(self, key: str) -> tuple[int, int, int] | None:
        parts = key.split("/")
        if len(parts) < 2 or parts[1] != "c":
            return None  # not a chunk key (e.g. a metadata document we do not have)
        if len(parts) != 5 or not all(p.isdigit() for p in (parts[0], *parts[2:])):
            raise KeyError(f"malformed chunk key {key!r}")
        k, row, col, ch = int(parts[0]), int(parts[2]), int(parts[3]), int(parts[4])
        if k >= len(self.image.levels) or ch != 0:
            raise KeyError(f"chunk key {key!r} out of range")
        lv = self.image.levels[k]
        if row >= lv.rows or col >= lv.cols:
            raise KeyError(f"chunk key {key!r} outside the tile grid")
        return k, row, col

    async def read_tile(self, k: int, col: int, row: int) -> np.ndarray | None:
        """The decoded chunk ``(tile_h, tile_w, C)`` of tile ``(col, row)`` of level ``k``.

        ``None`` when the tile failed and ``on_error="fill"``.
        """
        return (await self.fetch_tile(k, col, row, decode=True))[1]

    async def read_raw(self, k: int, col: int, row: int) -> bytes | None:
        """The tile's encoded bytes (after the level's post-processing), checked to be an image.

        For byte-for-byte copies. ``None`` when the tile failed and ``on_error="fill"``.
        """
        return (await self.fetch_tile(k, col, row, decode=False))[0]

    async def fetch_tile(
        self, k: int, col: int, row: int, *, decode: bool = True,
        place: Callable[[np.ndarray], None] | None = None,
    ) -> tuple[bytes | None, np.ndarray | None]:
        """``(encoded bytes, decoded chunk or None)`` of a tile: the one path to every tile.

        A tile kept by :meth:`remember` is used once without a request; then the tile cache is looked
        up (a tile remembered there as 404 is not asked again); fetched tiles are stored in the cache as
        served. Progress and failures are reported under :attr:`token`.

        ``place``: called with the decoded chunk in the worker thread that decoded it (e.g. to copy it
        into a strip, so the event loop never spends time on pixels); the chunk is then not returned.
        """
        lv = self.image.levels[k]
        url = lv.tile_url(col, row)

        def check(served: bytes) -> tuple[bytes, np.ndarray | None]:
            data = lv.postprocess(served)
            if not decode:
                open_image(data, tile_size_limit(lv)).close()
                return data, None
            arr = decode_tile(data, lv, col, row, self.mode, postprocessed=True, pad=place is None)
            if place is None:
                return data, arr
            place(arr)
            return data, None

        served = self._memo.pop((k, col, row), None)
        from_memo = served is not None
        cache = self.cache
        if served is None and cache is not None:
            served = await cache.get_tile(self.source, k, col, row)
            if served is None and await cache.is_missing(self.source, k, col, row):
                return self._failed(url, FetchError(url, f"HTTP 404 for {url} (remembered by the tile cache)",
                                                    status=404), (k, col, row))
        if served is not None:
            try:
                data, arr = await asyncio.to_thread(check, served)
            except Exception as exc:  # a damaged cache entry: forget it and fetch again
                log.warning("stored tile %s is unreadable (%s); fetching it again", url, exc)
                if cache is not None:
                    await cache.delete(cache.tile_key(self.source, k, col, row))
            else:
                if from_memo and cache is not None:
                    await cache.set_tile(self.source, k, col, row, served)
                events.emit(self.token, True, url, cached=not from_memo, nbytes=len(served))
                return data, arr
        try:
            served, (data, arr) = await fetch(url, self.net, level_headers=lv.headers, check=lambda b: (b, check(b)))
        except FetchError as exc:
            if cache is not None and exc.status in (404, 410):
                await cache.set_missing(self.source, k, col, row)
            return self._failed(url, exc, (k, col, row))
        if cache is not None:
            await cache.set_tile(self.source, k, col, row, served)
        events.emit(self.token, True, url, nbytes=len(served))
        return data, arr

    async def peek(self, k: int, col: int = 0, row: int = 0) -> bytes | None:
        """A tile's bytes (post-processed), e.g. to read its colour profile before a download starts.

        Not counted as progress; the bytes are kept for the tile's next read, so peeking costs no
        extra request. ``None`` if the tile cannot be had.
        """
        lv = self.image.levels[k]
        served = self._memo.get((k, col, row))
        if served is None and self.cache is not None:
            served = await self.cache.get_tile(self.source, k, col, row)
        if served is None:
            try:
                served = await fetch(lv.tile_url(col, row), self.net, level_headers=lv.headers)
            except FetchError:
                return None
            self._memo[(k, col, row)] = served
        try:
            return lv.postprocess(served)
        except Exception:
            return None

    def _failed(self, url: str, exc: FetchError, tile: tuple[int, int, int]) -> tuple[None, None]:
        events.emit(self.token, False, url, exc, tile=tile)
        if self.on_error == "raise":
            raise TileFetchError(url, str(exc), status=exc.status, attempts=exc.attempts, hint=exc.hint or None) from exc
        return None, None

    async def get(self, key: str, prototype: BufferPrototype, byte_range: ByteRequest | None = None) -> Buffer | None:
        meta = self._meta.get(key)
        if meta is not None:
            return prototype.buffer.from_bytes(_slice(meta, byte_range))
        parsed = self._parse_chunk_key(key)
        if parsed is None:
            return None
        k, row, col = parsed
        arr = await self.read_tile(k, col, row)
        if arr is None:
            return None
        raw = arr.tobytes()
        return prototype.buffer.from_bytes(_slice(raw, byte_range))

    async def get_partial_values(
        self, prototype: BufferPrototype, key_ranges: Iterable[tuple[str, ByteRequest | None]]
    ) -> list[Buffer | None]:
        return [await self.get(key, prototype, rng) for key, rng in key_ranges]

    async def exists(self, key: str) -> bool:
        if key in self._meta:
            return True
        try:
            return self._parse_chunk_key(key) is not None
        except KeyError:
            return False

    async def set(self, key: str, value: Buffer) -> None:
        raise PermissionError("TilePyramidStore is read-only")

    async def delete(self, key: str) -> None:
        raise PermissionError("TilePyramidStore is read-only")

    async def list(self) -> AsyncIterator[str]:
        for key in self._meta:
            yield key

    async def list_prefix(self, prefix: str) -> AsyncIterator[str]:
        for key in self._meta:
            if key.startswith(prefix):
                yield key

    async def list_dir(self, prefix: str) -> AsyncIterator[str]:
        prefix = prefix.rstrip("/")
        seen: set[str] = set()
        for key in self._meta:
            if prefix and not key.startswith(prefix + "/"):
                continue
            rest = key[len(prefix) + 1 :] if prefix else key
            head = rest.split("/", 1)[0]
            if head not in seen:
                seen.add(head)
                yield head

    def __repr__(self) -> str:
        return f"TilePyramidStore({self.image.url!r}, levels={len(self.image.levels)}, mode={self.mode!r})"
