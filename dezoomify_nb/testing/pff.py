"""A Zoomify PFF servlet on the loopback server: a real ``.pff`` byte layout built from an image.

The file follows the format as documented by the pff-extract project (all numbers big-endian):

* a fixed 0x424-byte header: version at 0x8, size of the JFIF header table at 0x74, number of tiles
  at 0x7c, width at 0x41c, height at 0x420;
* the JFIF header table (``count``, then ``size`` + bytes per element);
* one 8-byte pointer per tile: the offset where that tile's data **ends**;
* the tile data, glued together, each followed by a 24-byte footer that starts with its length 0x18.

Tiles are numbered from the top-left tile of the **largest** level, row-major, level after level;
levels halve (rounding up) while both sides still cover a whole tile. The servlet answers
``?file=F&requestType=1`` (header), ``...&vers&head&begin&end&requestType=2`` (the pointer table as
``"F, n1 n2 ..."``) and ``...&requestType=0`` (one tile, footer stripped), reading everything back
from the bytes of the file and refusing (HTTP 400) any request whose numbers do not match it.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from urllib.parse import parse_qs, quote, urlsplit

import numpy as np

from ._sites import Pyramid
from .tileserver import Response, TileServer

__all__ = ["PffSite"]

HEADER_OVERHEAD = 0x424
FOOTER = struct.pack(">I", 0x18) + bytes(20)


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


class PffSite:
    """``image`` as a ``.pff`` file behind a servlet; :meth:`install` adds it to a TileServer."""

    def __init__(self, image: np.ndarray, *, tile_size: int = 256, lossless: bool = True, version: int = 106,
                 file: str = "/images/test image.pff") -> None:
        self.pyramid = Pyramid(image, lossless=lossless)
        self.tile_size = tile_size
        self.version = version
        self.file = file
        w, h = self.pyramid.width, self.pyramid.height
        sizes: list[tuple[int, int]] = []
        while w >= tile_size and h >= tile_size:
            sizes.append((w, h))
            w, h = _ceil_div(w, 2), _ceil_div(h, 2)
        if not sizes:
            raise ValueError("the image is smaller than one tile")
        self.sizes = tuple(sizes)
        self.data = self._build()
        self.prefix = ""

    # ------------------------------------------------------------------ the file
    def _tiles(self):
        ts = self.tile_size
        for size in self.sizes:
            w, h = size
            for row in range(_ceil_div(h, ts)):
                for col in range(_ceil_div(w, ts)):
                    box = (col * ts, row * ts, min((col + 1) * ts, w), min((row + 1) * ts, h))
                    yield self.pyramid.tile(size, box) + FOOTER

    def _build(self) -> bytes:
        tiles = list(self._tiles())
        element = b"\xff\xd8 dezoomify_nb test JFIF header table entry"
        table = struct.pack(">II", 1, len(element)) + element
        header = bytearray(HEADER_OVERHEAD)
        struct.pack_into(">I", header, 0x8, self.version)
        struct.pack_into(">I", header, 0x74, len(table))
        struct.pack_into(">I", header, 0x7C, len(tiles))
        struct.pack_into(">I", header, 0x41C, self.pyramid.width)
        struct.pack_into(">I", header, 0x420, self.pyramid.height)
        pos = HEADER_OVERHEAD + len(table) + 8 * len(tiles)
        pointers = bytearray()
        for t in tiles:
            pos += len(t)
            pointers += struct.pack(">Q", pos)
        return bytes(header) + table + bytes(pointers) + b"".join(tiles)

    def _field(self, offset: int) -> int:
        return struct.unpack_from(">I", self.data, offset)[0]

    @property
    def header_size(self) -> int:
        return self._field(0x74)

    @property
    def num_tiles(self) -> int:
        return self._field(0x7C)

    # ------------------------------------------------------------------ test helpers
    def level_image(self, k: int) -> np.ndarray:
        """Pixels of level ``k`` (0 = full resolution)."""
        return self.pyramid.level_array(self.sizes[k])

    def install(self, server: TileServer, prefix: str = "/pff") -> str:
        """Serve the servlet at ``prefix + "/servlet"``; returns the header (``requestType=1``) URL."""
        self.prefix = prefix.rstrip("/")
        server.add_route(self.prefix + "/servlet", self._handle)
        return f"{server.base_url}{self.prefix}/servlet?file={quote(self.file)}&requestType=1"

    # ------------------------------------------------------------------ the servlet
    def _handle(self, server: TileServer, raw_path: str, headers: Mapping[str, str]) -> Response:
        params = {k: v[0] for k, v in parse_qs(urlsplit(raw_path).query, keep_blank_values=True).items()}
        if params.get("file") != self.file:
            return Response(200, b"Error=1&newSize=0&reply_data=")
        kind = params.get("requestType")
        if kind == "1":
            return self._reply(self._header_xml())
        try:
            vers, head = int(params["vers"]), int(params["head"])
            begin, end = int(params["begin"]), int(params["end"])
        except (KeyError, ValueError):
            return Response(400, b"missing or invalid vers/head/begin/end\n")
        if vers != self._field(0x8) or head != self.header_size:
            return Response(400, b"vers/head do not match the file\n")
        if kind == "2":
            return self._indices(begin, end)
        if kind == "0":
            return self._tile(begin, end)
        return Response(400, b"unknown requestType\n")

    def _reply(self, data: str) -> Response:
        return Response(200, f"Error=0&newSize={len(data)}&reply_data={data}".encode())

    def _header_xml(self) -> str:
        return (f'<PFFHEADER WIDTH="{self._field(0x41C)}" HEIGHT="{self._field(0x420)}" '
                f'NUMTILES="{self.num_tiles}" NUMIMAGES="1" HEADERSIZE="{self.header_size}" '
                f'VERSION="{self._field(0x8)}" ZA="0" TILESIZE="{self.tile_size}"/>')

    def _indices(self, begin: int, end: int) -> Response:
        start = HEADER_OVERHEAD + self.header_size
        if begin != start or end != start + 8 * self.num_tiles:
            return Response(400, b"begin/end are not the pointer table\n")
        pointers = struct.unpack(f">{self.num_tiles}Q", self.data[begin:end])
        first = end  # the first tile starts right after the table
        rel = "  ".join(str(p - first) for p in pointers)
        return self._reply(f"{first},  {rel}")

    def _tile(self, begin: int, end: int) -> Response:
        table = HEADER_OVERHEAD + self.header_size
        tiles_start = table + 8 * self.num_tiles
        if not tiles_start <= begin < end <= len(self.data):
            return Response(400, b"begin/end outside the tile data\n")
        pointers = struct.unpack(f">{self.num_tiles}Q", self.data[table:tiles_start])
        ends = dict(zip((tiles_start, *pointers[:-1]), pointers, strict=True))
        if ends.get(begin) != end:
            return Response(400, b"begin/end do not delimit one tile\n")
        body = self.data[begin:end]
        if body[-len(FOOTER) : -20] != FOOTER[:4]:
            return Response(400, b"begin/end do not delimit one tile\n")
        return Response(200, body[: -len(FOOTER)], self.pyramid.content_type)
