"""Coordinates of map sources: CRS names, lon/lat ↔ Web Mercator, bounding boxes → pixel boxes. No I/O.

Longitude/latitude (EPSG:4326, x = longitude) ↔ Web Mercator (EPSG:3857) is closed-form; any other pair of
CRSs goes through ``pyproj`` when it is installed (an optional dependency) and raises
:class:`~dezoomify_nb.errors.GeoError` with a hint otherwise. Geotransforms are GDAL's: ``(c, a, b, f, d, e)``
with ``X = c + a·col + b·row``, ``Y = f + d·col + e·row`` at the pixel corner ``(col, row)``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from .errors import GeoError
from .model import GeoRef, Image, Level

RADIUS = 6378137.0
#: half the width of the Web Mercator world, in metres (x runs from -HALF_WORLD to +HALF_WORLD)
HALF_WORLD = math.pi * RADIUS
#: the latitude where Web Mercator is square (y = ±HALF_WORLD)
MAX_LAT = math.degrees(2 * math.atan(math.exp(math.pi)) - math.pi / 2)
#: codes used for spherical (Web) Mercator besides 3857 (Google's, ESRI's, the old EPSG one)
MERCATOR_CODES = frozenset({3857, 900913, 3785, 102100, 102113, 41001})
LONLAT = "EPSG:4326"
WEB_MERCATOR = "EPSG:3857"

Transform = tuple[float, float, float, float, float, float]
BBox = tuple[float, float, float, float]

_CRS_RE = re.compile(r"^\s*(?:epsg\s*:+\s*)?(\d{1,9})\s*$|(?:epsg(?::[\d.]*)?:+|/epsg/[\d.]+/)(\d{1,9})\s*$", re.I)
_WKT_RE = re.compile(r"(?:PROJ|GEOG|GEOC|COMPD|VERT|ENGINEERING|BOUND)?CRS\[|(?:PROJCS|GEOGCS|GEOCCS|COMPD_CS)\[", re.I)
_CRS84_RE = re.compile(r"crs:?84$|ogc:[\d.]*:?crs84$|ogc:(?:[\d.]+:)?84$|/ogc/[\d.]+/crs84$", re.I)


def crs_from_code(code: int | None) -> str | None:
    """``"EPSG:<code>"``, with the aliases of Web Mercator (102100, 900913…) as ``EPSG:3857`` and Esri's own
    codes (53xxx, 54xxx, 102xxx…) as ``"ESRI:<code>"``."""
    if code is None or code <= 0:
        return None
    if code in MERCATOR_CODES:
        return WEB_MERCATOR
    return f"ESRI:{code}" if 53000 <= code < 55000 or code >= 100000 else f"EPSG:{code}"


def parse_crs(text: str | int) -> str:
    """A CRS as ``"EPSG:<code>"``: ``4326``, ``EPSG:2056``, ``urn:ogc:def:crs:EPSG::3857``, ``CRS:84``…;
    ``ESRI:<code>`` and WKT are kept as they are (pyproj reads them)."""
    s = str(text).strip()
    if _CRS84_RE.search(s):
        return LONLAT
    esri = re.fullmatch(r"esri:+(\d{1,9})", s, re.I)
    if esri:
        return crs_from_code(int(esri.group(1))) or s
    if _WKT_RE.match(s):
        return s
    m = _CRS_RE.search(s)
    crs = crs_from_code(int(m.group(1) or m.group(2))) if m else None
    if crs is None:
        raise GeoError(f"{text!r} is not a CRS this program knows", hint="Give an EPSG code: EPSG:4326, EPSG:3857, "
                       "EPSG:2056…")
    return crs


def parse_bbox(value: str | Sequence[float]) -> BBox:
    """``west,south,east,north`` (a string or 4 numbers) as floats, checked."""
    parts = value.replace(" ", ",").split(",") if isinstance(value, str) else list(value)
    parts = [p for p in parts if p != ""]
    try:
        nums = [float(p) for p in parts]
    except (TypeError, ValueError):
        nums = []
    if len(nums) != 4 or not all(math.isfinite(v) for v in nums):
        raise GeoError(f"{value!r}: expected a bounding box west,south,east,north (4 numbers)")
    w, s, e, n = nums
    if not (e > w and n > s):
        raise GeoError(f"bounding box {value!r}: east must be greater than west and north greater than south",
                       hint="Give --bbox west,south,east,north (a box across the antimeridian is not supported: "
                            "save its two halves).")
    return w, s, e, n


def lonlat_to_mercator(lon: float, lat: float) -> tuple[float, float]:
    lat = max(-MAX_LAT, min(MAX_LAT, lat))
    return RADIUS * math.radians(lon), RADIUS * math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))


def mercator_to_lonlat(x: float, y: float) -> tuple[float, float]:
    return math.degrees(x / RADIUS), math.degrees(2 * math.atan(math.exp(y / RADIUS)) - math.pi / 2)


def _pyproj_transformer(src: str, dst: str):
    try:
        from pyproj import Transformer
        from pyproj.exceptions import CRSError
    except ImportError:
        raise GeoError(f"converting coordinates from {src} to {dst} needs pyproj, which is not installed",
                       hint="pip install pyproj (or give the box in longitude/latitude or in the map's own CRS)"
                       ) from None
    try:
        return Transformer.from_crs(src, dst, always_xy=True)
    except CRSError as exc:
        raise GeoError(f"cannot convert coordinates from {src} to {dst}: {exc}") from None


def transform_points(xs: Sequence[float], ys: Sequence[float], src: str, dst: str) -> tuple[list[float], list[float]]:
    """Points from CRS ``src`` to ``dst`` (x first: longitude, easting)."""
    src, dst = parse_crs(src), parse_crs(dst)
    if src == dst:
        return list(xs), list(ys)
    if (src, dst) == (LONLAT, WEB_MERCATOR):
        pts = [lonlat_to_mercator(x, y) for x, y in zip(xs, ys, strict=True)]
    elif (src, dst) == (WEB_MERCATOR, LONLAT):
        pts = [mercator_to_lonlat(x, y) for x, y in zip(xs, ys, strict=True)]
    else:
        out_x, out_y = _pyproj_transformer(src, dst).transform(list(xs), list(ys))
        pts = list(zip(out_x, out_y, strict=True))
    if not pts or not all(math.isfinite(a) and math.isfinite(b) for a, b in pts):
        raise GeoError(f"the box cannot be expressed in {dst} (coordinates out of its domain)")
    return [p[0] for p in pts], [p[1] for p in pts]


def transform_bbox(bbox: BBox, src: str, dst: str, *, densify: int = 20) -> BBox:
    """The box ``bbox`` in ``src`` as the smallest box in ``dst`` holding its outline (edges densified)."""
    src, dst = parse_crs(src), parse_crs(dst)
    if src == dst:
        return bbox
    w, s, e, n = bbox
    if src == LONLAT and dst == WEB_MERCATOR:  # both monotonous along the axes: the corners suffice
        (x0, y0), (x1, y1) = lonlat_to_mercator(w, s), lonlat_to_mercator(e, n)
        return x0, y0, x1, y1
    steps = [i / densify for i in range(densify + 1)]
    xs = [w + (e - w) * t for t in steps] * 2 + [w] * len(steps) + [e] * len(steps)
    ys = [s] * len(steps) + [n] * len(steps) + [s + (n - s) * t for t in steps] * 2
    tx, ty = transform_points(xs, ys, src, dst)
    return min(tx), min(ty), max(tx), max(ty)


def _snap(v: float) -> float:
    r = round(v)
    return float(r) if abs(v - r) < 1e-6 else v


def pixel_box(transform: Transform, bbox: BBox, width: int, height: int) -> tuple[int, int, int, int] | None:
    """``(x, y, w, h)``: the pixels of a ``width`` × ``height`` north-up raster under ``bbox`` (in the raster's
    CRS), clamped to it; None when the box misses the raster."""
    c, a, b, f, d, e = transform
    if b or d or a <= 0 or e >= 0:
        raise GeoError("the image is not north-up: a box cannot be cut from it")
    w, s, ea, n = bbox
    left, right = (w - c) / a, (ea - c) / a
    top, bottom = (n - f) / e, (s - f) / e
    if not all(math.isfinite(v) for v in (left, right, top, bottom)):
        return None
    left, right, top, bottom = (max(-1e15, min(1e15, v)) for v in (left, right, top, bottom))
    x0, y0 = max(0, math.floor(_snap(left))), max(0, math.floor(_snap(top)))
    x1, y1 = min(width, math.ceil(_snap(right))), min(height, math.ceil(_snap(bottom)))
    return (x0, y0, x1 - x0, y1 - y0) if x1 > x0 and y1 > y0 else None


def level_transform(image: Image, index: int) -> Transform | None:
    """The geotransform of ``image.levels[index]``, or None when the image is not georeferenced that way."""
    geo = level_georef(image, index)
    return None if geo is None else geo.transform


def level_georef(image: Image, index: int) -> GeoRef | None:
    if image.georef is None:
        return None
    return image.georef.for_level(image.levels[index], image.levels[0])


def tile_transform(x0: float, y0: float, res_x: float, res_y: float, level: Level, col0: int, row0: int) -> Transform:
    """The geotransform of a level that starts at tile ``(col0, row0)`` of a grid whose top-left corner is
    ``(x0, y0)``, with pixels of ``res_x`` × ``res_y`` CRS units (rows going down)."""
    return (x0 + col0 * level.tile_width * res_x, res_x, 0.0, y0 - row0 * level.tile_height * res_y, 0.0, -res_y)


def bounds_of(transform: Transform, width: int, height: int) -> BBox:
    """``(west, south, east, north)`` of a north-up raster."""
    c, a, _, f, _, e = transform
    return c, f + e * height, c + a * width, f
