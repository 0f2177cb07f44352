"""IIIF Image API kinds of the test server: ``info.json`` and ``{region}/{size}/0/{quality}.{fmt}``.

* ``iiif2``: version 2, level 2, ``tiles`` of ``tile_size``; ``iiif3``: version 3, level 1, tiles of
  ``2 * tile_size``; ``iiif2-notiles``: version 2 without ``tiles``.
* Levels: scale factors 1, 2, 4, ... up to the first at which the image fits in one tile; the level for
  scale factor ``s`` has size ``ceil(W / s)``.

Image requests are answered like a real server: the region is cropped at full resolution and scaled to
the requested size.  When the region maps to a whole-pixel box of a power-of-two level (``x``, ``y``
multiples of ``s``, the far edge a multiple of ``s`` or the image edge) and the requested size is
``rw / s`` (ceil or floor at the image edge), the pixels are cut from that level image (truncated by one
pixel for floor-rounded edge tiles).  Any other request is cropped from the full image and resized with
``BOX`` to the requested size.  Every ``info.json`` says ``"preferredFormats": ["png"]`` (lossless tiles,
so downloads compare exactly; clients ask for jpg by default); jpg is served as well.
"""

from __future__ import annotations

import json
from typing import Any

from PIL import Image

from .._http import Response, _BadRequest, _not_found
from ..iiif_request import parse_region, parse_size
from ._base import CONTENT_TYPES, LEVEL_FILTER, Geometry, Source, ceil_div

KINDS = ("iiif2", "iiif3", "iiif2-notiles")


def _sizes(W: int, H: int, tile: int) -> list[tuple[int, int]]:
    sizes = []
    s = 1
    while True:
        w, h = ceil_div(W, s), ceil_div(H, s)
        sizes.append((w, h))
        if w <= tile and h <= tile:
            return sizes
        s *= 2


def geometry(kind: str, W: int, H: int, ts: int) -> Geometry:
    tile = 2 * ts if kind == "iiif3" else ts
    return Geometry(tuple(_sizes(W, H, tile)), tile, tile, fmt="png")


def path(kind: str) -> str:
    return f"/{kind}/info.json"


def tile_path(src: Source, kind: str, k: int, col: int, row: int, fmt: str | None) -> str:
    """``x,y,w,h`` regions with the exact level box as ``w,h`` size and ``default.{fmt}`` (png by default)."""
    g = src._geom(kind)
    s = 2**k
    x, y = col * g.tile_w * s, row * g.tile_h * s
    rw, rh = min(g.tile_w * s, src.width - x), min(g.tile_h * s, src.height - y)
    x0, y0, x1, y1 = g.box(k, col, row)
    return f"/{kind}/{x},{y},{rw},{rh}/{x1 - x0},{y1 - y0}/0/default.{fmt or 'png'}"


def info(src: Source, kind: str) -> dict[str, Any]:
    g = src._geom(kind)
    base_id = f"{src.base_url}/{kind}"
    scale_factors = [2**k for k in range(len(g.sizes))]
    sizes = [{"width": w, "height": h} for w, h in reversed(g.sizes)]
    if kind == "iiif3":
        return {
            "@context": "http://iiif.io/api/image/3/context.json",
            "id": base_id,
            "type": "ImageService3",
            "protocol": "http://iiif.io/api/image",
            "profile": "level1",
            "width": src.width,
            "height": src.height,
            "sizes": sizes,
            "tiles": [{"width": g.tile_w, "scaleFactors": scale_factors}],
            "extraFormats": ["png"],
            "preferredFormats": ["png"],
            "extraQualities": ["color"],
            "extraFeatures": ["sizeByPct", "sizeByConfinedWh", "sizeUpscaling"],
        }
    doc: dict[str, Any] = {
        "@context": "http://iiif.io/api/image/2/context.json",
        "@id": base_id,
        "protocol": "http://iiif.io/api/image",
        "width": src.width,
        "height": src.height,
        "sizes": sizes,
        "preferredFormats": ["png"],  # not in v2, but read by OpenSeadragon, dezoomify-rs and us
    }
    if kind == "iiif2":
        doc["tiles"] = [{"width": g.tile_w, "height": g.tile_h, "scaleFactors": scale_factors}]
    doc["profile"] = [
        "http://iiif.io/api/image/2/level2.json",
        {
            "formats": ["jpg", "png"],
            "qualities": ["default", "color"],
            "supports": [
                "regionByPx",
                "regionSquare",
                "sizeByW",
                "sizeByH",
                "sizeByWh",
                "sizeByPct",
                "sizeByConfinedWh",
                "sizeByForcedWh",
            ],
        },
    ]
    return doc


def route(src: Source, kind: str, rest: str) -> Response:
    if rest == "":
        return Response(303, b"", headers={"Location": f"{src.base_url}/{kind}/info.json"})
    if rest == "info.json":
        body = json.dumps(info(src, kind), indent=1).encode()
        return Response(200, body, "application/json")
    parts = rest.split("/")
    if len(parts) != 4:
        return _not_found()
    region_s, size_s, rotation_s, tail = parts
    quality, dot, fmt = tail.rpartition(".")
    if not dot or fmt not in CONTENT_TYPES:
        raise _BadRequest(f"unsupported format {fmt!r}")
    if quality not in ("default", "color"):
        raise _BadRequest(f"unsupported quality {quality!r}")
    if rotation_s != "0":
        raise _BadRequest(f"unsupported rotation {rotation_s!r}")
    version = 3 if kind == "iiif3" else 2
    region = parse_region(region_s, src.width, src.height)
    size = parse_size(size_s, region[2], region[3], version, src.width, src.height)
    return src._cached(("iiif", region, size, fmt), fmt, lambda: _pixels(src, region, size))


def _pixels(src: Source, region: tuple[int, int, int, int], size: tuple[int, int]) -> Image.Image:
    x, y, rw, rh = region
    sw, sh = size
    W, H = src.width, src.height
    for sf in sorted({rw // sw, ceil_div(rw, sw), rh // sh, ceil_div(rh, sh)}):
        if sf < 1 or sf & (sf - 1) or x % sf or y % sf:
            continue
        if (x + rw) % sf and x + rw != W:
            continue
        if (y + rh) % sf and y + rh != H:
            continue
        if sw not in (rw // sf, ceil_div(rw, sf)) or sh not in (rh // sf, ceil_div(rh, sf)):
            continue
        level = src._level_pil((ceil_div(W, sf), ceil_div(H, sf)))
        return level.crop((x // sf, y // sf, x // sf + sw, y // sf + sh))
    crop = src._full_pil().crop((x, y, x + rw, y + rh))
    return crop if (sw, sh) == (rw, rh) else crop.resize((sw, sh), LEVEL_FILTER)
