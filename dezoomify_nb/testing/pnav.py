"""A pnav museum site on the loopback server: object page, size JSON and a crop-and-resize image server.

Use with :func:`dezoomify_nb.testing.hosts.route_hosts` and :attr:`PnavSite.hosts`
(``https://catalog.shm.ru/entity/OBJECT/<id>``). The page's ``og:image`` is
``https://catalog.shm.ru/files/<name>.jpg?w=1000&amp;h=1000``; ``<name>.json`` gives the *crop space*
``{"width": W0, "height": H0}``, the real image being ``scale`` times larger. ``<name>.jpg?w&h&cl&ct&cw&ch``
crops ``(cl, ct, cw, ch)`` of the crop space (``× scale`` in real pixels, rounded) and scales it to fit the
``w`` × ``h`` box, never beyond the real resolution (pnav's behaviour as the JS reader implies it). With a
whole-number-friendly ``scale`` every crop is a plain cut of the real image, so downloads compare exactly.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from urllib.parse import parse_qsl, unquote, urlsplit

import numpy as np
from PIL import Image

from ._sites import Pyramid
from .tileserver import LEVEL_FILTER, PNG_COMPRESS_LEVEL, Response, TileServer

__all__ = ["PnavSite"]

HOST = "catalog.shm.ru"


class PnavSite:
    def __init__(self, image: np.ndarray, *, scale: float = 1.5, object_id: int = 2117418, name: str = "a7f3/image",
                 title: str = "Portrait of a lady") -> None:
        self.pyramid = Pyramid(image, lossless=True)
        self.scale, self.object_id, self.name, self.title = scale, object_id, name, title
        self.w0, self.h0 = round(self.pyramid.width / scale), round(self.pyramid.height / scale)
        self.prefix = "/pnav-shm"

    @property
    def hosts(self) -> dict[str, str]:
        return {HOST: self.prefix}

    @property
    def page_url(self) -> str:
        return f"https://{HOST}/entity/OBJECT/{self.object_id}"

    @property
    def image_url(self) -> str:
        return f"https://{HOST}/files/{self.name}.jpg"

    def full_image(self) -> np.ndarray:
        return self.pyramid.level_array((self.pyramid.width, self.pyramid.height))

    def install(self, server: TileServer, prefix: str = "/pnav-shm") -> str:
        self.prefix = prefix.rstrip("/")
        server.add_route(self.prefix + "/", self._handle)
        return self.page_url

    def page_html(self) -> str:
        return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><meta property="og:title" content="{self.title}">'
                f'<meta property="og:image" content="{self.image_url}?w=1000&amp;h=1000">'
                f"<title>{self.title}</title></head><body><div id=\"pnav\"></div></body></html>")

    def crop(self, w: int, h: int, cl: int, ct: int, cw: int, ch: int) -> Image.Image:
        s = self.scale
        real = self.pyramid.full
        box = (round(cl * s), round(ct * s), min(round((cl + cw) * s), real.width), min(round((ct + ch) * s), real.height))
        img = real.crop(box)
        fit = min(w / img.width, h / img.height, 1.0)
        if fit < 1.0:
            img = img.resize((max(1, round(img.width * fit)), max(1, round(img.height * fit))), LEVEL_FILTER)
        return img

    def _handle(self, server: TileServer, raw_path: str, headers: Mapping[str, str]) -> Response:
        parts = urlsplit(raw_path)
        path = unquote(parts.path)[len(self.prefix):]
        if path == f"/entity/OBJECT/{self.object_id}":
            return Response(200, self.page_html().encode(), "text/html; charset=utf-8")
        if path == f"/files/{self.name}.json":
            return Response(200, json.dumps({"width": self.w0, "height": self.h0}).encode(), "application/json")
        if path != f"/files/{self.name}.jpg":
            return Response(404, b"not found\n")
        q = dict(parse_qsl(parts.query))
        try:
            w, h, cl, ct, cw, ch = (int(q[k]) for k in ("w", "h", "cl", "ct", "cw", "ch"))
        except (KeyError, ValueError):
            return Response(400, b"bad crop\n")
        if min(w, h, cw, ch) <= 0 or not (0 <= cl < self.w0 and 0 <= ct < self.h0):
            return Response(400, b"crop outside the image\n")
        cw, ch = min(cw, self.w0 - cl), min(ch, self.h0 - ct)  # clamped to the image
        buf = io.BytesIO()
        self.crop(w, h, cl, ct, cw, ch).save(buf, "PNG", compress_level=PNG_COMPRESS_LEVEL)
        return Response(200, buf.getvalue(), "image/jpeg")  # served as .jpg; the bytes are PNG (lossless tests)
