"""OGC WMTS 1.0: a ``WMTSCapabilities.xml`` (RESTful or KVP) → one image per layer, one level per TileMatrix.

Inputs: any URL with the word ``wmts`` (``…/1.0.0/WMTSCapabilities.xml``, ``…/service/wmts``,
``?SERVICE=WMTS&REQUEST=GetCapabilities``, or a KVP ``GetTile`` URL, whose ``GetCapabilities`` is read),
or any document whose root is a WMTS ``Capabilities``. ``#layer=NAME`` (or ``LAYER=`` in the query) keeps
one layer and ``#tilematrixset=NAME`` picks the matrix set; otherwise every layer is an image
(``dz.open_all``), in document order.

Geometry, from the tile matrices themselves (reference §10, done better than ``wmts.js``): a matrix has a
``TopLeftCorner`` (x0, y0), a resolution ``ScaleDenominator × 0.28 mm`` (divided by the metres per
degree for geographic CRSs), ``TileWidth`` × ``TileHeight`` tiles and ``MatrixWidth`` × ``MatrixHeight`` of
them, restricted by the layer's ``TileMatrixSetLimits`` (a matrix they do not list has no tiles). The
layer's bounding box (an ``ows:BoundingBox`` in the set's CRS, else the ``WGS84BoundingBox``, projected for
Web Mercator sets and used as is for geographic ones) gives the pixel rectangle
``[floor(left), ceil(right)) × [floor(top), ceil(bottom))`` (values within 10⁻⁴ px of an integer count as
that integer, so a box ending on a tile edge asks for no extra tile), clamped to the tiles that exist.
Without a usable box, the whole allowed tile range is the image. Axis order follows the CRS (EPSG
geographic codes are latitude first unless the corner coordinates say otherwise); CRSs are recognised by
their EPSG code in any spelling.

Levels start at a tile boundary: a :class:`~dezoomify_nb.model.Level` grid starts at (0, 0), so the
bounding box is cropped exactly on the right and bottom, while on the left and top the level keeps the
part (under one tile) of the first tile column/row that lies outside the box. Cropping it too needs an
engine change (a level origin inside tile (0, 0), each chunk assembled from up to four served tiles).

Every image carries its georeference (``Image.georef``: the set's EPSG code, CRS84 as EPSG:4326 with
longitude first, the Web Mercator aliases as EPSG:3857) and each level its own geotransform. A box given by
the user (``options["bbox"]``, ``--bbox``) narrows the layer's extent to the tiles under it.

Levels over the caps (and ``max_pixels``) are left out: a world layer keeps its zooms up to 11. Tile URLs
fill ``{TileMatrixSet}``, ``{TileMatrix}``, ``{TileRow}``, ``{TileCol}``, ``{Style}`` (the default style) and
each ``<Dimension>`` with its default (``{Time}``…); unknown placeholders stay as written. Without a tile
``ResourceURL``, KVP ``GetTile`` requests are built from ``OperationsMetadata``.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlsplit

from lxml import etree

from ..errors import MetadataError, WrongDezoomer
from ..geo import LONLAT, crs_from_code, parse_bbox, transform_bbox
from ..model import (
    DEFAULT_MAX_PIXELS,
    MAX_LEVELS,
    MAX_PIXELS,
    MAX_SIDE,
    MAX_TILE_SIDE,
    MAX_TILES,
    GeoRef,
    Image,
    Level,
    resolve_relative,
)
from ._common import attr, local_name, parse_xml
from .base import Context, Dezoomer

log = logging.getLogger(__name__)

NAME = "wmts"
METRES_PER_PIXEL_UNIT = 0.00028  # the standardised rendering pixel (0.28 mm)
RADIUS = 6378137.0
METRES_PER_DEGREE = 2 * math.pi * RADIUS / 360
MAX_LAYERS = 256
MERCATOR = frozenset({3857, 900913, 3785, 102100, 102113, 41001, 54004})
GEOGRAPHIC = frozenset({4326, 4258, 4269, 4283, 4612, 4617, 4619, 4674, 4167, 4171, 4230, 4313, 4322, 4490})
CRS84 = -84  # the pseudo EPSG code of OGC CRS84 (longitude first)

_WORD_RE = re.compile(r"\bwmts\b", re.I)
_ROOT_RE = re.compile(rb"<(?:[\w.-]+:)?Capabilities\b")
_SKIP_RE = re.compile(r"\{\{|\.(?:jpe?g|png|gif|webp|tiff?|bmp|avif|pbf|mvt)(?:[?#].*)?$", re.I)
_CRS84_RE = re.compile(r"crs:?84$|ogc:[\d.]*:?crs84$|ogc:(?:[\d.]+:)?84$|/ogc/[\d.]+/crs84$", re.I)
_EPSG_RE = re.compile(r"epsg(?::[\d.]*)?:+(\d{1,9})$|/epsg/[\d.]+/(\d{1,9})$", re.I)
_PLACEHOLDER_RE = re.compile(r"\{([^{}]{1,100})\}")
_NUMS_RE = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_HINT = ("Give the WMTS capabilities URL (…/1.0.0/WMTSCapabilities.xml or …?SERVICE=WMTS&REQUEST=GetCapabilities); "
         "add #layer=NAME to choose a layer.")


def _children(el: etree._Element, name: str) -> list[etree._Element]:
    return [c for c in el if local_name(c) == name]


def _text(el: etree._Element, name: str) -> str | None:
    for c in el:
        if local_name(c) == name:
            return (c.text or "").strip()
    return None


def _pair(text: str | None) -> tuple[float, float] | None:
    nums = _NUMS_RE.findall(text or "")[:2]
    if len(nums) < 2:
        return None
    a, b = float(nums[0]), float(nums[1])
    return (a, b) if math.isfinite(a) and math.isfinite(b) else None


def _number(text: str | None) -> float | None:
    try:
        v = float((text or "").strip())
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def _index(text: str | None, low: int = 0, high: int = 1 << 40) -> int | None:
    """A whole number from ``low`` to ``high``, else None."""
    t = (text or "").strip()
    return int(t) if re.fullmatch(r"\+?\d{1,13}", t) and low <= int(t) <= high else None


def epsg_code(crs: str | None) -> int | None:
    """The EPSG code of a CRS name in any usual spelling; :data:`CRS84` for OGC CRS84."""
    s = (crs or "").strip()
    if _CRS84_RE.search(s):
        return CRS84
    m = _EPSG_RE.search(s)
    return int(m.group(1) or m.group(2)) if m else None


def mercator(lon: float, lat: float) -> tuple[float, float]:
    lat = max(-85.0511287798, min(85.0511287798, lat))
    return RADIUS * math.radians(lon), RADIUS * math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))


@dataclass(frozen=True)
class WMTSLevel(Level):
    """A tile matrix: level tile ``(x, y)`` is tile ``(col0 + x, row0 + y)`` of ``template``."""

    template: str = ""
    col0: int = 0
    row0: int = 0
    #: this level's GDAL geotransform, x = easting or longitude (GDAL's traditional axis order)
    geotransform: tuple[float, float, float, float, float, float] | None = None

    def tile_url(self, col: int, row: int) -> str:
        return _fill(self.template, {"tilecol": str(self.col0 + col), "tilerow": str(self.row0 + row)})


@dataclass(frozen=True)
class Box:
    """A rectangle in a matrix set's CRS, x to the right and y up."""

    x0: float
    y0: float
    x1: float
    y1: float


