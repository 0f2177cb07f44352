"""ArcGIS REST cached tiles: a ``…/MapServer`` or ``…/ImageServer`` with a tile cache; one level per LOD.

Input: the service URL (``https://host/arcgis/rest/services/<folder>/<name>/MapServer``, with or without
``?f=json``), any URL below it (``…/MapServer/tile/3/2/1``, ``…/MapServer/WMTS``), or a token in its query
(``?token=…``, kept on every request as ArcGIS clients do). The service's JSON (``<service>?f=json``) gives,
as the ArcGIS REST API documents it:

- ``tileInfo``: ``rows`` × ``cols`` (the tile height and width), ``origin`` (x, y of the grid's top-left
  corner), ``spatialReference`` (``latestWkid`` preferred over ``wkid``: 102100 is EPSG:3857; else ``wkt``),
  ``lods`` (``level``, ``resolution`` in CRS units per pixel, ``scale``), ``format`` (LERC elevation tiles are
  refused: they are no picture);
- the extent: ``fullExtent`` (MapServer) or ``extent`` (ImageServer), else ``initialExtent``, in the tiling
  scheme's spatial reference (another one is converted when pyproj can), narrowed by the user's ``--bbox``;
- ``minLOD``/``maxLOD`` when present; the title from ``documentInfo.Title``, ``mapName`` or ``name``.

A service without ``tileInfo`` is dynamic (rendered on request by ``export``): refused with a clear message.
Tiles are ``<service>/tile/{level}/{row}/{col}``. Each LOD is a level made of the tiles under the extent,
starting at its first tile's edge and ending exactly at the extent's right and bottom edges; LODs over the
size caps are left out. Every image carries its CRS and geotransforms.
"""

from __future__ import annotations

import math
import re
from urllib.parse import parse_qsl, urlencode, urlsplit

from .. import geo
from ..errors import DezoomifyError, MetadataError, WrongDezoomer
from ..model import MAX_LEVELS, MAX_TILE_SIDE, Image
from ._common import load_json, referer
from .base import Context, Dezoomer
from .xyz import XYZLevel, fits, image_of, max_pixels_of, user_bbox, window

NAME = "arcgis"
_SERVICE_RE = re.compile(r"^(https?://[^?#]+?/(?:MapServer|ImageServer))(?=$|[/?#])", re.I)
#: query parameters of the input kept on every request (access tokens); the others are the client's own
_KEPT = ("token",)
_HINT = ("Give the URL of a cached ArcGIS service: https://host/arcgis/rest/services/<name>/MapServer (its page "
         "shows \"Tile Info\"), or …/ImageServer.")


def service_url(url: str) -> tuple[str, str] | None:
    """``(service root, kept query)`` of a MapServer/ImageServer URL, or None."""
    m = _SERVICE_RE.match(url.strip())
    if not m:
        return None
    query = urlsplit(url).query
    kept = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k.lower() in _KEPT]
    return m.group(1), urlencode(kept)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        v = float(value)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def spatial_reference(sr: object) -> str | None:
    """The CRS of an ArcGIS ``spatialReference``: ``EPSG:<latestWkid or wkid>`` (ESRI codes as ``ESRI:<n>``),
    else its WKT."""
    if not isinstance(sr, dict):
        return None
    for key in ("latestWkid", "wkid"):
        code = sr.get(key)
        if isinstance(code, int) and not isinstance(code, bool) and 0 < code < 10**7:
            return geo.crs_from_code(code)
    wkt = sr.get("wkt")
    return wkt.strip() if isinstance(wkt, str) and wkt.strip() else None


def _extent(doc: dict, crs: str) -> geo.BBox | None:
    for key in ("fullExtent", "extent", "initialExtent"):
        ext = doc.get(key)
        if not isinstance(ext, dict):
            continue
        vals = [_number(ext.get(k)) for k in ("xmin", "ymin", "xmax", "ymax")]
        if None in vals or not (vals[2] > vals[0] and vals[3] > vals[1]):  # type: ignore[operator]
            continue
        box: geo.BBox = (vals[0], vals[1], vals[2], vals[3])  # type: ignore[assignment]
        own = spatial_reference(ext.get("spatialReference")) or crs
        if own == crs:
            return box
        try:
            return geo.transform_bbox(box, own, crs)
        except DezoomifyError:  # an extent in another CRS that cannot be converted here: try the next
            continue
    return None


