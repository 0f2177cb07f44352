"""Memorix TopViewer on the loopback server: an archive page, ``topviewjson`` and numbered tiles.

Use with :func:`dezoomify_nb.testing.hosts.route_hosts` and :attr:`TopViewerSite.hosts`: the archive page
``https://beeldbank.test-archief.nl/detail/<record>/media/<uuid>`` shows a thumbnail
``https://images.memorix.nl/<server>/thumb/250x250/<uuid>.jpg``; the metadata is
``https://images.memorix.nl/<server>/topviewjson/memorix/<uuid>`` and tiles
``https://images.memorix.nl/<server>/topview/<filepath>/<n>.jpg`` (PNG bytes when lossless).

Layers are ``scalefactor`` 1, 2, 4, … until one tile holds the image, each ``ceil((W, H) / scalefactor)``;
the JSON lists them smallest first with ``no`` 0, 1, … and one tile numbering shared by all: a layer's
tiles are numbered row-major from its ``starttile``, the smallest layer starting at ``first_tile``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit

import numpy as np

from ._sites import Pyramid
from .tileserver import Response, TileServer

__all__ = ["TopViewerSite"]

IMAGES_HOST = "images.memorix.nl"
PAGE_HOST = "beeldbank.test-archief.nl"


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


class TopViewerSite:
    def __init__(self, image: np.ndarray, *, server: str = "wba", uuid: str = "6eb5a89b-b76c-5039-3999-aabfd7a0c7c9",
                 tile_size: int = 256, lossless: bool = True, first_tile: int = 0,
                 filepath: str = "wba/2f/6eb5a89b-b76c-5039-3999-aabfd7a0c7c9.jp2") -> None:
        self.pyramid = Pyramid(image, lossless=lossless)
        self.server, self.uuid, self.tile_size, self.filepath = server, uuid, tile_size, filepath
        w, h = self.pyramid.width, self.pyramid.height
        factors = [1]
        while max(_ceil_div(w, factors[-1]), _ceil_div(h, factors[-1])) > tile_size:
            factors.append(factors[-1] * 2)
        #: smallest first: (no, scalefactor, width, height, cols, rows, starttile)
        self.layers: list[tuple[int, int, int, int, int, int, int]] = []
        start = first_tile
        for no, f in enumerate(reversed(factors)):
            lw, lh = _ceil_div(w, f), _ceil_div(h, f)
            cols, rows = _ceil_div(lw, tile_size), _ceil_div(lh, tile_size)
            self.layers.append((no, f, lw, lh, cols, rows, start))
            start += cols * rows
        self.images_prefix, self.page_prefix = "/memorix-images", "/memorix-page"

    @property
    def hosts(self) -> dict[str, str]:
        return {IMAGES_HOST: self.images_prefix, PAGE_HOST: self.page_prefix}

    @property
    def page_url(self) -> str:
        return f"https://{PAGE_HOST}/detail/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0/media/{self.uuid}"

    @property
    def metadata_url(self) -> str:
        return f"https://{IMAGES_HOST}/{self.server}/topviewjson/memorix/{self.uuid}"

    def level_image(self, k: int) -> np.ndarray:
        """Pixels of the ``k``-th largest layer (0 = full resolution)."""
        _, _, w, h, *_ = self.layers[len(self.layers) - 1 - k]
        return self.pyramid.level_array((w, h))

    def topview_json(self) -> str:
        w, h = self.pyramid.width, self.pyramid.height
        layers = [{"no": no, "scalefactor": f, "width": lw, "height": lh, "cols": c, "rows": r, "starttile": s}
                  for no, f, lw, lh, c, r, s in self.layers]
        view = {"filepath": self.filepath, "width": w, "height": h, "tileWidth": self.tile_size,
                "tileHeight": self.tile_size, "layers": layers}
        config = {"tileurl": f"https://{IMAGES_HOST}/{self.server}/topview/{{file}}/{{tile}}.jpg",
                  "tileurl_v2": f"https://{IMAGES_HOST}/{self.server}/topview/{{file}}/{{tile}}.{{extension}}"}
        return json.dumps({"topviews": [view], "config": config}, indent=1)

    def install(self, server: TileServer, images_prefix: str = "/memorix-images", page_prefix: str = "/memorix-page") -> str:
        self.images_prefix, self.page_prefix = images_prefix.rstrip("/"), page_prefix.rstrip("/")
        server.add_route(self.images_prefix + "/", self._images)
        server.add_route(self.page_prefix + "/", self._page)
        return self.page_url

    def _page(self, server: TileServer, raw_path: str, headers: Mapping[str, str]) -> Response:
        path = unquote(urlsplit(raw_path).path)[len(self.page_prefix):]
        if not path.endswith("/media/" + self.uuid):
            return Response(404, b"not found\n")
        body = (f"<!DOCTYPE html><html><head><title>Beeldbank</title></head><body><div class=\"media\">"
                f'<img alt="foto" src="https://{IMAGES_HOST}/{self.server}/thumb/250x250/{self.uuid}.jpg"></div>'
                "</body></html>")
        return Response(200, body.encode(), "text/html; charset=utf-8")

    def _images(self, server: TileServer, raw_path: str, headers: Mapping[str, str]) -> Response:
        path = unquote(urlsplit(raw_path).path)[len(self.images_prefix):]
        if path == f"/{self.server}/topviewjson/memorix/{self.uuid}":
            return Response(200, self.topview_json().encode(), "application/json")
        m = re.fullmatch(re.escape(f"/{self.server}/topview/{self.filepath}/") + r"(\d+)\.jpg", path)
        if not m:
            return Response(404, b"not found\n")
        n = int(m.group(1))
        for _, _, lw, lh, cols, rows, start in self.layers:
            if start <= n < start + cols * rows:
                col, row = (n - start) % cols, (n - start) // cols
                ts = self.tile_size
                box = (col * ts, row * ts, min((col + 1) * ts, lw), min((row + 1) * ts, lh))
                return Response(200, self.pyramid.tile((lw, lh), box), self.pyramid.content_type)
        return Response(404, b"no such tile\n")