def _fill(template: str, values: dict[str, str]) -> str:
    return _PLACEHOLDER_RE.sub(lambda m: values.get(m.group(1).lower(), m.group(0)), template)


def _snap(v: float) -> float:
    r = round(v)
    return float(r) if abs(v - r) < 1e-4 else v


def pixel_window(box: Box | None, x0: float, y0: float, res: float, grid: tuple[int, int, int, int]
                 ) -> tuple[int, int, int, int] | None:
    """``(left, top, right, bottom)`` pixels of ``box`` in a matrix, clamped to ``grid`` (same form)."""
    if box is None:
        return grid
    edges = ((box.x0 - x0) / res, (y0 - box.y1) / res, (box.x1 - x0) / res, (y0 - box.y0) / res)
    if not all(math.isfinite(e) and abs(e) < 1e15 for e in edges):
        return None
    left, top, right, bottom = (math.floor(_snap(e)) if i < 2 else math.ceil(_snap(e)) for i, e in enumerate(edges))
    left, top = max(left, grid[0]), max(top, grid[1])
    right, bottom = min(right, grid[2]), min(bottom, grid[3])
    return (left, top, right, bottom) if right > left and bottom > top else None


@dataclass(frozen=True)
class _Matrix:
    ident: str
    tw: int
    th: int
    mw: int
    mh: int
    res: float  # CRS units per pixel
    corner: tuple[float, float]  # as written (axis order of the CRS)


