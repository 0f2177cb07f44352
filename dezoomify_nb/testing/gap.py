"""Google Arts & Culture on the loopback server: asset page, tile info XML, signed and encrypted tiles.

Use with :func:`dezoomify_nb.testing.hosts.route_hosts` and :attr:`GapSite.hosts`, so that the real
URL forms are replayed: the asset page ``https://artsandculture.google.com/asset/<slug>/<id>`` names
the image as ``//lh3.googleusercontent.com/ci/<key>`` plus a token; ``<base>=g`` is the tile info and
``<base>=x{x}-y{y}-z{z}-t{signature}`` a tile. Written from the format description, independently of
the dezoomer: the server checks each signature (HMAC-SHA1, 403 when wrong) and encrypts tiles as the
inverse of the documented decryption (a clear header, 32 bytes of AES-128-CBC, a clear footer, framed
by the ``0x0A0A0A0A`` marker and little-endian lengths). Tiles whose ``x + y`` is odd are served
unencrypted, as Google sometimes does, so both paths are exercised.

Levels (``z`` = 0 is the smallest) are ``floor(W / 2**k)`` down to the first that fits in one tile.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import re
import struct
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit

import numpy as np

from ._sites import Pyramid
from .tileserver import Response, TileServer

__all__ = ["GapSite"]

SIGN_KEY = bytes.fromhex("7b2b4e23de2cc5c5")
AES_KEY = bytes.fromhex("5b63db113b7af3e0b1435556c8f9530c")
AES_IV = bytes.fromhex("71e70405353a778bfa6fbc30321b9592")
PAGE_HOST = "artsandculture.google.com"
IMAGE_HOST = "lh3.googleusercontent.com"


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def encrypt(clear: bytes, header_size: int = 100, encrypted_size: int = 32) -> bytes:
    """The Google Arts & Culture tile framing of ``clear``: the inverse of the documented decryption."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    if encrypted_size % 16 or header_size + encrypted_size > len(clear):
        raise ValueError("tile too short for this framing")
    block = clear[header_size : header_size + encrypted_size]
    enc = Cipher(algorithms.AES(AES_KEY), modes.CBC(AES_IV)).encryptor()
    secret = enc.update(block) + enc.finalize()
    return (struct.pack("<I", 0x0A0A0A0A) + clear[:header_size] + struct.pack("<I", encrypted_size) + secret
            + clear[header_size + encrypted_size :] + struct.pack("<I", header_size))


