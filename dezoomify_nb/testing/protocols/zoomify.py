"""Zoomify kinds of the test server: ``ImageProperties.xml`` and ``TileGroup{g}/{z}-{x}-{y}.jpg``.

* ``zoomify``: the zoomify.js method -- sizes ``floor(W / 2**k)`` while the level is larger than one tile;
  the one-tile level is *not* served (an image that fits in one tile is served as a single level).
  ``NUMTILES`` is the sum of the tile counts, so a client using the zoomify.js method finds exactly these
  levels.  ``z`` in tile URLs counts from the smallest level.
* ``zoomify-even``: the Zoomify-converter method -- ``(W // 2**k, H // 2**k)`` with odd components rounded
  up to even, down to and including the level that fits in one tile; ``NUMTILES`` is their tile count
  (which the zoomify.js method never reproduces, so clients fall back to this method).
"""

from __future__ import annotations

import re

from .._http import Response, _not_found
from ._base import Geometry, Source

KINDS = ("zoomify", "zoomify-even")


def geometry(kind: str, W: int, H: int, ts: int) -> Geometry:
    if kind == "zoomify":
        sizes = []
        w, h = W, H
        while w > ts or h > ts:  # zoomify.js: halve floats, truncate; == W >> k
            sizes.append((w, h))
            w, h = w // 2, h // 2
        return Geometry(tuple(sizes) or ((W, H),), ts, ts, fmt="jpg")
    sizes = [(W, H)]
    k = 1
    while sizes[-1][0] > ts or sizes[-1][1] > ts:
        w, h = W // 2**k, H // 2**k
        sizes.append((w + w % 2, h + h % 2))
        k += 1
    return Geometry(tuple(sizes), ts, ts, fmt="jpg")


def path(kind: str) -> str:
    return f"/{kind}/ImageProperties.xml"


def _group(g: Geometry, z: int, col: int, row: int) -> int:
    n = len(g.sizes)
    before = sum(g.tile_count(n - 1 - zz) for zz in range(z))
    cols, _ = g.grid(n - 1 - z)
    return (before + col + row * cols) // 256


def tile_path(src: Source, kind: str, k: int, col: int, row: int, fmt: str | None) -> str:
    g = src._geom(kind)
    z = len(g.sizes) - 1 - k
    return f"/{kind}/TileGroup{_group(g, z, col, row)}/{z}-{col}-{row}.jpg"


def route(src: Source, kind: str, rest: str) -> Response:
    g = src._geom(kind)
    if rest == "ImageProperties.xml":
        body = (
            f'<IMAGE_PROPERTIES WIDTH="{src.width}" HEIGHT="{src.height}" '
            f'NUMTILES="{src.numtiles(kind)}" NUMIMAGES="1" VERSION="1.8" '
            f'TILESIZE="{src.tile_size}" />'
        )
        return Response(200, body.encode(), "application/xml")
    m = re.fullmatch(r"TileGroup(\d+)/(\d+)-(\d+)-(\d+)\.jpg", rest)
    if not m:
        return _not_found()
    group, z, col, row = (int(v) for v in m.groups())
    n = len(g.sizes)
    if z >= n:
        return _not_found()
    cols, rows = g.grid(n - 1 - z)
    if col >= cols or row >= rows or group != _group(g, z, col, row):
        return _not_found()
    return src._tile_response(kind, n - 1 - z, col, row)
