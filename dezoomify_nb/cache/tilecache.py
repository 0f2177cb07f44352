"""A resumable tile cache on any zarr 3 Store: tiles kept as the bytes the server sent.

Layout inside the store (one store may hold many images, never mixed):

- ``sources/{source}.json`` — what the source is: URL, dezoomer, title, geometry, versions;
- ``tiles/{source}/{level}/{row}/{col}`` — the encoded tile bytes as served (lossless, small);
- ``tiles/{source}/{level}/{row}/{col}.404`` — marker: the server said this tile does not exist;
- ``pages/{sha}`` — metadata documents, so an image can be reopened with ``offline=True``.

``source`` is a hash of the dezoomer, the URL and the whole geometry (every level's size, tile size,
overlap and first tile URL): a different image, or the same URL whose geometry changed, gets its own
place. Writes go through the store's ``set``; :class:`zarr.storage.LocalStore` writes a temporary file
then renames it, so a killed run never leaves a truncated tile. A path gives a ``LocalStore``; any zarr 3
Store (e.g. an fsspec store on S3 shared by dask workers) is accepted as is. The cache object is a
picklable recipe.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from typing import Any

from zarr.abc.store import Store
from zarr.core.buffer import default_buffer_prototype

from .._version import __version__
from ..errors import CacheError
from ..model import Image

log = logging.getLogger("dezoomify_nb.cache")

SCHEMA = 1
_PROTO = default_buffer_prototype()


def source_key(image: Image) -> str:
    """Stable identity of an image: dezoomer, URL and geometry (not the title, not headers)."""
    geometry = [
        (type(lv).__name__, lv.width, lv.height, lv.tile_width, lv.tile_height, lv.overlap, lv.tile_url(0, 0))
        for lv in image.levels
    ]
    blob = json.dumps([image.dezoomer, image.url, geometry], sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:24]


class TileCache:
    """Encoded tiles and metadata pages on a zarr Store. ``TileCache.of(spec)`` accepts a path or a Store."""

    def __init__(self, store: Store) -> None:
        if not isinstance(store, Store):
            raise CacheError(f"not a zarr Store: {store!r}", hint="Give a directory path or a zarr.abc.store.Store.")
        if store.read_only:
            log.info("tile cache %s is read-only: tiles are read from it, new tiles are not stored", store)
        self.store = store

    @classmethod
    def of(cls, spec: str | os.PathLike[str] | Store | TileCache | None) -> TileCache | None:
        if spec is None or isinstance(spec, TileCache):
            return spec
        if isinstance(spec, Store):
            return cls(spec)
        from zarr.storage import LocalStore

        path = os.fspath(spec)
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as exc:
            raise CacheError(f"cannot use {path!r} as a tile cache: {exc}",
                             hint="Choose a writable directory for --tile-cache.") from exc
        if not os.path.isdir(path):
            raise CacheError(f"{path!r} is not a directory", hint="--tile-cache takes a directory.")
        return cls(LocalStore(path))

    # identity: a recipe, compared and hashed by where it stores
    def _id(self) -> tuple[str, str]:
        return (type(self.store).__name__, str(self.store))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TileCache) and self._id() == other._id()

    def __hash__(self) -> int:
        return hash(self._id())

    def __repr__(self) -> str:
        return f"TileCache({self.store})"

    # --- keys ------------------------------------------------------------------------------------
    @staticmethod
    def tile_key(source: str, level: int, col: int, row: int) -> str:
        return f"tiles/{source}/{level}/{row}/{col}"

    @staticmethod
    def page_key(url: str) -> str:
        return "pages/" + hashlib.sha256(url.encode()).hexdigest()[:32]

    # --- raw access ------------------------------------------------------------------------------
    async def get(self, key: str) -> bytes | None:
        try:
            buf = await self.store.get(key, _PROTO)
        except (OSError, ValueError) as exc:
            log.warning("tile cache read of %s failed: %s", key, exc)
            return None
        return None if buf is None else buf.to_bytes()

    async def set(self, key: str, data: bytes) -> None:
        if self.store.read_only:
            return
        try:
            await self.store.set(key, _PROTO.buffer.from_bytes(data))
        except (OSError, ValueError) as exc:  # a full disk must not stop the download
            log.warning("tile cache write of %s failed: %s", key, exc)

    async def delete(self, key: str) -> None:
        if not self.store.read_only and self.store.supports_deletes:
            try:
                await self.store.delete(key)
            except (OSError, ValueError) as exc:
                log.warning("tile cache delete of %s failed: %s", key, exc)

    # --- tiles -----------------------------------------------------------------------------------
    async def get_tile(self, source: str, level: int, col: int, row: int) -> bytes | None:
        return await self.get(self.tile_key(source, level, col, row))

    async def set_tile(self, source: str, level: int, col: int, row: int, data: bytes) -> None:
        await self.set(self.tile_key(source, level, col, row), data)

    async def is_missing(self, source: str, level: int, col: int, row: int) -> bool:
        return await self.get(self.tile_key(source, level, col, row) + ".404") is not None

    async def set_missing(self, source: str, level: int, col: int, row: int) -> None:
        await self.set(self.tile_key(source, level, col, row) + ".404", b"")

    async def count_tiles(self, source: str, level: int) -> int:
        """How many tiles of a level are stored (404 markers excluded)."""
        n = 0
        async for key in self.store.list_prefix(f"tiles/{source}/{level}/"):
            n += not key.endswith(".404")
        return n

    # --- sources and pages -----------------------------------------------------------------------
    async def register(self, image: Image) -> str:
        """Record what ``image`` is (once); return its source key."""
        key = source_key(image)
        doc_key = f"sources/{key}.json"
        if await self.get(doc_key) is None:
            doc: dict[str, Any] = {
                "schema": SCHEMA,
                "dezoomify_nb": __version__,
                "url": image.url,
                "dezoomer": image.dezoomer,
                "title": image.title,
                "levels": [
                    {"width": lv.width, "height": lv.height, "tile_width": lv.tile_width,
                     "tile_height": lv.tile_height, "overlap": lv.overlap, "tile_0_0": lv.tile_url(0, 0)}
                    for lv in image.levels
                ],
            }
            await self.set(doc_key, json.dumps(doc, indent=1).encode())
        return key

    async def get_page(self, url: str) -> bytes | None:
        return await self.get(self.page_key(url))

    async def set_page(self, url: str, data: bytes) -> None:
        await self.set(self.page_key(url), data)