def parse_service(url: str, query: str, doc: dict, *, max_pixels: int, user: geo.BBox | None = None) -> Image:
    """The image of a cached ArcGIS service whose JSON is ``doc`` (``url``: its root)."""
    info = doc.get("tileInfo")
    if not isinstance(info, dict):
        raise MetadataError("this ArcGIS service has no tile cache (no tileInfo): it renders maps on request",
                            hint="Only cached services (\"Tile Info\" on the service page) can be dezoomed.")
    fmt = str(info.get("format") or "").upper()
    if fmt.startswith("LERC") or str(doc.get("cacheType") or "").lower() == "elevation":
        raise MetadataError(f"the tiles of this service are {fmt or 'elevation'} data, not pictures",
                            hint="Only map tiles (JPEG, PNG, MIXED) can be dezoomed.")
    tw, th = _number(info.get("cols")), _number(info.get("rows"))
    origin = info.get("origin") if isinstance(info.get("origin"), dict) else {}
    x0, y0 = _number(origin.get("x")), _number(origin.get("y"))
    if tw is None or th is None or x0 is None or y0 is None or not (
            1 <= tw <= MAX_TILE_SIDE and 1 <= th <= MAX_TILE_SIDE and tw == int(tw) and th == int(th)):
        raise MetadataError("the ArcGIS tileInfo has no usable rows, cols and origin", hint=_HINT)
    tw, th = int(tw), int(th)
    crs = spatial_reference(info.get("spatialReference")) or spatial_reference(doc.get("spatialReference"))
    if crs is None:
        raise MetadataError("the ArcGIS tileInfo has no spatial reference", hint=_HINT)
    box = extent = _extent(doc, crs)
    if user is not None:
        box = user if box is None else (max(box[0], user[0]), max(box[1], user[1]), min(box[2], user[2]),
                                        min(box[3], user[3]))
        if box[2] <= box[0] or box[3] <= box[1]:
            where = ", ".join(f"{v:.10g}" for v in extent) if extent else "?"
            raise MetadataError(f"the box is outside the ArcGIS service's extent ({where} in {crs[:40]})",
                                hint="Give --bbox west,south,east,north inside that extent: in longitude/latitude, "
                                     "or in the service's CRS with --bbox-crs.")
    if box is None:
        raise MetadataError("the ArcGIS service gives no extent (fullExtent, extent or initialExtent)",
                            hint="Give the part you want with --bbox west,south,east,north.")
    lods = info.get("lods") if isinstance(info.get("lods"), list) else []
    lo, hi = _number(doc.get("minLOD")), _number(doc.get("maxLOD"))
    suffix = f"?{query}" if query else ""
    template = f"{url}/tile/{{z}}/{{y}}/{{x}}{suffix}"
    levels: list[XYZLevel] = []
    for lod in lods[: 4 * MAX_LEVELS]:
        if not isinstance(lod, dict):
            continue
        level, res = lod.get("level"), _number(lod.get("resolution"))
        if not isinstance(level, int) or isinstance(level, bool) or not 0 <= level < 100 or res is None or res <= 0:
            continue
        if (lo is not None and level < lo) or (hi is not None and level > hi):
            continue
        got = window(box, x0, y0, res, res, tw, th, (1 << 40, 1 << 40))
        if got is None:
            continue
        col0, row0, width, height = got
        if not fits(width, height, tw, th, max_pixels):
            continue
        lv = XYZLevel(width, height, tw, th, name=f"LOD {level}", template=template, zoom=level, col0=col0,
                      row0=row0, headers=referer(f"{url}/tile/{level}/{row0}/{col0}{suffix}"))
        transform = geo.tile_transform(x0, y0, res, res, lv, col0, row0)
        levels.append(XYZLevel(width, height, tw, th, name=lv.name, template=template, zoom=level, col0=col0,
                               row0=row0, headers=lv.headers, geotransform=transform))
    if not levels:
        raise MetadataError("no level of detail of the ArcGIS service is under the size caps and the extent",
                            hint="Narrow it with --bbox, or raise --max-pixels.")
    doc_info = doc.get("documentInfo") if isinstance(doc.get("documentInfo"), dict) else {}
    title = next((t.strip() for t in (doc_info.get("Title"), doc.get("mapName"), doc.get("name"))
                  if isinstance(t, str) and t.strip() and t.strip() != "Layers"), None)
    title = title or url.rstrip("/").rsplit("/", 2)[-2]
    return image_of(levels, crs, title=title, dezoomer=NAME, url=url)


class ArcGISDezoomer(Dezoomer):
    name = NAME
    description = "ArcGIS REST MapServer/ImageServer with a tile cache (tileInfo): one level per LOD, georeferenced"

    def images(self, ctx: Context) -> list[Image]:
        found = service_url(ctx.url)
        if found is None:
            raise WrongDezoomer("not an ArcGIS …/MapServer or …/ImageServer URL")
        root, query = found
        meta = f"{root}?{query + '&' if query else ''}f=json"
        doc = load_json(ctx.get(meta))
        if not isinstance(doc, dict):
            raise _final(MetadataError(f"the ArcGIS service did not answer JSON at {meta}", hint=_HINT))
        error = doc.get("error")
        if isinstance(error, dict):
            message = str(error.get("message") or error.get("code") or "an error")
            hint = ("The service needs a token: add ?token=… to the URL (as the viewer you use does)."
                    if str(error.get("code")) in ("498", "499") else _HINT)
            raise _final(MetadataError(f"the ArcGIS service answered: {message}", hint=hint))
        try:
            crs_user = None
            if ctx.options.get("bbox") is not None:
                info = doc.get("tileInfo") if isinstance(doc.get("tileInfo"), dict) else {}
                crs = spatial_reference(info.get("spatialReference")) or spatial_reference(doc.get("spatialReference"))
                crs_user = user_bbox(ctx, crs) if crs is not None else None
            return [parse_service(root, query, doc, max_pixels=max_pixels_of(ctx), user=crs_user)]
        except MetadataError as exc:
            raise _final(exc) from None


def _final(exc: MetadataError) -> MetadataError:
    exc.final = True  # type: ignore[attr-defined] # an ArcGIS service URL: no other dezoomer knows it better
    return exc
