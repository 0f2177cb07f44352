"""An XYZ / TMS tile layer on the loopback :class:`TileServer`: a map placed on the Web Mercator grid.

>>> site = XyzSite(make_test_image(800, 600))                         # doctest: +SKIP
>>> template = site.install(server)          # …/xyz-site/{s}/{z}/{x}/{y}.png
>>> site.tiles_image(16, (c0, r0, c1, r1))   # what a download of those tiles of zoom 16 must give

The image's top-left pixel lies at ``origin_px`` of the deepest zoom's world pixel grid; at each served zoom
it is the source resized by a power of two (whole pixels) on a background colour. Only tiles that touch the
image exist (a regional layer, as gdal2tiles writes it): any other tile, zoom or subdomain answers 404.
The default places an 800 × 600 image at (640, 456) of zoom 3 (zooms 0–3 served: tile 0/0/0 exists, as
the probe of the extent needs); a regional layer such as ``zooms=(13, 16)``, ``origin_px=(8448096, 5632048)``
has no tile 0/0/0. Routes: ``{s}/{z}/{x}/{y}.png`` (XYZ rows; ``{s}`` a path segment standing for a subdomain, which must be
Leaflet's choice ``"abc"[(x + y) % 3]``), ``tms/{z}/{x}/{y}.png`` (TMS rows: 0 at the bottom).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

import numpy as np

from .tileserver import Response, TileServer
from .wmts import GOOGLE_TLC, RADIUS, MatrixSetSpec, WmtsSite

__all__ = ["XyzSite", "mercator_lonlat"]


def mercator_lonlat(x: float, y: float) -> tuple[float, float]:
    return math.degrees(x / RADIUS), math.degrees(2 * math.atan(math.exp(y / RADIUS)) - math.pi / 2)


@dataclass
class XyzSite:
    image: np.ndarray
    zooms: tuple[int, int] = (0, 3)  # first and last zoom served
    origin_px: tuple[int, int] = (640, 456)  # at the last zoom
    tile: int = 256
    background: tuple[int, int, int] = (255, 255, 255)
    prefix: str = "/xyz-site"
    subdomains: str = "abc"
    _wmts: WmtsSite = field(init=False)

    def __post_init__(self) -> None:
        z0, z1 = self.zooms
        res = tuple(2 * math.pi * RADIUS / self.tile / 2**z for z in range(z1 + 1))
        spec = MatrixSetSpec("xyz", "EPSG:3857", GOOGLE_TLC, res, self.origin_px, tile=(self.tile, self.tile),
                             limits=tuple(str(z) for z in range(z0, z1 + 1)),
                             matrix_size=tuple((2**z, 2**z) for z in range(z1 + 1)))
        self.spec = spec
        self._wmts = WmtsSite(self.image, sets=[spec], background=self.background)

    # --- what a client must get ----------------------------------------------------------------------
    def tile_range(self, z: int) -> tuple[int, int, int, int]:
        """``(c0, r0, c1, r1)``: the tiles (inclusive) that exist at zoom ``z``."""
        m = self._wmts.matrix("xyz", str(z))
        t = self.tile
        return (m.pos[0] // t, m.pos[1] // t, (m.pos[0] + m.size[0] - 1) // t, (m.pos[1] + m.size[1] - 1) // t)

    def pixel_box(self, z: int) -> tuple[int, int, int, int]:
        """``(x, y, w, h)`` of the image in zoom ``z``'s world pixel grid."""
        m = self._wmts.matrix("xyz", str(z))
        return (*m.pos, *m.size)

    def tiles_image(self, z: int, box: tuple[int, int, int, int] | None = None) -> np.ndarray:
        """The pixels of tiles ``box`` = ``(c0, r0, c1, r1)`` (default: all that exist) of zoom ``z``."""
        c0, r0, c1, r1 = box or self.tile_range(z)
        t = self.tile
        return self._wmts._render(self._wmts.matrix("xyz", str(z)), (c0 * t, r0 * t, (c1 + 1) * t, (r1 + 1) * t))

    def world_image(self, z: int, box: tuple[int, int, int, int]) -> np.ndarray:
        """The pixels ``(x0, y0, x1, y1)`` of zoom ``z``'s world pixel grid (background outside the image)."""
        return self._wmts._render(self._wmts.matrix("xyz", str(z)), box)

    def mercator_bounds(self) -> tuple[float, float, float, float]:
        """``(west, south, east, north)`` of the image in metres."""
        res = 2 * math.pi * RADIUS / self.tile / 2 ** self.zooms[1]
        h, w = self.image.shape[:2]
        x0 = GOOGLE_TLC[0] + self.origin_px[0] * res
        y1 = GOOGLE_TLC[1] - self.origin_px[1] * res
        return x0, y1 - h * res, x0 + w * res, y1

    def lonlat_bounds(self) -> tuple[float, float, float, float]:
        w, s, e, n = self.mercator_bounds()
        return (*mercator_lonlat(w, s), *mercator_lonlat(e, n))

    # --- serving -------------------------------------------------------------------------------------
    def tile_response(self, z: int, x: int, y: int) -> Response:
        if not self.zooms[0] <= z <= self.zooms[1]:
            return Response(404, b"no such zoom\n")
        c0, r0, c1, r1 = self.tile_range(z)
        if not (c0 <= x <= c1 and r0 <= y <= r1):
            return Response(404, b"no tile here\n")
        return self._wmts.tile("xyz", str(z), y, x)

    def install(self, server: TileServer, prefix: str | None = None) -> str:
        """Add the routes; returns the XYZ template (``{s}`` as a path segment)."""
        self.prefix = (prefix or self.prefix).rstrip("/")
        server.add_route(self.prefix + "/", lambda s, raw, h: self._handle(raw))
        return f"{server.base_url}{self.prefix}/{{s}}/{{z}}/{{x}}/{{y}}.png"

    def tms_template(self, server: TileServer) -> str:
        return f"{server.base_url}{self.prefix}/tms/{{z}}/{{x}}/{{-y}}.png"

    def _handle(self, raw: str) -> Response:
        path = unquote(urlsplit(raw).path)[len(self.prefix):]
        m = re.fullmatch(r"/([a-z]+)/(\d+)/(\d+)/(\d+)\.png", path)
        if not m:
            return Response(404, b"not found\n")
        z, x, y = int(m.group(2)), int(m.group(3)), int(m.group(4))
        if m.group(1) == "tms":
            y = 2**z - 1 - y
        elif m.group(1) != self.subdomains[(x + y) % len(self.subdomains)]:
            return Response(404, b"wrong subdomain\n")
        return self.tile_response(z, x, y)
