"""NYPL Digital Collections on the loopback server: item page, ``config.js`` and overlapping tiles.

Use with :func:`dezoomify_nb.testing.hosts.route_hosts` and :attr:`NyplSite.hosts` to replay the real
URL forms: ``https://digitalcollections.nypl.org/items/<uuid>`` (the item page) and
``https://access.nypl.org/image.php/<uuid>/tiles/config.js`` (the metadata, one configuration per
rotation, numbers as strings as the site sends them). Tiles of rotation 0 are
``.../tiles/0/<level>/<x>_<y>.<format>``, Deep Zoom style: level ``l`` (up to the bit length of the
largest side) is ``(W, H) >> (max_level - l)`` and each tile carries ``overlap`` extra pixels on every
side that touches a neighbour. Other rotations are not served (404).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit

import numpy as np

from ._sites import Pyramid
from .tileserver import Response, TileServer

__all__ = ["NyplSite"]

ITEM_HOST = "digitalcollections.nypl.org"
ACCESS_HOST = "access.nypl.org"


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


class NyplSite:
    """``image`` as an NYPL item. :meth:`install` adds the routes to a TileServer."""

    def __init__(self, image: np.ndarray, *, tile_size: int = 256, overlap: int = 2, lossless: bool = True,
                 image_id: str = "a28d6e6b-b317-f008-e040-e00a1806635d") -> None:
        self.pyramid = Pyramid(image, lossless=lossless)
        self.tile_size, self.overlap, self.image_id = tile_size, overlap, image_id
        self.format = "png" if lossless else "jpg"
        w, h = self.pyramid.width, self.pyramid.height
        self.max_level = max(w, h).bit_length()
        #: level number → size, for the levels that are not empty
        self.levels = {lv: (w >> (self.max_level - lv), h >> (self.max_level - lv))
                       for lv in range(self.max_level + 1) if (w >> (self.max_level - lv)) and (h >> (self.max_level - lv))}
        self.item_prefix, self.access_prefix = "/nypl-items", "/nypl-access"

    @property
    def item_url(self) -> str:
        return f"https://{ITEM_HOST}/items/{self.image_id}"

    @property
    def config_url(self) -> str:
        return f"https://{ACCESS_HOST}/image.php/{self.image_id}/tiles/config.js"

    @property
    def hosts(self) -> dict[str, str]:
        return {ITEM_HOST: self.item_prefix, ACCESS_HOST: self.access_prefix}

    def level_image(self, k: int) -> np.ndarray:
        """Pixels of the ``k``-th largest level (0 = full resolution)."""
        return self.pyramid.level_array(self.levels[self.max_level - k])

    def install(self, server: TileServer, item_prefix: str = "/nypl-items", access_prefix: str = "/nypl-access") -> str:
        """Add the routes; returns :attr:`item_url` (reach it through ``route_hosts(server, self.hosts)``)."""
        self.item_prefix, self.access_prefix = item_prefix.rstrip("/"), access_prefix.rstrip("/")
        server.add_route(self.item_prefix + "/", self._item)
        server.add_route(self.access_prefix + "/", self._access)
        return self.item_url

    def config_json(self) -> str:
        w, h = self.pyramid.width, self.pyramid.height
        one = {"tilesize": str(self.tile_size), "overlap": str(self.overlap), "format": self.format}
        configs = {rot: {"size": {"width": str(a), "height": str(b)}, **one}
                   for rot, (a, b) in (("0", (w, h)), ("90", (h, w)), ("180", (w, h)), ("270", (h, w)))}
        return json.dumps({"configs": configs}, indent=1)

    def _item(self, server: TileServer, raw_path: str, headers: Mapping[str, str]) -> Response:
        path = unquote(urlsplit(raw_path).path)[len(self.item_prefix) :]
        if path != f"/items/{self.image_id}":
            return Response(404, b"not found\n")
        body = (f"<!DOCTYPE html><html><head><title>Test item - NYPL Digital Collections</title></head>"
                f'<body><div id="item-data" data-uuid="{self.image_id}"></div></body></html>')
        return Response(200, body.encode(), "text/html; charset=utf-8")

    def _access(self, server: TileServer, raw_path: str, headers: Mapping[str, str]) -> Response:
        path = unquote(urlsplit(raw_path).path)[len(self.access_prefix) :]
        base = f"/image.php/{self.image_id}/tiles/"
        if path == base + "config.js":
            return Response(200, self.config_json().encode(), "application/javascript")
        m = re.fullmatch(re.escape(base) + r"0/(\d+)/(\d+)_(\d+)\.(\w+)", path)
        if not m or m.group(4) != self.format or int(m.group(1)) not in self.levels:
            return Response(404, b"not found\n")
        level, col, row = (int(v) for v in m.groups()[:3])
        w, h = self.levels[level]
        ts, o = self.tile_size, self.overlap
        if col >= _ceil_div(w, ts) or row >= _ceil_div(h, ts):
            return Response(404, b"not found\n")
        box = (col * ts - (o if col else 0), row * ts - (o if row else 0),
               min((col + 1) * ts + o, w), min((row + 1) * ts + o, h))
        return Response(200, self.pyramid.tile((w, h), box), self.pyramid.content_type)