def _matrix(el: etree._Element, units: float) -> _Matrix | None:
    tw, th = _index(_text(el, "TileWidth"), 1, MAX_TILE_SIDE), _index(_text(el, "TileHeight"), 1, MAX_TILE_SIDE)
    mw, mh = _index(_text(el, "MatrixWidth"), 1), _index(_text(el, "MatrixHeight"), 1)
    scale, corner = _number(_text(el, "ScaleDenominator")), _pair(_text(el, "TopLeftCorner"))
    if tw is None or th is None or mw is None or mh is None or scale is None or corner is None or scale <= 0:
        return None
    return _Matrix(_text(el, "Identifier") or "", tw, th, mw, mh, scale * METRES_PER_PIXEL_UNIT / units, corner)


class _Set:
    """A ``TileMatrixSet``: its CRS and matrices, with axis order and units decided once."""

    def __init__(self, el: etree._Element) -> None:
        self.ident = _text(el, "Identifier") or ""
        self.crs = _text(el, "SupportedCRS") or ""
        self.code = epsg_code(self.crs)
        geographic = self.code in GEOGRAPHIC or self.code == CRS84
        self.units = METRES_PER_DEGREE if geographic else 1.0
        found = (_matrix(m, self.units) for m in _children(el, "TileMatrix")[: 4 * MAX_LEVELS])
        self.matrices = [m for m in found if m is not None]
        self.lat_first = self.code in GEOGRAPHIC
        if geographic and self.matrices:  # trust the numbers over the convention
            corner = self.matrices[0].corner
            if abs(corner[0]) > 90.000001:
                self.lat_first = False
            elif abs(corner[1]) > 90.000001:
                self.lat_first = True

    def xy(self, pair: tuple[float, float]) -> tuple[float, float]:
        return (pair[1], pair[0]) if self.lat_first else pair

    def box_from_lonlat(self, lower: tuple[float, float], upper: tuple[float, float]) -> Box | None:
        if self.code in MERCATOR:
            (a, b), (c, d) = mercator(*lower), mercator(*upper)
            return Box(a, b, c, d)
        if self.code in GEOGRAPHIC or self.code == CRS84:
            return Box(lower[0], lower[1], upper[0], upper[1])
        return None


