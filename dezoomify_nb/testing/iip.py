"""The server side of the IIP protocol (what iipsrv answers), for the loopback :class:`TileServer`.

>>> with TileServer(make_test_image(1000, 700)) as server:   # doctest: +SKIP
...     url = install_iip(server)          # http://127.0.0.1:PORT/fcgi-bin/iipsrv.fcgi?FIF=image.tif
...     iip_level_image(server, 0)         # pixels of the full resolution

Like iipsrv serving a pyramidal TIFF: resolution ``r`` = 0 is the **smallest**; there are as many
resolutions as it takes to fit in one tile, resolution ``r`` of ``n`` being ``(W, H) >> (n-1-r)``
(floor). Requests handled:

* ``?FIF=<name>&OBJ=IIP,1.0&OBJ=Max-size&OBJ=Tile-size&OBJ=Resolution-number`` (any subset, any case)
  → ``Key:values`` lines, as iipsrv;
* ``?FIF=<name>&JTL=r,i`` → tile ``i`` (row-major) of resolution ``r``, cropped at the edges; JPEG, or
  PNG when the server is ``lossless``. Anything else is 400, an unknown ``FIF`` 404.

Level pixels are the full image resized once with :data:`LEVEL_FILTER` (as every other kind).
"""

from __future__ import annotations

import io
import threading
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlsplit

import numpy as np
from PIL import Image

from .tileserver import JPEG_QUALITY, LEVEL_FILTER, PNG_COMPRESS_LEVEL, Response, TileServer

__all__ = ["IIP_PATH", "IIPHandler", "iip_level_image", "iip_sizes", "install_iip"]

IIP_PATH = "/fcgi-bin/iipsrv.fcgi"


def iip_sizes(width: int, height: int, tile_size: int) -> list[tuple[int, int]]:
    """Resolution sizes, **largest first** (index ``k`` is IIP resolution ``n-1-k``)."""
    sizes = [(width, height)]
    k = 0
    while max(sizes[-1]) > tile_size and min(width >> (k + 1), height >> (k + 1)) > 0:
        k += 1
        sizes.append((width >> k, height >> k))
    return sizes


def _full(server: TileServer) -> Image.Image:
    arr = server.level_image("generic", 0)  # the generic kind serves the full image, unscaled
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    return Image.fromarray(np.ascontiguousarray(arr))


class IIPHandler:
    """A route for :meth:`TileServer.add_route` answering IIP requests for one image named ``fif``."""

    def __init__(self, server: TileServer, fif: str = "image.tif", tile_size: int | None = None) -> None:
        self.fif = fif
        self.tile_size = tile_size or server.tile_size
        self.sizes = iip_sizes(server.width, server.height, self.tile_size)
        self._server = server
        self._levels: dict[tuple[int, int], Image.Image] = {}
        self._lock = threading.Lock()

    def level_pil(self, k: int) -> Image.Image:
        """Level ``k`` (0 = full resolution) as a Pillow image."""
        size = self.sizes[k]
        with self._lock:
            img = self._levels.get(size)
            if img is None:
                full = _full(self._server)
                img = full if size == full.size else full.resize(size, LEVEL_FILTER)
                self._levels[size] = img
        return img

    def metadata(self, objs: list[str]) -> str:
        w, h = self.sizes[0]
        lines = []
        for obj in objs:
            key = obj.lower()
            if key == "iip,1.0":
                lines.append("IIP:1.0")
            elif key == "max-size":
                lines.append(f"Max-size:{w} {h}")
            elif key == "tile-size":
                lines.append(f"Tile-size:{self.tile_size} {self.tile_size}")
            elif key == "resolution-number":
                lines.append(f"Resolution-number:{len(self.sizes)}")
        return "".join(line + "\r\n" for line in lines)

    def tile(self, resolution: int, index: int, lossless: bool) -> Response:
        n = len(self.sizes)
        if not 0 <= resolution < n:
            return Response(400, b"Error/7:1 3\r\nresolution out of range\r\n")
        k = n - 1 - resolution
        w, h = self.sizes[k]
        ts = self.tile_size
        cols, rows = -(-w // ts), -(-h // ts)
        if not 0 <= index < cols * rows:
            return Response(400, b"Error/7:1 3\r\ntile out of range\r\n")
        col, row = index % cols, index // cols
        box = (col * ts, row * ts, min((col + 1) * ts, w), min((row + 1) * ts, h))
        img = self.level_pil(k).crop(box)
        buf = io.BytesIO()
        if lossless:
            img.save(buf, "PNG", compress_level=PNG_COMPRESS_LEVEL)
            return Response(200, buf.getvalue(), "image/png")
        if img.mode == "RGBA":
            img = img.convert("RGB")
        img.save(buf, "JPEG", quality=JPEG_QUALITY)
        return Response(200, buf.getvalue(), "image/jpeg")

    def __call__(self, server: TileServer, raw_path: str, headers: Mapping[str, str]) -> Response:
        params = parse_qsl(urlsplit(raw_path).query, keep_blank_values=True)
        fif = next((v for k, v in params if k.upper() == "FIF"), None)
        if fif is None:
            return Response(400, b"Error/7:1 3\r\nno FIF\r\n")
        if fif != self.fif:
            return Response(404, b"Error/7:1 3\r\nunknown image\r\n")
        objs = [v for k, v in params if k.upper() == "OBJ"]
        jtl = next((v for k, v in params if k.upper() == "JTL"), None)
        if jtl is not None:
            parts = jtl.split(",")
            if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
                return Response(400, b"Error/7:1 3\r\nbad JTL\r\n")
            return self.tile(int(parts[0]), int(parts[1]), server.lossless)
        if objs:
            return Response(200, self.metadata(objs).encode(), "text/plain")
        return Response(400, b"Error/7:1 3\r\nunsupported request\r\n")


def install_iip(server: TileServer, fif: str = "image.tif", tile_size: int | None = None,
                path: str = IIP_PATH) -> str:
    """Add an IIP route to ``server``; returns the image URL ``…/iipsrv.fcgi?FIF=<fif>``."""
    handler = IIPHandler(server, fif, tile_size)
    server.add_route(path, handler)
    _handlers[(id(server), path)] = handler
    return f"{server.base_url}{path}?FIF={fif}"


_handlers: dict[tuple[int, str], IIPHandler] = {}


def iip_level_image(server: TileServer, k: int, path: str = IIP_PATH) -> np.ndarray:
    """The exact pixels of level ``k`` (0 = full resolution) served by :func:`install_iip` on ``server``."""
    handler = _handlers[(id(server), path)]
    arr = np.array(handler.level_pil(k))
    if arr.ndim == 2 and server.channels == 1:
        arr = arr[:, :, None]
    return arr
