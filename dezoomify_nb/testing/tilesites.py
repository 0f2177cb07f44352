"""Tile grids without metadata, for the loopback :class:`~dezoomify_nb.testing.TileServer`: what a viewer
requests when the image's description is written in its JavaScript (krpano multires panoramas, slippy-map
``/{z}/{x}/{y}`` grids).

>>> with TileServer(make_test_image(1000, 700)) as server:   # doctest: +SKIP
...     grid = install_grid(server, "xyz")       # /xyz/{z}/{x}/{y}.png, 0-based
...     grid.tile_url(grid.top, 0, 0), grid.level_image(grid.top)

* ``xyz``: ``/xyz/{z}/{x}/{y}.png``, indices from 0, levels ``z = 0 … top`` (``top`` = full resolution);
* ``krpano``: ``/krpano/pano/l{z}/{y:02d}/l{z}_{y:02d}_{x:02d}.jpg``, indices from **1**, zero-padded, levels
  ``z = 1 … top``.

Level ``z`` is the full image divided by ``2**(top - z)`` (ceil), resized once with Pillow ``BOX``; tiles are
PNG bytes (also at ``.jpg`` URLs) so downloads compare exactly. Tiles outside the grid are 404.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ._sites import Pyramid
from .tileserver import Response, TileServer

__all__ = ["Grid", "install_grid"]

_PATHS = {
    "xyz": re.compile(r"^/xyz/(\d+)/(\d+)/(\d+)\.png$"),
    "krpano": re.compile(r"^/krpano/pano/l(\d+)/(\d+)/l\1_(\d+)_(\d+)\.jpg$"),
}


@dataclass
class Grid:
    server: TileServer
    kind: str
    pyramid: Pyramid
    tile: int
    top: int
    first: int

    def size(self, z: int) -> tuple[int, int]:
        s = 1 << (self.top - z)
        return -(-self.pyramid.width // s), -(-self.pyramid.height // s)

    def level_image(self, z: int) -> np.ndarray:
        return self.pyramid.level_array(self.size(z))

    def tile_url(self, z: int, col: int, row: int) -> str:
        x, y = col + self.first, row + self.first
        if self.kind == "xyz":
            return f"{self.server.base_url}/xyz/{z}/{x}/{y}.png"
        return f"{self.server.base_url}/krpano/pano/l{z}/{y:02d}/l{z}_{y:02d}_{x:02d}.jpg"

    def respond(self, server: TileServer, raw_path: str, headers: Mapping[str, str]) -> Response:
        m = _PATHS[self.kind].match(raw_path.split("?", 1)[0])
        if not m:
            return Response(404, b"not found\n")
        if self.kind == "xyz":
            z, x, y = (int(g) for g in m.groups())
        else:
            z, y, y2, x = (int(g) for g in m.groups())
            if y != y2:
                return Response(404, b"not found\n")
        col, row = x - self.first, y - self.first
        lowest = 0 if self.kind == "xyz" else 1
        if not lowest <= z <= self.top:
            return Response(404, b"no such level\n")
        w, h = self.size(z)
        t = self.tile
        if col < 0 or row < 0 or col * t >= w or row * t >= h:
            return Response(404, b"outside the grid\n")
        box = (col * t, row * t, min(w, (col + 1) * t), min(h, (row + 1) * t))
        return Response(200, self.pyramid.tile((w, h), box), "image/png")


def install_grid(server: TileServer, kind: str, image: np.ndarray | None = None, *, tile: int = 256) -> Grid:
    """Serve ``image`` (default: the server's own) as a metadata-less grid of ``kind`` on ``server``."""
    if kind not in _PATHS:
        raise ValueError(f"unknown grid {kind!r}; expected one of {', '.join(_PATHS)}")
    pyramid = Pyramid(np.asarray(server._full) if image is None else image)  # noqa: SLF001 - same package
    top, side = 0, max(pyramid.width, pyramid.height)
    while side > tile:
        side, top = -(-side // 2), top + 1
    first = 0 if kind == "xyz" else 1
    top = top if kind == "xyz" else top + 1
    grid = Grid(server, kind, pyramid, tile, top, first)
    server.add_route(f"/{kind}/", grid.respond)
    return grid