class _Layer:
    def __init__(self, el: etree._Element) -> None:
        self.el = el
        self.ident = _text(el, "Identifier") or ""
        self.title = _text(el, "Title") or self.ident or None
        styles = _children(el, "Style")
        default = next((s for s in styles if (attr(s, "isDefault") or "").lower() == "true"), styles[0] if styles else None)
        self.style = (_text(default, "Identifier") if default is not None else None) or "default"
        self.formats = [f.text.strip() for f in _children(el, "Format") if f.text and f.text.strip()]
        self.dims: dict[str, str] = {}
        for dim in _children(el, "Dimension"):
            ident = _text(dim, "Identifier")
            value = _text(dim, "Default") or _text(dim, "Value")
            if ident and value:
                self.dims[ident] = value
        self.links: dict[str, dict[str, tuple[int, int, int, int]]] = {}
        for link in _children(el, "TileMatrixSetLink"):
            limits: dict[str, tuple[int, int, int, int]] = {}
            for lim in (x for ls in _children(link, "TileMatrixSetLimits") for x in _children(ls, "TileMatrixLimits")):
                vals = [_index(_text(lim, k)) for k in ("MinTileRow", "MaxTileRow", "MinTileCol", "MaxTileCol")]
                matrix = _text(lim, "TileMatrix")
                if matrix and None not in vals:
                    limits[matrix] = (vals[0], vals[1], vals[2], vals[3])  # type: ignore[assignment]
            self.links[_text(link, "TileMatrixSet") or ""] = limits
        self.tile_templates = [(attr(r, "template") or "", attr(r, "format") or "") for r in _children(el, "ResourceURL")
                               if (attr(r, "resourceType") or "tile").lower() == "tile" and attr(r, "template")]

    def box_in(self, tms: _Set) -> Box | None:
        """The layer's extent in ``tms``'s CRS, or None when no box can be expressed there."""
        lonlat: tuple[tuple[float, float], tuple[float, float]] | None = None
        for el in self.el:
            name = local_name(el)
            if name not in ("BoundingBox", "WGS84BoundingBox"):
                continue
            lower, upper = _pair(_text(el, "LowerCorner")), _pair(_text(el, "UpperCorner"))
            if lower is None or upper is None:
                continue
            code = CRS84 if name == "WGS84BoundingBox" else epsg_code(attr(el, "crs"))
            if code is not None and code == tms.code:
                (a, b), (c, d) = tms.xy(lower), tms.xy(upper)
                return Box(a, b, c, d) if c > a and d > b else None
            if code == CRS84 and lonlat is None:
                lonlat = (lower, upper)
            elif code == 4326 and lonlat is None:
                lonlat = ((lower[1], lower[0]), (upper[1], upper[0])) if abs(lower[0]) <= 90 >= abs(upper[0]) else (lower, upper)
        if lonlat is None:
            return None
        box = tms.box_from_lonlat(*lonlat)
        return box if box is not None and box.x1 > box.x0 and box.y1 > box.y0 else None


def _kvp_href(root: etree._Element, capabilities_url: str) -> str | None:
    """The KVP ``GetTile`` endpoint: from ``OperationsMetadata``, else the GetCapabilities URL's own base."""
    ops = next((c for c in root if local_name(c) == "OperationsMetadata"), None)
    for op in (o for o in (ops if ops is not None else []) if attr(o, "name") == "GetTile"):
        for get in (g for g in op.iter() if local_name(g) == "Get"):
            text = " ".join(v.text or "" for v in get.iter() if local_name(v) == "Value")
            if (not text.strip() or "KVP" in text.upper()) and attr(get, "href"):
                return attr(get, "href")
    parts = urlsplit(capabilities_url)
    if "getcapabilities" not in parts.query.lower():
        return None
    return parts._replace(query="", fragment="").geturl()


def _kvp_template(href: str, capabilities_url: str, layer: _Layer) -> str:
    fixed = {"SERVICE": "WMTS", "REQUEST": "GetTile", "VERSION": "1.0.0", "LAYER": layer.ident, "STYLE": layer.style,
             "FORMAT": layer.formats[0] if layer.formats else "image/png", **{k.upper(): v for k, v in layer.dims.items()}}
    query = "&".join(f"{k}={quote(v, safe='')}" for k, v in fixed.items())
    query += "&TILEMATRIXSET={TileMatrixSet}&TILEMATRIX={TileMatrix}&TILEROW={TileRow}&TILECOL={TileCol}"
    base = href.split("#", 1)[0].rstrip("?&")
    return resolve_relative(capabilities_url, base + ("&" if "?" in base else "?") + query)


