"""XYZ / TMS tile templates with a zoom variable: ``https://tiles.example/{z}/{x}/{y}.png``; each zoom is a level.

Placeholders (any case, single or double braces, ``$`` prefix allowed): ``{z}`` (``{zoom}``), ``{x}``, ``{y}``,
``{-y}`` (TMS row order: row 0 at the bottom), ``{s}`` (a subdomain, from ``#subdomains=abc``, default
``abc``, picked by ``(x + y) mod n`` as Leaflet does), ``{r}`` (Leaflet's retina suffix, left empty),
``{q}``/``{quadkey}`` (Bing's quadkey); ``{{x:03}}`` zero-pads as the generic dezoomer does. ``#scheme=tms``
flips ``{y}`` too (gdal2tiles' default layout). ``#minzoom=N&maxzoom=N`` bound the zooms tried.

The grid is Web Mercator's (EPSG:3857, "GoogleMapsCompatible"): zoom ``z`` has ``2^z`` × ``2^z`` tiles over the
square world ``±20037508.34 m``; the tile size is read from a served tile (256 or 512 px…). The extent is

- the box given by the user (``--bbox``, ``dz.open(..., bbox=…)``; in lon/lat or ``bbox_crs``): every zoom
  where the tile under the box's centre exists (zooms 0–24 probed at once) is a level made of the tiles under
  the box; or
- probed, with a bounded number of requests: tile ``0/0/0`` must exist; at each next zoom the children of the
  top-left and bottom-right tiles of the extent found so far (at most 8 tiles) give its new edges, assuming
  it is a rectangle of tiles (as gdal2tiles and MapTiler write them); it stops at the first zoom without
  them, or when a level would pass the size caps (``max_pixels``): a world layer keeps its zooms up to 11.

Every image carries its georeference (:class:`~dezoomify_nb.model.GeoRef`, EPSG:3857); each level its own
geotransform, as levels start at different tile edges.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from .. import geo
from ..errors import MetadataError, WrongDezoomer
from ..model import DEFAULT_MAX_PIXELS, MAX_PIXELS, MAX_SIDE, MAX_TILES, GeoRef, Image, Level
from ._common import referer
from .base import Context, Dezoomer
from .generic import probe_image

NAME = "xyz"
#: deepest zoom probed or accepted (Web Mercator zoom 30 has 2^30 tiles a side)
MAX_ZOOM = 30
#: zooms whose centre tile is probed when a box is given and the zooms are not
PROBED_ZOOMS = range(25)

#: a placeholder as users write it; group 1: "-" (TMS y), 2: the variable, 3: zero-padding width
_VAR_RE = re.compile(r"\$?\{\{?\s*(-?)(zoom|z|x|y|s|r|quadkey|q)(?::0?(\d{1,2}))?\s*\}\}?", re.I)
#: the canonical form kept in a level's template
_CANON_RE = re.compile(r"\{(z|x|y|-y|s|q)(?::(\d{1,2}))?\}")
_HINT = ("Give a tile URL template with {z}, {x} and {y} (or {-y} for TMS), e.g. https://tiles.example/{z}/{x}/{y}.png; "
         "add --bbox west,south,east,north to say where the map is when tile 0/0/0 does not exist.")


def canonical(template: str) -> tuple[str, set[str]]:
    """``template`` with its placeholders in the canonical form, and the variables it has."""
    found: set[str] = set()

    def sub(m: re.Match[str]) -> str:
        var = m.group(2).lower()
        var = {"zoom": "z", "quadkey": "q"}.get(var, var)
        if var == "r":
            return ""
        if m.group(1):
            if var != "y":
                return m.group(0)
            var = "-y"
        found.add(var)
        return "{" + var + (f":{m.group(3)}" if m.group(3) else "") + "}"

    return _VAR_RE.sub(sub, template), found


def quadkey(x: int, y: int, z: int) -> str:
    return "".join(str(((x >> i) & 1) + 2 * ((y >> i) & 1)) for i in range(z - 1, -1, -1))


def fill(template: str, z: int, x: int, y: int, *, tms: bool = False, subdomains: str = "abc") -> str:
    """The URL of tile ``(x, y)`` (XYZ row order: row 0 at the top) of zoom ``z``."""
    flipped = (1 << z) - 1 - y

    def sub(m: re.Match[str]) -> str:
        var = m.group(1)
        if var == "s":
            return subdomains[(x + y) % len(subdomains)] if subdomains else ""
        if var == "q":
            return quadkey(x, y, z)
        value = {"z": z, "x": x, "y": flipped if tms else y, "-y": flipped}[var]
        return str(value).zfill(int(m.group(2) or 0))

    return _CANON_RE.sub(sub, template)


@dataclass(frozen=True)
class XYZLevel(Level):
    """A zoom of a Web Mercator (or other) tile grid: level tile ``(c, r)`` is grid tile ``(col0 + c, row0 + r)``.

    ``template`` is in the canonical form (``{z}``, ``{x}``, ``{y}``, ``{-y}``, ``{s}``, ``{q}``); ``tms``:
    ``{y}`` counts from the bottom too. ``geotransform`` is this level's GDAL geotransform.
    """

    template: str = ""
    zoom: int = 0
    col0: int = 0
    row0: int = 0
    tms: bool = False
    subdomains: str = "abc"
    geotransform: tuple[float, float, float, float, float, float] | None = None

    def tile_url(self, col: int, row: int) -> str:
        return fill(self.template, self.zoom, self.col0 + col, self.row0 + row, tms=self.tms,
                    subdomains=self.subdomains)


def fits(width: int, height: int, tw: int, th: int, max_pixels: int) -> bool:
    """Is a ``width`` × ``height`` level of ``tw`` × ``th`` tiles under every size cap?"""
    return (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE and width * height <= min(MAX_PIXELS, max_pixels)
            and -(-width // tw) * -(-height // th) <= MAX_TILES)


def window(box: geo.BBox, x0: float, y0: float, res_x: float, res_y: float, tw: int, th: int,
           grid: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """``(col0, row0, width, height)``: the level of a grid (top-left corner ``(x0, y0)``, ``grid`` = columns,
    rows) under ``box`` (in the grid's CRS). It starts at the edge of the first tile under the box and ends
    exactly at the box's right and bottom edges (values within 10⁻⁴ px of a whole pixel count as it)."""
    w, s, e, n = box
    edges = ((w - x0) / res_x, (y0 - n) / res_y, (e - x0) / res_x, (y0 - s) / res_y)
    if not all(math.isfinite(v) and abs(v) < 1e15 for v in edges):
        return None

    def snap(v: float) -> float:
        return float(round(v)) if abs(v - round(v)) < 1e-4 else v

    left, top = max(0, math.floor(snap(edges[0]))), max(0, math.floor(snap(edges[1])))
    right, bottom = min(grid[0] * tw, math.ceil(snap(edges[2]))), min(grid[1] * th, math.ceil(snap(edges[3])))
    if right <= left or bottom <= top:
        return None
    col0, row0 = left // tw, top // th
    return col0, row0, right - col0 * tw, bottom - row0 * th


def mercator_res(z: int, tile: int) -> float:
    return 2 * geo.HALF_WORLD / (tile << z)


def mercator_level(template: str, z: int, col0: int, row0: int, width: int, height: int, tw: int, th: int, *,
                   tms: bool = False, subdomains: str = "abc", name: str = "", headers=()) -> XYZLevel:
    level = XYZLevel(width, height, tw, th, headers=headers, name=name or f"zoom {z}", template=template, zoom=z,
                     col0=col0, row0=row0, tms=tms, subdomains=subdomains)
    transform = geo.tile_transform(-geo.HALF_WORLD, geo.HALF_WORLD, mercator_res(z, tw), mercator_res(z, th), level,
                                   col0, row0)
    return XYZLevel(width, height, tw, th, headers=headers, name=level.name, template=template, zoom=z, col0=col0,
                    row0=row0, tms=tms, subdomains=subdomains, geotransform=transform)


def image_of(levels: list[XYZLevel], crs: str, *, title: str | None, dezoomer: str, url: str) -> Image:
    """The image of ``levels`` (any order), georeferenced by its largest level's geotransform."""
    if not levels:
        raise MetadataError("no zoom level of the map is under the size caps and the extent", hint=_HINT)
    levels = sorted(levels, key=lambda lv: abs(lv.geotransform[1]) if lv.geotransform else -lv.zoom)[:64]
    full = levels[0]
    georef = GeoRef(crs, full.geotransform)
    return Image(levels=tuple(levels), title=title, dezoomer=dezoomer, url=url, georef=georef)


def layer_title(template: str) -> str | None:
    """A name for a tile layer: its host and the path before the first placeholder (``tiles.example/cassini``)."""
    parts = urlsplit(template)
    head = parts.path.split("{", 1)[0].split("$", 1)[0]
    segments = [seg for seg in head.split("/") if seg]
    host = re.sub(r"^(?:www|tiles?|\{s\}|[a-d])\.", "", parts.hostname or "")
    return "/".join([host, *segments]) or None


def user_bbox(ctx: Context, crs: str) -> geo.BBox | None:
    """The box the user gave (``options["bbox"]``, in ``options["bbox_crs"]``, default lon/lat) in ``crs``."""
    bbox = ctx.options.get("bbox")
    if bbox is None:
        return None
    box = geo.parse_bbox(bbox)  # type: ignore[arg-type]
    return geo.transform_bbox(box, str(ctx.options.get("bbox_crs") or geo.LONLAT), crs)


def max_pixels_of(ctx: Context) -> int:
    value = ctx.options.get("max_pixels", DEFAULT_MAX_PIXELS)
    return value if isinstance(value, int) and not isinstance(value, bool) else DEFAULT_MAX_PIXELS


def fragment_options(url: str) -> tuple[str, dict[str, str]]:
    """``url`` without its fragment, and the fragment's ``key=value`` pairs (lowercase keys)."""
    base, _, frag = url.partition("#")
    return base, {k.lower(): v for k, v in parse_qsl(frag, keep_blank_values=True)}


def zoom_option(opts: dict[str, str], key: str) -> int | None:
    value = opts.get(key, "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) > MAX_ZOOM:
        raise MetadataError(f"#{key}={value}: a zoom is a whole number from 0 to {MAX_ZOOM}", hint=_HINT)
    return int(value)


def probe_zooms(ctx: Context, url_at, box: geo.BBox, zooms: range) -> dict[int, tuple[int, int]]:
    """Tile size of the tile under the centre of ``box`` (EPSG:3857) at each zoom of ``zooms`` where it exists."""
    cx = min(max((box[0] + box[2]) / 2, -geo.HALF_WORLD), geo.HALF_WORLD * (1 - 1e-12))
    cy = min(max((box[1] + box[3]) / 2, -geo.HALF_WORLD * (1 - 1e-12)), geo.HALF_WORLD)
    urls = {}
    for z in zooms:
        n = 1 << z
        x = min(n - 1, int((cx + geo.HALF_WORLD) / (2 * geo.HALF_WORLD) * n))
        y = min(n - 1, int((geo.HALF_WORLD - cy) / (2 * geo.HALF_WORLD) * n))
        urls[z] = url_at(z, x, y)
    ctx.prefetch(urls.values())
    found = {}
    for z, u in urls.items():
        size = probe_image(ctx.try_get(u))
        if not isinstance(size, str):
            found[z] = size
    if not found:
        found_none = MetadataError(f"no tile under the centre of the box at any zoom from {zooms[0]} to {zooms[-1]} "
                                   f"(e.g. {urls[zooms[-1]]})")
        found_none.hint = ("Check that the box lies on the map: --bbox west,south,east,north in longitude/latitude "
                           "degrees (or in the CRS of --bbox-crs), and that the tiles open in a browser.")
        found_none.explains_input = True  # type: ignore[attr-defined]
        found_none.final = True  # type: ignore[attr-defined]
        raise found_none
    return found


def contiguous(found: dict[int, tuple[int, int]]) -> list[int]:
    """The first run of consecutive zooms in ``found``."""
    if not found:
        return []
    z = min(found)
    run = []
    while z in found:
        run.append(z)
        z += 1
    return run


class XYZDezoomer(Dezoomer):
    name = NAME
    description = "XYZ/TMS tile template with {z}, {x}, {y} ({-y}, {s}): one level per zoom, Web Mercator"

    def images(self, ctx: Context) -> list[Image]:
        base, opts = fragment_options(ctx.url)
        template, found = canonical(base)
        if ("z" not in found or "x" not in found or not ({"y", "-y"} & found)) and "q" not in found:
            raise WrongDezoomer("no {z}, {x} and {y} (or {quadkey}) placeholders in the URL")
        if not template.startswith(("http://", "https://")):
            raise WrongDezoomer("a tile template must be an http(s) URL")
        tms = opts.get("scheme", "").lower() == "tms"
        subdomains = opts.get("subdomains", "abc").replace(",", "") or "abc"
        minzoom, maxzoom = zoom_option(opts, "minzoom"), zoom_option(opts, "maxzoom")

        def url_at(z: int, x: int, y: int) -> str:
            return fill(template, z, x, y, tms=tms, subdomains=subdomains)

        box = user_bbox(ctx, geo.WEB_MERCATOR)
        if box is not None:
            lo, hi = minzoom or 0, maxzoom if maxzoom is not None else PROBED_ZOOMS[-1]
            sizes = probe_zooms(ctx, url_at, box, range(lo, hi + 1))
            zooms = contiguous(sizes)
            tw, th = sizes[zooms[-1]]
            levels = self._box_levels(template, box, zooms, tw, th, tms, subdomains, max_pixels_of(ctx))
        else:
            levels = self._probed_levels(ctx, template, url_at, minzoom, maxzoom, tms, subdomains)
        return [image_of(levels, geo.WEB_MERCATOR, title=layer_title(base), dezoomer=self.name, url=base)]

    @staticmethod
    def _box_levels(template: str, box: geo.BBox, zooms: list[int], tw: int, th: int, tms: bool, subdomains: str,
                    max_pixels: int) -> list[XYZLevel]:
        levels = []
        hdr = referer(fill(template, zooms[0], 0, 0, tms=tms, subdomains=subdomains))
        for z in zooms:
            got = window(box, -geo.HALF_WORLD, geo.HALF_WORLD, mercator_res(z, tw), mercator_res(z, th), tw, th,
                         (1 << z, 1 << z))
            if got is None:
                continue
            col0, row0, width, height = got
            if not fits(width, height, tw, th, max_pixels):
                break
            levels.append(mercator_level(template, z, col0, row0, width, height, tw, th, tms=tms,
                                         subdomains=subdomains, headers=hdr))
        return levels

    @staticmethod
    def _probed_levels(ctx: Context, template: str, url_at, minzoom: int | None, maxzoom: int | None, tms: bool,
                       subdomains: str) -> list[XYZLevel]:
        if minzoom:
            raise _error(f"#minzoom={minzoom} without a box: where the map lies cannot be probed from zoom {minzoom}")
        first = probe_image(ctx.try_get(url_at(0, 0, 0)))
        if isinstance(first, str):
            raise _error(f"tile 0/0/0 of the template {url_at(0, 0, 0)} {first}: the extent cannot be probed")
        tw, th = first
        max_pixels = max_pixels_of(ctx)
        hdr = referer(url_at(0, 0, 0))
        extents = [(0, 0, 0, 0, 0)]  # zoom, first column, first row, last column, last row
        last = MAX_ZOOM if maxzoom is None else maxzoom
        for z in range(1, last + 1):
            _, c0, r0, c1, r1 = extents[-1]
            corners = {(x, y) for x in (2 * c0, 2 * c0 + 1) for y in (2 * r0, 2 * r0 + 1)}
            corners |= {(x, y) for x in (2 * c1, 2 * c1 + 1) for y in (2 * r1, 2 * r1 + 1)}
            if not fits((2 * (c1 - c0) + 2) * tw, (2 * (r1 - r0) + 2) * th, tw, th, max_pixels) and not fits(
                    (2 * (c1 - c0) + 1) * tw, (2 * (r1 - r0) + 1) * th, tw, th, max_pixels):
                break  # even the smallest extent this zoom can have is over the caps
            ctx.prefetch(url_at(z, x, y) for x, y in sorted(corners))
            exists = {(x, y) for x, y in corners if not isinstance(probe_image(ctx.try_get(url_at(z, x, y))), str)}
            top_left = [t for t in exists if t[0] <= 2 * c0 + 1 and t[1] <= 2 * r0 + 1]
            bottom_right = [t for t in exists if t[0] >= 2 * c1 and t[1] >= 2 * r1]
            if not top_left or not bottom_right:
                break
            ext = (z, min(t[0] for t in top_left), min(t[1] for t in top_left), max(t[0] for t in bottom_right),
                   max(t[1] for t in bottom_right))
            if not fits((ext[3] - ext[1] + 1) * tw, (ext[4] - ext[2] + 1) * th, tw, th, max_pixels):
                break
            extents.append(ext)
        return [mercator_level(template, z, c0, r0, (c1 - c0 + 1) * tw, (r1 - r0 + 1) * th, tw, th, tms=tms,
                               subdomains=subdomains, headers=hdr) for z, c0, r0, c1, r1 in extents]


def _error(message: str) -> MetadataError:
    err = MetadataError(message, hint=_HINT)
    err.explains_input = True  # type: ignore[attr-defined]
    err.final = True  # type: ignore[attr-defined] # a {z}/{x}/{y} template is no document: the others would 404
    return err
