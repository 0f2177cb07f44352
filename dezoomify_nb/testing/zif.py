"""ZIF files for tests: written byte by byte the way Zoomify does, or by tifffile the way libtiff does.

:func:`make_zif` writes a little-endian BigTIFF with one IFD per level (full resolution first, then each
``ceil(W/2) × ceil(H/2)`` down to one tile), tiles cut from :class:`~._sites.Pyramid` level images and
encoded by Pillow, **edge tiles clipped** (not padded). Options cover what real files do:

* ``layout="zoomify"``: header, every IFD with its arrays, then the tiles (one 16 KiB read holds all
  metadata); ``"spread"``: each IFD followed by its arrays and tiles (as libtiff/tifffile write);
  ``"arrays_last"``: IFDs first, then tiles, then every offset/count array at the end of the file;
* ``shared_tables=True``: abbreviated JPEG tiles (no DQT/DHT) and one ``JPEGTables`` tag per IFD;
* ``rgb=True``: JPEG tiles in RGB colour space without an Adobe marker and with component ids 1, 2, 3
  (what libtiff writes for ``Photometric=RGB``), which decoders take for YCbCr unless told;
* ``png=True``: PNG tiles (Compression 34933), lossless.

:func:`make_tifffile_zif` writes the same pyramid with tifffile (JPEG through imagecodecs, padded edge
tiles, IFDs spread, optionally classic TIFF or big-endian). Both return a :class:`ZifFixture` whose
``level_image(k)`` is what level ``k`` was encoded from; :meth:`ZifFixture.serve` puts the file on a
:class:`~.TileServer` (``ranges=False`` emulates a server that ignores ``Range``).
"""

from __future__ import annotations

import io
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

import numpy as np

from ._sites import Pyramid
from .tileserver import JPEG_QUALITY, PNG_COMPRESS_LEVEL, Response, TileServer

__all__ = ["ZifFixture", "jpeg_segments", "make_tifffile_zif", "make_zif", "zif_level_sizes"]

LONG, SHORT, LONG8, UNDEFINED = 4, 3, 16, 7
_FMT = {SHORT: "H", LONG: "I", LONG8: "Q", UNDEFINED: "B"}