def _user_box(tms: _Set, bbox: tuple[float, float, float, float] | None, bbox_crs: str | None) -> Box | None:
    """The user's box in ``tms``'s CRS (None: no box, or a CRS that cannot be named)."""
    crs = crs_from_code(4326 if tms.code == CRS84 else tms.code)
    if bbox is None or crs is None:
        return None
    w, s, e, n = transform_bbox(bbox, bbox_crs or LONLAT, crs)
    return Box(w, s, e, n)


def _levels(layer: _Layer, tms: _Set, template: str, max_pixels: int,
            user: tuple[tuple[float, float, float, float], str | None] | None = None) -> list[WMTSLevel]:
    box = layer.box_in(tms)
    if user is not None:  # only the tiles under the user's box
        ubox = _user_box(tms, *user)
        if ubox is not None:
            box = ubox if box is None else Box(max(box.x0, ubox.x0), max(box.y0, ubox.y0), min(box.x1, ubox.x1),
                                               min(box.y1, ubox.y1))
            if box.x1 <= box.x0 or box.y1 <= box.y0:
                return []
    limits = layer.links.get(tms.ident, {})
    out: list[WMTSLevel] = []
    too_large = 0
    for m in tms.matrices:
        if limits and m.ident not in limits:
            continue  # the layer lists the matrices it has tiles in
        r0, r1, c0, c1 = limits.get(m.ident, (0, m.mh - 1, 0, m.mw - 1))
        r0, c0, r1, c1 = max(r0, 0), max(c0, 0), min(r1, m.mh - 1), min(c1, m.mw - 1)
        if r1 < r0 or c1 < c0:
            continue
        x0, y0 = tms.xy(m.corner)
        window = pixel_window(box, x0, y0, m.res, (c0 * m.tw, r0 * m.th, (c1 + 1) * m.tw, (r1 + 1) * m.th))
        if window is None:
            continue
        left, top, right, bottom = window
        col0, row0 = left // m.tw, top // m.th
        width, height = right - col0 * m.tw, bottom - row0 * m.th
        if width > MAX_SIDE or height > MAX_SIDE or width * height > min(MAX_PIXELS, max_pixels) or (
                -(-width // m.tw) * -(-height // m.th) > MAX_TILES):
            too_large += 1
            continue
        values = {"tilematrixset": tms.ident, "tilematrix": m.ident, "style": layer.style,
                  **{k.lower(): v for k, v in layer.dims.items()}}
        transform = (x0 + col0 * m.tw * m.res, m.res, 0.0, y0 - row0 * m.th * m.res, 0.0, -m.res)
        out.append(WMTSLevel(width, height, m.tw, m.th, name=f"{tms.ident}/{m.ident}",
                             template=_fill(template, values), col0=col0, row0=row0, geotransform=transform))
    if too_large:
        log.info("WMTS %s in %s: %d tile matrices over the size cap left out", layer.ident, tms.ident, too_large)
    out.sort(key=lambda lv: lv.width * lv.height, reverse=True)
    return out[:MAX_LEVELS]


def parse_capabilities(url: str, root: etree._Element, *, layer_id: str | None = None, set_id: str | None = None,
                       max_pixels: int = DEFAULT_MAX_PIXELS,
                       bbox: tuple[tuple[float, float, float, float], str | None] | None = None) -> list[Image]:
    """One image per layer (only ``layer_id`` when given) of a WMTS Capabilities document."""
    contents = next((c for c in root if local_name(c) == "Contents"), None)
    if contents is None:
        raise MetadataError("the WMTS capabilities have no <Contents>", hint=_HINT)
    sets = {s.ident: s for s in map(_Set, _children(contents, "TileMatrixSet")[:MAX_LAYERS])}
    elements = _children(contents, "Layer")
    if layer_id is not None:
        idents = [_text(el, "Identifier") or "" for el in elements]
        exact = [el for el, i in zip(elements, idents, strict=True) if i == layer_id]
        loose = [el for el, i in zip(elements, idents, strict=True) if i.lower() == layer_id.lower()]
        if not exact and not loose:
            raise MetadataError(f"no layer {layer_id!r} in the WMTS capabilities", hint=f"Layers: {', '.join(idents[:20])}")
        elements = (exact or loose)[:1]
    href = _kvp_href(root, url)
    images: list[Image] = []
    reasons: list[str] = []
    for layer in map(_Layer, elements[:MAX_LAYERS]):
        names = [set_id] if set_id is not None else list(layer.links) or list(sets)
        candidates = [sets[n] for n in names[:8] if n in sets]  # at most 8 sets tried per layer
        candidates.sort(key=lambda s: layer.box_in(s) is None)  # a set the layer's extent can be placed in first
        if layer.tile_templates:
            template = resolve_relative(url, layer.tile_templates[0][0])
        else:
            template = _kvp_template(href, url, layer) if href else ""
        if not template:
            reasons.append(f"{layer.ident}: no tile ResourceURL and no KVP GetTile")
            continue
        levels, crs = [], None
        for tms in candidates:
            levels = _levels(layer, tms, template, max_pixels, bbox)
            if levels:
                crs = crs_from_code(4326 if tms.code == CRS84 else tms.code)
                break
        if not levels:
            reasons.append(f"{layer.ident}: no usable tile matrix" + (" under the box" if bbox else ""))
            continue
        georef = GeoRef(crs, levels[0].geotransform) if crs is not None else None
        images.append(Image(levels=tuple(levels), title=layer.title, dezoomer=NAME, url=url, georef=georef))
    if not images:
        raise MetadataError("no WMTS layer could be turned into an image: " + "; ".join(reasons[:5] or ["no <Layer>"]),
                            hint=_HINT)
    return images


def _params(url: str) -> dict[str, str]:
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True) + parse_qsl(parts.fragment, keep_blank_values=True)
    return {k.lower(): v for k, v in pairs}


def capabilities_url(url: str) -> str:
    """The capabilities URL for ``url`` (a KVP GetTile request gives its server's GetCapabilities)."""
    if _params(url).get("request", "").lower() == "gettile":
        base = urlsplit(url)._replace(query="", fragment="").geturl()
        return f"{base}?SERVICE=WMTS&REQUEST=GetCapabilities&VERSION=1.0.0"
    return url.split("#", 1)[0]


def _root(data: bytes) -> etree._Element | None:
    if not _ROOT_RE.search(data[:65536]):
        return None
    root = parse_xml(data)
    return root if root is not None and local_name(root) == "Capabilities" else None


class WMTSDezoomer(Dezoomer):
    name = NAME
    description = "OGC WMTS capabilities (RESTful or KVP; one image per layer, #layer=NAME picks one)"

    def images(self, ctx: Context) -> list[Image]:
        url = ctx.url
        if _SKIP_RE.search(url.split("?", 1)[0]):
            raise WrongDezoomer("a tile or image URL, not WMTS capabilities")
        params = _params(url)
        cap = capabilities_url(url)
        root = _root(ctx.get(cap))
        if root is None and _WORD_RE.search(url) and "request" not in params and not cap.lower().endswith(".xml"):
            cap = cap + ("&" if "?" in cap else "?") + "SERVICE=WMTS&REQUEST=GetCapabilities"
            root = _root(ctx.get(cap))
        if root is None or "wmts" not in (etree.QName(root).namespace or "").lower():
            if not _WORD_RE.search(url):
                raise WrongDezoomer("not WMTS capabilities")
            raise WrongDezoomer(f"no WMTS capabilities at {cap}")
        max_pixels = ctx.options.get("max_pixels", DEFAULT_MAX_PIXELS)
        bbox = ctx.options.get("bbox")
        user = (parse_bbox(bbox), ctx.options.get("bbox_crs")) if bbox is not None else None  # type: ignore[arg-type]
        return parse_capabilities(cap, root, layer_id=params.get("layer"), set_id=params.get("tilematrixset"),
                                  max_pixels=max_pixels if isinstance(max_pixels, int) else DEFAULT_MAX_PIXELS,
                                  bbox=user)  # type: ignore[arg-type]
