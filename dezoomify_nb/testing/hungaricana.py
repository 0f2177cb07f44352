"""Hungaricana on the loopback server: viewer page, image-size JSON and AES-named tiles.

Use with :func:`dezoomify_nb.testing.hosts.route_hosts` and :attr:`HungaricanaSite.hosts` to replay the real
hosts: ``https://maps.hungaricana.hu/en/<collection>/<id>/view/?pg=N`` (the viewer page) and
``https://static-cdn.hungaricana.hu/tile/…`` (``imagesize/<path>`` JSON, ``image/<path>/<hex32>`` tiles).

Like the real server, a tile name is checked by *decrypting* it (AES-128-ECB, key ``dGhpcyBpcyBubyBr``)
into ``"{s}|{z}|{x}|{y}****"`` and checking ``s`` against the image path, so a client that hashes wrongly
gets 404s. Zoom ``z`` of an image whose finest zoom is ``top`` has size ``ceil((W, H) / 2^(top - z))``;
tiles are 512 px, cut from it (edge tiles are whole 512-px tiles padded with white when ``pad``).
The page lists the images with ``files: [...]`` (``style="files"``), a single ``imagepath = "…"``
(``"imagepath"``) or a ``files_url`` JSON listing (``"files_url"``).
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping, Sequence
from urllib.parse import unquote, urlsplit

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from PIL import Image

from ._sites import Pyramid
from .tileserver import JPEG_QUALITY, PNG_COMPRESS_LEVEL, Response, TileServer

__all__ = ["HungaricanaSite"]

PAGE_HOST = "maps.hungaricana.hu"
TILE_HOST = "static-cdn.hungaricana.hu"
KEY = b"dGhpcyBpcyBubyBr"
TILE = 512


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


class HungaricanaSite:
    """Images ``{file name: array}`` of one document (``folder``), shown by one viewer page."""

    def __init__(self, images: Mapping[str, np.ndarray], *, folder: str = "maps/mol/s012/div13/test_doc/",
                 style: str = "files", lossless: bool = True, pad: bool = True, doc_id: int = 8329,
                 title: str = "Test map (Hungaricana)") -> None:
        self.files: Sequence[str] = list(images)
        self.pyramids = {f: Pyramid(a, lossless=lossless) for f, a in images.items()}
        self.folder, self.style, self.pad, self.doc_id, self.title = folder, style, pad, doc_id, title
        self.page_prefix, self.tile_prefix = "/hu-maps", "/hu-static"

    # --- URLs ----------------------------------------------------------------------------------------
    @property
    def hosts(self) -> dict[str, str]:
        return {PAGE_HOST: self.page_prefix, TILE_HOST: self.tile_prefix}

    def page_url(self, pg: int | None = 0) -> str:
        query = f"?pg={pg}&bbox=-310%2C-5311%2C10990%2C-18" if pg is not None else ""
        return f"https://{PAGE_HOST}/en/MOLTerkeptar/{self.doc_id}/view/{query}"

    def imagesize_url(self, name: str) -> str:
        return f"https://{TILE_HOST}/tile/imagesize/{self.folder}{name}"

    # --- geometry ------------------------------------------------------------------------------------
    def top_zoom(self, name: str) -> int:
        p = self.pyramids[name]
        return (_ceil_div(max(p.width, p.height), TILE) - 1).bit_length()

    def size(self, name: str, zoom: int) -> tuple[int, int]:
        p, div = self.pyramids[name], 1 << (self.top_zoom(name) - zoom)
        return _ceil_div(p.width, div), _ceil_div(p.height, div)

    def level_image(self, name: str, k: int = 0) -> np.ndarray:
        """Pixels of the ``k``-th largest zoom of image ``name`` (0 = full resolution)."""
        return self.pyramids[name].level_array(self.size(name, self.top_zoom(name) - k))

    # --- serving -------------------------------------------------------------------------------------
    def install(self, server: TileServer, page_prefix: str = "/hu-maps", tile_prefix: str = "/hu-static") -> str:
        """Add the routes; returns :meth:`page_url` (reach it through ``route_hosts(server, self.hosts)``)."""
        self.page_prefix, self.tile_prefix = page_prefix.rstrip("/"), tile_prefix.rstrip("/")
        server.add_route(self.page_prefix + "/", self._page)
        server.add_route(self.tile_prefix + "/", self._tiles)
        return self.page_url()

    def page_html(self) -> str:
        common = (f'var viewerConfig = {{ layerUrl: "https://{TILE_HOST}/tile/imagesize/", '
                  f'path: "{self.folder}", title: "{self.title}" }};\n')
        if self.style == "imagepath":
            listing = f'var imagepath = "{self.files[0]}";\n'
        elif self.style == "files_url":
            listing = f"var opts = {{ files_url: 'https://{TILE_HOST}/tile/dir/{self.folder}*.ecw' }};\n"
        else:
            listing = f"var opts = {{ files: {json.dumps(list(self.files))}, zoom: 2 }};\n"
        return (f"<!DOCTYPE html><html><head><title>{self.title} &amp; more</title></head><body>"
                f'<div id="map"></div><script>\n{common}{listing}</script></body></html>')

    def _page(self, server: TileServer, raw_path: str, headers: Mapping[str, str]) -> Response:
        path = unquote(urlsplit(raw_path).path)[len(self.page_prefix):]
        if path.rstrip("/") != f"/en/MOLTerkeptar/{self.doc_id}/view":
            return Response(404, b"not found\n")
        return Response(200, self.page_html().encode(), "text/html; charset=utf-8")

    def _tiles(self, server: TileServer, raw_path: str, headers: Mapping[str, str]) -> Response:
        path = unquote(urlsplit(raw_path).path)[len(self.tile_prefix):]
        if path == f"/tile/dir/{self.folder}*.ecw":
            return Response(200, json.dumps(list(self.files)).encode(), "application/json")
        if path.startswith("/tile/imagesize/" + self.folder):
            name = path[len("/tile/imagesize/" + self.folder):]
            if name not in self.pyramids:
                return Response(404, b"not found\n")
            p = self.pyramids[name]
            return Response(200, json.dumps({"width": p.width, "height": p.height}).encode(), "application/json")
        m = re.fullmatch(r"/tile/image/(.+\.ecw)/([0-9a-f]{32})", path)
        if not m or not m.group(1).startswith(self.folder) or m.group(1)[len(self.folder):] not in self.pyramids:
            return Response(404, b"not found\n")
        image_path, name = m.group(1), m.group(1)[len(self.folder):]
        dec = Cipher(algorithms.AES(KEY), modes.ECB()).decryptor()
        plain = (dec.update(bytes.fromhex(m.group(2))) + dec.finalize()).rstrip(b"*").decode("latin-1")
        parts = plain.split("|")
        if len(parts) != 4 or not all(p.isdigit() for p in parts) or int(parts[0]) != sum(map(ord, image_path)) % 100:
            return Response(404, b"bad tile name\n")
        z, x, y = (int(v) for v in parts[1:])
        if z > self.top_zoom(name):
            return Response(404, b"no such zoom\n")
        w, h = self.size(name, z)
        if x >= _ceil_div(w, TILE) or y >= _ceil_div(h, TILE):
            return Response(404, b"no such tile\n")
        pyramid = self.pyramids[name]
        box = (x * TILE, y * TILE, min((x + 1) * TILE, w), min((y + 1) * TILE, h))
        if not self.pad:
            return Response(200, pyramid.tile((w, h), box), pyramid.content_type)
        crop = pyramid.level((w, h)).crop(box)
        whole = Image.new(crop.mode, (TILE, TILE), "white")
        whole.paste(crop, (0, 0))
        buf = io.BytesIO()
        if pyramid.lossless:
            whole.save(buf, "PNG", compress_level=PNG_COMPRESS_LEVEL)
        else:
            whole.convert("RGB").save(buf, "JPEG", quality=JPEG_QUALITY)
        return Response(200, buf.getvalue(), pyramid.content_type)