def zif_level_sizes(width: int, height: int, tile_size: int) -> list[tuple[int, int]]:
    """Full size, then halved (rounding up) until one tile holds the level."""
    sizes = [(width, height)]
    while sizes[-1][0] > tile_size or sizes[-1][1] > tile_size:
        w, h = sizes[-1]
        sizes.append(((w + 1) // 2, (h + 1) // 2))
    return sizes


@dataclass
class ZifFixture:
    data: bytes
    sizes: list[tuple[int, int]]
    tile_size: int
    pyramid: Pyramid
    #: per level, the byte range of each tile (row-major), as written
    tiles: list[list[tuple[int, int]]] = field(default_factory=list)

    def level_image(self, k: int) -> np.ndarray:
        return self.pyramid.level_array(self.sizes[k])

    def serve(self, server: TileServer, prefix: str, name: str = "image.zif", *, ranges: bool = True) -> str:
        """Serve the file at ``<prefix>/<name>`` (any query string is ignored, as static servers do);
        ``Range: bytes=a-b`` gets 206, or the whole file with 200 when ``ranges=False``. Returns its URL."""
        prefix = "/" + prefix.strip("/") + "/"
        data = self.data

        def handler(_server: TileServer, raw_path: str, headers: Mapping[str, str]) -> Response:
            if unquote(raw_path[len(prefix):].split("?", 1)[0]) != name:
                return Response(404, b"not found")
            m = re.fullmatch(r"bytes=(\d+)-(\d*)", headers.get("Range") or "")
            if not ranges or m is None:
                return Response(200, data, "application/octet-stream")
            start = int(m.group(1))
            end = min(int(m.group(2) or len(data) - 1), len(data) - 1)
            if start >= len(data) or end < start:
                return Response(416, b"", "application/octet-stream", {"Content-Range": f"bytes */{len(data)}"})
            return Response(206, data[start : end + 1], "application/octet-stream",
                            {"Content-Range": f"bytes {start}-{end}/{len(data)}", "Accept-Ranges": "bytes"})

        server.add_route(prefix, handler)
        return server.base_url + prefix + quote(name)


def jpeg_segments(data: bytes) -> list[tuple[int, bytes]]:
    """``(marker, whole segment bytes)`` of a JPEG stream up to (not including) SOS; SOI excluded."""
    out, i = [], 2
    while data[i] == 0xFF and data[i + 1] != 0xDA:
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        out.append((data[i + 1], data[i : i + 2 + length]))
        i += 2 + length
    return out


def _encode(img, *, png: bool, rgb: bool, quality: int) -> bytes:
    from PIL import Image as PILImage

    buf = io.BytesIO()
    if png:
        img.save(buf, "PNG", compress_level=PNG_COMPRESS_LEVEL)
        return buf.getvalue()
    img = img.convert("RGB") if img.mode not in ("L", "RGB") else img
    assert isinstance(img, PILImage.Image)
    img.save(buf, "JPEG", quality=quality, keep_rgb=rgb)
    data = buf.getvalue()
    if rgb:  # drop the Adobe marker and use ids 1, 2, 3 (libtiff writes neither 'R','G','B' nor APP14)
        segs = jpeg_segments(data)
        head = []
        for m, seg in segs:
            if m == 0xEE:
                continue
            if m in (0xC0, 0xC1, 0xC2):  # SOF: Nf at 9, then (id, sampling, table) per component
                seg = bytearray(seg)
                for c in range(seg[9]):
                    seg[10 + 3 * c] = c + 1
            head.append(bytes(seg))
        rest = bytearray(data[2 + sum(len(seg) for _, seg in segs):])
        assert rest[:2] == b"\xff\xda"
        for c in range(rest[4]):  # SOS: Ns at 4, then (id, tables) per component
            rest[5 + 2 * c] = c + 1
        data = data[:2] + b"".join(head) + bytes(rest)
    return data


def _split_tables(tiles: list[bytes]) -> tuple[list[bytes], bytes]:
    """Abbreviated tiles (DQT and DHT removed) and the JPEGTables stream they share."""
    shared: bytes | None = None
    out = []
    for t in tiles:
        segs = jpeg_segments(t)
        tables = b"".join(seg for m, seg in segs if m in (0xDB, 0xC4))
        if shared is None:
            shared = tables
        assert tables == shared, "tiles do not share their JPEG tables"
        head_len = 2 + sum(len(seg) for _, seg in segs)
        out.append(t[:2] + b"".join(seg for m, seg in segs if m not in (0xDB, 0xC4)) + t[head_len:])
    return out, b"\xff\xd8" + (shared or b"") + b"\xff\xd9"


def make_zif(image: np.ndarray, *, tile_size: int = 256, layout: str = "zoomify", shared_tables: bool = False,
             rgb: bool = False, png: bool = False, quality: int = JPEG_QUALITY) -> ZifFixture:
    """A ZIF of ``image`` written byte by byte (see the module docstring)."""
    if layout not in ("zoomify", "spread", "arrays_last"):
        raise ValueError(f"unknown layout {layout!r}")
    pyramid = Pyramid(image, lossless=png)
    sizes = zif_level_sizes(pyramid.width, pyramid.height, tile_size)
    grey = pyramid.full.mode == "L"
    ifds = []  # (entries [(tag, type, values or bytes)], tiles)
    for k, (w, h) in enumerate(sizes):
        level = pyramid.level((w, h))
        tiles = []
        for y in range(0, h, tile_size):
            for x in range(0, w, tile_size):
                crop = level.crop((x, y, min(x + tile_size, w), min(y + tile_size, h)))
                tiles.append(_encode(crop, png=png, rgb=rgb, quality=quality))
        tables = b""
        if shared_tables and not png:
            tiles, tables = _split_tables(tiles)
        spp = 1 if grey else 3
        photometric = 1 if grey else (2 if rgb or png else 6)
        entries: list[tuple[int, int, object]] = [
            (254, LONG, [0 if k == 0 else 1]), (256, LONG, [w]), (257, LONG, [h]), (258, SHORT, [8] * spp),
            (259, SHORT, [34933 if png else 7]), (262, SHORT, [photometric]), (277, SHORT, [spp]),
            (284, SHORT, [1]), (322, SHORT, [tile_size]), (323, SHORT, [tile_size]),
            (324, LONG8, [0] * len(tiles)), (325, LONG, [len(t) for t in tiles]),
        ]
        if tables:
            entries.append((347, UNDEFINED, tables))
        if photometric == 6:
            entries.append((530, SHORT, [2, 2]))
        ifds.append((sorted(entries, key=lambda e: e[0]), tiles))
    data, placed = _write(ifds, layout)
    return ZifFixture(data, sizes, tile_size, pyramid, placed)


def _payload(typ: int, values: object) -> bytes:
    if isinstance(values, bytes):
        return values
    return struct.pack("<" + _FMT[typ] * len(values), *values)  # type: ignore[arg-type]


def _write(ifds: list, layout: str) -> tuple[bytes, list[list[tuple[int, int]]]]:
    """Place IFDs, out-of-line values and tiles, then fill in the tile offsets."""
    pos = 16
    ifd_at, value_at, tile_at = [], [], []

    def values(k: int) -> None:
        nonlocal pos
        where = {}
        for tag, typ, vals in ifds[k][0]:
            size = len(_payload(typ, vals))
            if size > 8:
                where[tag] = pos
                pos += size + (size & 1)
        value_at[k] = where

    def tiles(k: int) -> None:
        nonlocal pos
        at = []
        for t in ifds[k][1]:
            at.append((pos, len(t)))
            pos += len(t)
        tile_at[k] = at

    value_at = [None] * len(ifds)  # type: ignore[list-item]
    tile_at = [None] * len(ifds)  # type: ignore[list-item]
    for k, (entries, _) in enumerate(ifds):
        ifd_at.append(pos)
        pos += 8 + 20 * len(entries) + 8
        if layout == "zoomify":
            values(k)
        elif layout == "spread":
            values(k)
            tiles(k)
    if layout != "spread":
        for k in range(len(ifds)):
            tiles(k)
    if layout == "arrays_last":
        for k in range(len(ifds)):
            values(k)
    out = bytearray(pos)
    out[0:16] = b"II" + struct.pack("<HHHQ", 43, 8, 0, ifd_at[0])
    for k, (entries, tile_list) in enumerate(ifds):
        at = ifd_at[k]
        struct.pack_into("<Q", out, at, len(entries))
        for e, (tag, typ, vals) in enumerate(entries):
            if tag == 324:
                vals = [p for p, _ in tile_at[k]]
            payload = _payload(typ, vals)
            count = len(payload) // struct.calcsize(_FMT[typ])
            slot = payload.ljust(8, b"\0") if len(payload) <= 8 else struct.pack("<Q", value_at[k][tag])
            struct.pack_into("<HHQ", out, at + 8 + 20 * e, tag, typ, count)
            out[at + 8 + 20 * e + 12 : at + 8 + 20 * e + 20] = slot
            if len(payload) > 8:
                out[value_at[k][tag] : value_at[k][tag] + len(payload)] = payload
        nxt = ifd_at[k + 1] if k + 1 < len(ifds) else 0
        struct.pack_into("<Q", out, at + 8 + 20 * len(entries), nxt)
        for (p, n), t in zip(tile_at[k], tile_list, strict=True):
            out[p : p + n] = t
    return bytes(out), tile_at


def make_tifffile_zif(image: np.ndarray, *, tile_size: int = 256, bigtiff: bool = True, byteorder: str = "<",
                      quality: int = JPEG_QUALITY) -> ZifFixture:
    """The pyramid written by tifffile: JPEG tiles (imagecodecs), padded edge tiles, IFDs spread out."""
    import tifffile

    pyramid = Pyramid(image, lossless=False)
    sizes = zif_level_sizes(pyramid.width, pyramid.height, tile_size)
    buf = io.BytesIO()
    with tifffile.TiffWriter(buf, bigtiff=bigtiff, byteorder=byteorder) as tw:
        for k, size in enumerate(sizes):
            arr = pyramid.level_array(size)
            tw.write(arr, tile=(tile_size, tile_size), compression="jpeg", compressionargs={"level": quality},
                     photometric="minisblack" if arr.ndim == 2 else "rgb", subfiletype=0 if k == 0 else 1)
    data = buf.getvalue()
    placed = []
    with tifffile.TiffFile(io.BytesIO(data)) as tf:
        for page in tf.pages:
            placed.append(list(zip(page.dataoffsets, page.databytecounts, strict=True)))  # type: ignore[union-attr]
    return ZifFixture(data, sizes, tile_size, pyramid, placed)