class GapSite:
    """``image`` as a Google Arts & Culture asset. :meth:`install` adds the routes to a TileServer."""

    def __init__(self, image: np.ndarray, *, tile_size: int = 256, lossless: bool = True,
                 title: str = "The Test Pattern", creator: str = "Ada Byron Lovelace", date: str = "1843",
                 key: str = "AbCdEf-123_xyZ", token: str = "T0k3n-_aBc", slug: str = "the-test-pattern",
                 asset_id: str = "wwEzEHEBAqxv4w") -> None:
        self.pyramid = Pyramid(image, lossless=lossless)
        self.tile_size = tile_size
        self.title, self.creator, self.date = title, creator, date
        self.key, self.token, self.slug, self.asset_id = key, token, slug, asset_id
        w, h = self.pyramid.width, self.pyramid.height
        sizes = [(w, h)]
        while sizes[-1][0] > tile_size or sizes[-1][1] > tile_size:
            k = len(sizes)
            sizes.append((max(1, w >> k), max(1, h >> k)))
        self.sizes = tuple(sizes)  # largest first
        self.page_prefix = "/gap-page"
        self.image_prefix = "/gap-lh3"

    # ------------------------------------------------------------------ test helpers
    @property
    def page_url(self) -> str:
        return f"https://{PAGE_HOST}/asset/{self.slug}/{self.asset_id}"

    @property
    def base_url(self) -> str:
        return f"https://{IMAGE_HOST}/ci/{self.key}"

    @property
    def expected_title(self) -> str:
        first, _, last = self.creator.rpartition(" ")
        return f"{last}, {first}; {self.title}; {self.date}"

    @property
    def hosts(self) -> dict[str, str]:
        """The ``route_hosts`` mapping for this site."""
        return {PAGE_HOST: self.page_prefix, IMAGE_HOST: self.image_prefix}

    def level_image(self, k: int) -> np.ndarray:
        """Pixels of level ``k`` (0 = full resolution)."""
        return self.pyramid.level_array(self.sizes[k])

    def install(self, server: TileServer, page_prefix: str = "/gap-page", image_prefix: str = "/gap-lh3") -> str:
        """Add the routes; returns :attr:`page_url` (reach it through ``route_hosts(server, self.hosts)``)."""
        self.page_prefix, self.image_prefix = page_prefix.rstrip("/"), image_prefix.rstrip("/")
        server.add_route(self.page_prefix + "/", self._page)
        server.add_route(self.image_prefix + "/", self._image)
        return self.page_url

    # ------------------------------------------------------------------ the page
    def page_html(self) -> str:
        e = html.escape
        return (
            "<!DOCTYPE html><html><head><meta charset=\"utf-8\">"
            f"<title>{e(self.title)} - Google Arts &amp; Culture</title></head><body>"
            '<div class="hero"><h1 class="EReoAc">' + e(self.title) + '</h1><h2 class="QtzOu">'
            '<span class="QIJnJ"><a href="/entity/m0abc">' + e(self.creator) + "</a></span>"
            '<span class="QIJnJ">' + e(self.date) + "</span></h2></div>\n"
            '<script>window.INIT_data = [["stella.common.cobject","' + self.asset_id + '",'
            '"' + self.title + '",["' + self.creator + '"],null,[0,0]\n'
            ',"//' + IMAGE_HOST + "/ci/" + self.key + '","' + self.token + '",null,'
            '{"name":"' + self.title + " - " + self.creator + '"}]];</script></body></html>'
        )

    def _page(self, server: TileServer, raw_path: str, headers: Mapping[str, str]) -> Response:
        path = unquote(urlsplit(raw_path).path)[len(self.page_prefix) :]
        if path != f"/asset/{self.slug}/{self.asset_id}":
            return Response(404, b"not found\n")
        return Response(200, self.page_html().encode(), "text/html; charset=utf-8")

    # ------------------------------------------------------------------ tile info and tiles
    def tile_info_xml(self) -> str:
        ts = self.tile_size
        rows = []
        for k, (w, h) in reversed(list(enumerate(self.sizes))):
            nx, ny = _ceil_div(w, ts), _ceil_div(h, ts)
            rows.append(f'  <pyramid_level num_tiles_x="{nx}" num_tiles_y="{ny}" inverse_scale="{2**k}" '
                        f'empty_pels_x="{nx * ts - w}" empty_pels_y="{ny * ts - h}"/>')
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<TileInfo tile_width="{ts}" tile_height="{ts}" full_pyramid_depth="{len(self.sizes)}" '
            f'origin="TOP_LEFT" timestamp="1564671682" tiler_version_number="2" '
            f'image_width="{self.pyramid.width}" image_height="{self.pyramid.height}">\n'
            + "\n".join(rows) + "\n</TileInfo>\n"
        )

    def signature(self, x: int, y: int, z: int) -> str:
        msg = f"ci/{self.key}=x{x}-y{y}-z{z}-t{self.token}".encode()
        sig = base64.urlsafe_b64encode(hmac.new(SIGN_KEY, msg, hashlib.sha1).digest()).decode()
        return sig.rstrip("=").replace("-", "_")

    def _image(self, server: TileServer, raw_path: str, headers: Mapping[str, str]) -> Response:
        path = unquote(urlsplit(raw_path).path)[len(self.image_prefix) :]
        base = f"/ci/{self.key}"
        if path == base + "=g":
            return Response(200, self.tile_info_xml().encode(), "text/xml; charset=utf-8")
        m = re.fullmatch(re.escape(base) + r"=x(\d+)-y(\d+)-z(\d+)-t([A-Za-z0-9_]+)", path)
        if not m:
            return Response(404, b"not found\n")
        x, y, z = (int(v) for v in m.groups()[:3])
        if not hmac.compare_digest(m.group(4), self.signature(x, y, z)):
            return Response(403, b"bad signature\n")
        if z >= len(self.sizes):
            return Response(404, b"no such level\n")
        size = self.sizes[len(self.sizes) - 1 - z]
        ts = self.tile_size
        if x >= _ceil_div(size[0], ts) or y >= _ceil_div(size[1], ts):
            return Response(404, b"no such tile\n")
        box = (x * ts, y * ts, min((x + 1) * ts, size[0]), min((y + 1) * ts, size[1]))
        clear = self.pyramid.tile(size, box)
        body = encrypt(clear) if (x + y) % 2 == 0 and len(clear) >= 132 else clear
        return Response(200, body, "image/jpeg")
