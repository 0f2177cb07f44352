"""Deep Zoom kinds of the test server: ``image.dzi`` and ``image_files/{L}/{col}_{row}.{fmt}``.

``max_level = ceil(log2(max(W, H)))``, level ``L`` has size ``ceil(W / 2**(max_level - L))``, down to 1x1.
Tiles carry ``Overlap`` extra pixels on every side that touches a neighbour: ``dzi-png`` (2009 namespace,
PNG, overlap 1, tiles of ``tile_size - 2``), ``dzi-jpg`` (2008 namespace, JPEG, overlap 0).
"""

from __future__ import annotations

import re

from .._http import Response, _not_found
from ._base import Geometry, Source, ceil_div

NAMESPACES = {
    "dzi-png": "http://schemas.microsoft.com/deepzoom/2009",
    "dzi-jpg": "http://schemas.microsoft.com/deepzoom/2008",
}
KINDS = tuple(NAMESPACES)


def geometry(kind: str, W: int, H: int, ts: int) -> Geometry:
    max_level = (max(W, H) - 1).bit_length()
    sizes = tuple((ceil_div(W, 2**k), ceil_div(H, 2**k)) for k in range(max_level + 1))
    if kind == "dzi-png":
        return Geometry(sizes, ts - 2, ts - 2, overlap=1, fmt="png")
    return Geometry(sizes, ts, ts, overlap=0, fmt="jpg")


def path(kind: str) -> str:
    return f"/{kind}/image.dzi"


def tile_path(src: Source, kind: str, k: int, col: int, row: int, fmt: str | None) -> str:
    g = src._geom(kind)
    return f"/{kind}/image_files/{len(g.sizes) - 1 - k}/{col}_{row}.{g.fmt}"


def route(src: Source, kind: str, rest: str) -> Response:
    g = src._geom(kind)
    if rest == "image.dzi":
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<Image xmlns="{NAMESPACES[kind]}" Format="{g.fmt}" Overlap="{g.overlap}" '
            f'TileSize="{g.tile_w}">\n'
            f'  <Size Width="{src.width}" Height="{src.height}"/>\n'
            "</Image>\n"
        )
        return Response(200, body.encode(), "application/xml")
    m = re.fullmatch(r"image_files/(\d+)/(\d+)_(\d+)\.(\w+)", rest)
    if not m or m.group(4) != g.fmt:
        return _not_found()
    level, col, row = (int(v) for v in m.groups()[:3])
    n = len(g.sizes)
    if level >= n:
        return _not_found()
    return src._tile_response(kind, n - 1 - level, col, row)
