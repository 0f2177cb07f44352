"""TileJSON (2.x, 3.0.0): a ``tiles.json`` / ``…/tilejson.json`` describing a raster XYZ tile layer.

Read as the TileJSON 3.0.0 specification says: ``tiles`` (REQUIRED: the first http(s) endpoint is used; a
relative one is resolved against the document, though the spec wants them absolute), ``scheme``
(``xyz`` default, or ``tms``), ``minzoom`` (default 0), ``maxzoom`` (default 30), ``bounds`` (lon/lat
``[west, south, east, north]``, default the whole Web Mercator world), ``name`` as the title. Invalid values
count as absent (spec §3). Vector tiles (``.pbf``, ``.mvt``, ``vector_layers`` with a vector format) are
refused: they are no pixels.

Each zoom from ``minzoom`` to ``maxzoom`` is a level made of the tiles under ``bounds`` (intersected with the
user's ``--bbox``); a level starts at the edge of its first tile and ends exactly at the bounds' right and
bottom edges. Zooms over the size caps are left out (a world layer keeps zooms up to 11 under the default
``max_pixels``). The tile size is read from the tile under the centre of the bounds at ``minzoom`` (one
request). Georeferenced in EPSG:3857 like :mod:`.xyz`.
"""

from __future__ import annotations

import logging
import math
import re
from urllib.parse import urlsplit

from .. import geo
from ..errors import MetadataError, WrongDezoomer
from ..model import Image, is_url, resolve_relative
from ._common import load_json
from .base import Context, Dezoomer
from .xyz import MAX_ZOOM, XYZDezoomer, canonical, fill, image_of, max_pixels_of, probe_zooms, user_bbox

log = logging.getLogger(__name__)

NAME = "tilejson"
_VECTOR_RE = re.compile(r"\.(?:pbf|mvt|geojson)(?:[?#].*)?$", re.I)
_HINT = "Give the URL of a TileJSON document of a raster layer (…/tiles.json), or its tile template with {z}/{x}/{y}."


def _zoom(value: object, default: int) -> int:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and value == int(value)
    return int(value) if ok and 0 <= value <= MAX_ZOOM else default  # type: ignore[operator,arg-type]


def _bounds(value: object) -> geo.BBox:
    world = (-180.0, -geo.MAX_LAT, 180.0, geo.MAX_LAT)
    if not isinstance(value, list) or len(value) != 4 or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value):
        return world
    w, s, e, n = (float(v) for v in value)
    if not (-180 <= w < e <= 180 and -90 <= s < n <= 90):
        return world
    return w, s, e, n


def parse(url: str, doc: dict) -> tuple[str, bool, int, int, geo.BBox, str | None]:
    """``(template, tms, minzoom, maxzoom, bounds, name)`` of a TileJSON document."""
    tiles = doc.get("tiles")
    if not isinstance(tiles, list) or not tiles or not all(isinstance(t, str) for t in tiles):
        raise MetadataError("the TileJSON document has no \"tiles\" endpoints", hint=_HINT)
    endpoints = [resolve_relative(url, t.strip()) for t in tiles if t.strip()]
    endpoints = [t for t in endpoints if is_url(t)]
    if not endpoints:
        raise MetadataError("no http(s) endpoint in the TileJSON \"tiles\"", hint=_HINT)
    template = endpoints[0]
    fmt = str(doc.get("format") or "").lower()
    if _VECTOR_RE.search(urlsplit(template).path) or fmt in ("pbf", "mvt"):
        raise MetadataError("this TileJSON describes vector tiles (no pixels to download)",
                            hint="Only raster tile layers (PNG, JPEG, WebP tiles) can be dezoomed.")
    canon, found = canonical(template)
    if "z" not in found or "x" not in found or not ({"y", "-y"} & found):
        raise MetadataError(f"the TileJSON endpoint {template} has no {{z}}, {{x}} and {{y}}", hint=_HINT)
    tms = str(doc.get("scheme") or "xyz").lower() == "tms"
    minzoom, maxzoom = _zoom(doc.get("minzoom"), 0), _zoom(doc.get("maxzoom"), MAX_ZOOM)
    if maxzoom < minzoom:
        minzoom, maxzoom = 0, MAX_ZOOM
    name = doc.get("name")
    return canon, tms, minzoom, maxzoom, _bounds(doc.get("bounds")), (name.strip() or None) if isinstance(name, str) else None


def _looks_like(url: str) -> bool:
    path = urlsplit(url).path.lower() if is_url(url) else url.lower()
    return path.endswith(".json") or "tilejson" in url.lower()


class TileJSONDezoomer(Dezoomer):
    name = NAME
    description = "TileJSON document of a raster XYZ/TMS tile layer (tiles.json): one level per zoom, Web Mercator"

    def images(self, ctx: Context) -> list[Image]:
        url = ctx.url.split("#", 1)[0]
        if not _looks_like(url):
            raise WrongDezoomer("not a .json URL")
        doc = load_json(ctx.get(url))
        if not isinstance(doc, dict) or not isinstance(doc.get("tilejson"), str) or "tiles" not in doc:
            raise WrongDezoomer("not a TileJSON document (no \"tilejson\" and \"tiles\")")
        try:
            return self._images(ctx, url, doc)
        except MetadataError as exc:  # it is TileJSON: what is wrong with it is the answer
            exc.final = True  # type: ignore[attr-defined]
            raise

    def _images(self, ctx: Context, url: str, doc: dict) -> list[Image]:
        template, tms, minzoom, maxzoom, bounds, title = parse(url, doc)
        (w, s), (e, n) = geo.lonlat_to_mercator(bounds[0], bounds[1]), geo.lonlat_to_mercator(bounds[2], bounds[3])
        box = (w, s, e, n)
        user = user_bbox(ctx, geo.WEB_MERCATOR)
        if user is not None:
            box = (max(w, user[0]), max(s, user[1]), min(e, user[2]), min(n, user[3]))
            if box[2] <= box[0] or box[3] <= box[1]:
                raise MetadataError("the box is outside the TileJSON layer's bounds "
                                    f"({bounds[0]:g},{bounds[1]:g},{bounds[2]:g},{bounds[3]:g})",
                                    hint="Give --bbox west,south,east,north (longitude/latitude) inside those bounds.")

        def url_at(z: int, x: int, y: int) -> str:
            return fill(template, z, x, y, tms=tms)

        try:
            tw, th = probe_zooms(ctx, url_at, box, range(minzoom, minzoom + 1))[minzoom]
        except MetadataError:
            tw = th = 256
            log.info("TileJSON %s: the tile under the centre of the bounds at zoom %d is missing; 256 px tiles assumed",
                     url, minzoom)
        levels = XYZDezoomer._box_levels(template, box, list(range(minzoom, maxzoom + 1)), tw, th, tms, "abc",
                                         max_pixels_of(ctx))
        return [image_of(levels, geo.WEB_MERCATOR, title=title, dezoomer=self.name, url=url)]
