"""An OGC WMTS server on the loopback :class:`TileServer`: capabilities, RESTful and KVP tiles.

>>> site = WmtsSite(make_test_image(1000, 720))            # doctest: +SKIP
>>> url = site.install(server)                             # …/wmts-site/1.0.0/WMTSCapabilities.xml
>>> site.level_image("WebMercatorQuad", "18")              # what a download of that matrix must give

The image is a map placed in each tile matrix set at an exact pixel position: :class:`MatrixSetSpec`
gives the set's CRS, top-left corner, resolutions (CRS units per pixel, any ratios) and where the image's
top-left pixel falls in the finest matrix; at every matrix the image is the source resized to its size
there (which must be whole pixels, as must its position) and everything else is the background colour.
Tiles are always whole (``TileWidth`` × ``TileHeight``, PNG), cut on the fly, so matrices can be as large
as real ones (Web Mercator zoom 18 has 2¹⁸ columns).

The capabilities list two layers: ``ortho`` (a ``{Time}`` dimension, RESTful ``ResourceURL``, linked to
every set) and ``plan`` (no ``ResourceURL``: KVP ``GetTile`` only, linked to the last set). Web Mercator
sets get the layer's extent as a ``WGS84BoundingBox`` only (so the client must project it), other sets
as an ``ows:BoundingBox`` in their CRS. ``limits`` restricts a set to some matrices
(``TileMatrixSetLimits``).
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit

import numpy as np
from PIL import Image

from ._sites import Pyramid
from .tileserver import PNG_COMPRESS_LEVEL, Response, TileServer

__all__ = ["GOOGLE_TLC", "MatrixSetSpec", "WmtsSite", "google_resolution"]

RADIUS = 6378137.0
GOOGLE_TLC = (-20037508.3427892, 20037508.3427892)
METRES_PER_DEGREE = 2 * math.pi * RADIUS / 360


def google_resolution(zoom: int) -> float:
    """Metres per pixel of GoogleMapsCompatible zoom ``zoom`` (256-px tiles)."""
    return 2 * math.pi * RADIUS / 256 / 2**zoom


@dataclass(frozen=True)
class MatrixSetSpec:
    """A TileMatrixSet: ``resolutions`` finest last, matrix ``i`` named ``names[i]`` (default ``str(i)``)."""

    ident: str
    crs: str
    top_left: tuple[float, float]  # (x, y): written in the CRS's axis order in the XML
    resolutions: tuple[float, ...]
    origin_px: tuple[int, int]  # the image's top-left pixel in the finest matrix
    tile: tuple[int, int] = (256, 256)
    names: tuple[str, ...] = ()
    limits: tuple[str, ...] = ()  # matrices listed in the layer's TileMatrixSetLimits (empty: no limits)
    matrix_size: tuple[tuple[int, int], ...] = ()  # (MatrixWidth, MatrixHeight) per matrix (default: to fit)
    geographic: bool = False
    lat_first: bool = False

    def name(self, i: int) -> str:
        return self.names[i] if self.names else str(i)


@dataclass
class _Matrix:
    size: tuple[int, int]  # the image at this matrix
    pos: tuple[int, int]  # its top-left pixel
    grid: tuple[int, int]  # MatrixWidth, MatrixHeight


@dataclass
class WmtsSite:
    image: np.ndarray
    sets: Sequence[MatrixSetSpec] = ()
    background: tuple[int, int, int] = (255, 255, 255)
    prefix: str = "/wmts-site"
    time: str = "2024-05-01"
    _matrices: dict[tuple[str, str], _Matrix] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.pyramid = Pyramid(self.image, lossless=True)
        if not self.sets:
            self.sets = default_sets()
        w, h = self.pyramid.width, self.pyramid.height
        for spec in self.sets:
            finest = spec.resolutions[-1]
            for i, res in enumerate(spec.resolutions):
                f = finest / res
                vals = (w * f, h * f, spec.origin_px[0] * f, spec.origin_px[1] * f)
                served = not spec.limits or spec.name(i) in spec.limits
                if served and any(abs(v - round(v)) > 1e-9 for v in vals):
                    raise ValueError(f"{spec.ident}/{spec.name(i)}: the image is not at whole pixels ({vals})")
                size, pos = (round(vals[0]), round(vals[1])), (round(vals[2]), round(vals[3]))
                grid = spec.matrix_size[i] if spec.matrix_size else (
                    -(-(pos[0] + size[0]) // spec.tile[0]) + 1, -(-(pos[1] + size[1]) // spec.tile[1]) + 1)
                self._matrices[(spec.ident, spec.name(i))] = _Matrix(size, pos, grid)

    # --- what a client must get ----------------------------------------------------------------------
    def level_image(self, set_ident: str, matrix: str) -> np.ndarray:
        """The pixels a download of ``matrix`` must give: from the first tile's edge to the image's end."""
        spec = next(s for s in self.sets if s.ident == set_ident)
        m = self._matrices[(set_ident, matrix)]
        tw, th = spec.tile
        left, top = m.pos[0] // tw * tw, m.pos[1] // th * th
        return self._render(m, (left, top, m.pos[0] + m.size[0], m.pos[1] + m.size[1]))

    def matrix(self, set_ident: str, matrix: str) -> _Matrix:
        return self._matrices[(set_ident, matrix)]

    def _render(self, m: _Matrix, box: tuple[int, int, int, int]) -> np.ndarray:
        x0, y0, x1, y1 = box
        out = np.empty((y1 - y0, x1 - x0, 3), dtype=np.uint8)
        out[:] = self.background
        ix0, iy0 = max(x0, m.pos[0]), max(y0, m.pos[1])
        ix1, iy1 = min(x1, m.pos[0] + m.size[0]), min(y1, m.pos[1] + m.size[1])
        if ix1 > ix0 and iy1 > iy0:
            level = np.asarray(self.pyramid.level(m.size).convert("RGB"))
            out[iy0 - y0: iy1 - y0, ix0 - x0: ix1 - x0] = level[iy0 - m.pos[1]: iy1 - m.pos[1],
                                                                ix0 - m.pos[0]: ix1 - m.pos[0]]
        return out

    # --- capabilities --------------------------------------------------------------------------------
    def capabilities(self, base_url: str) -> str:
        w, h = self.pyramid.width, self.pyramid.height
        sets_xml, links = [], []
        for spec in self.sets:
            res = spec.resolutions[-1]
            x_min = spec.top_left[0] + spec.origin_px[0] * res
            y_max = spec.top_left[1] - spec.origin_px[1] * res
            x_max, y_min = x_min + w * res, y_max - h * res
            if spec.crs.endswith("3857"):
                (lon0, lat0), (lon1, lat1) = _lonlat(x_min, y_min), _lonlat(x_max, y_max)
                spec_box = (f"<ows:WGS84BoundingBox><ows:LowerCorner>{lon0!r} {lat0!r}</ows:LowerCorner>"
                            f"<ows:UpperCorner>{lon1!r} {lat1!r}</ows:UpperCorner></ows:WGS84BoundingBox>")
            else:
                spec_box = (f'<ows:BoundingBox crs="{spec.crs}"><ows:LowerCorner>{_xy(spec, x_min, y_min)}</ows:LowerCorner>'
                            f"<ows:UpperCorner>{_xy(spec, x_max, y_max)}</ows:UpperCorner></ows:BoundingBox>")
            links.append((spec, spec_box))
            sets_xml.append(self._set_xml(spec))
        ortho = "".join(box for _, box in links) + "".join(_link(s, self) for s, _ in links)
        plan_spec, plan_box = links[-1]
        rest = (f'<ResourceURL format="image/png" resourceType="tile" template="{base_url}/rest/ortho/{{Style}}/'
                f'{{Time}}/{{TileMatrixSet}}/{{TileMatrix}}/{{TileRow}}/{{TileCol}}.png"/>')
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<Capabilities xmlns="http://www.opengis.net/wmts/1.0" xmlns:ows="http://www.opengis.net/ows/1.1" '
            'xmlns:xlink="http://www.w3.org/1999/xlink" version="1.0.0">\n'
            "<ows:ServiceIdentification><ows:Title>Loopback WMTS</ows:Title>"
            "<ows:ServiceType>OGC WMTS</ows:ServiceType><ows:ServiceTypeVersion>1.0.0</ows:ServiceTypeVersion>"
            "</ows:ServiceIdentification>\n<ows:OperationsMetadata>"
            + "".join(f'<ows:Operation name="{op}"><ows:DCP><ows:HTTP><ows:Get xlink:href="{base_url}/kvp?">'
                      '<ows:Constraint name="GetEncoding"><ows:AllowedValues><ows:Value>KVP</ows:Value>'
                      "</ows:AllowedValues></ows:Constraint></ows:Get></ows:HTTP></ows:DCP></ows:Operation>"
                      for op in ("GetCapabilities", "GetTile"))
            + "</ows:OperationsMetadata>\n<Contents>\n"
            "<Layer><ows:Title>Orthophoto (test)</ows:Title><ows:Identifier>ortho</ows:Identifier>" + ortho
            + '<Style isDefault="true"><ows:Identifier>default</ows:Identifier></Style><Format>image/png</Format>'
            f"<Dimension><ows:Identifier>Time</ows:Identifier><Default>{self.time}</Default>"
            f"<Value>{self.time}</Value></Dimension>" + rest + "</Layer>\n"
            "<Layer><ows:Title>Plan (KVP only)</ows:Title><ows:Identifier>plan</ows:Identifier>" + plan_box
            + '<Style isDefault="true"><ows:Identifier>plain</ows:Identifier></Style><Format>image/png</Format>'
            + _link(plan_spec, self) + "</Layer>\n" + "\n".join(sets_xml) + "\n</Contents>\n</Capabilities>\n"
        )

    def _set_xml(self, spec: MatrixSetSpec) -> str:
        out = [f"<TileMatrixSet><ows:Identifier>{spec.ident}</ows:Identifier><ows:SupportedCRS>{spec.crs}"
               "</ows:SupportedCRS>"]
        units = METRES_PER_DEGREE if spec.geographic else 1.0
        for i, res in enumerate(spec.resolutions):
            m = self._matrices[(spec.ident, spec.name(i))]
            out.append(f"<TileMatrix><ows:Identifier>{spec.name(i)}</ows:Identifier>"
                       f"<ScaleDenominator>{res * units / 0.00028!r}</ScaleDenominator>"
                       f"<TopLeftCorner>{_xy(spec, *spec.top_left)}</TopLeftCorner>"
                       f"<TileWidth>{spec.tile[0]}</TileWidth><TileHeight>{spec.tile[1]}</TileHeight>"
                       f"<MatrixWidth>{m.grid[0]}</MatrixWidth><MatrixHeight>{m.grid[1]}</MatrixHeight></TileMatrix>")
        return "".join(out) + "</TileMatrixSet>"

    # --- serving -------------------------------------------------------------------------------------
    def tile(self, set_ident: str, matrix: str, row: int, col: int) -> Response:
        spec = next((s for s in self.sets if s.ident == set_ident), None)
        m = self._matrices.get((set_ident, matrix))
        if spec is None or m is None or not (0 <= col < m.grid[0] and 0 <= row < m.grid[1]):
            return Response(400, b"<ExceptionReport>TileOutOfRange</ExceptionReport>", "application/xml")
        if spec.limits and matrix not in spec.limits:
            return Response(400, b"<ExceptionReport>TileOutOfRange</ExceptionReport>", "application/xml")
        tw, th = spec.tile
        arr = self._render(m, (col * tw, row * th, (col + 1) * tw, (row + 1) * th))
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, "PNG", compress_level=PNG_COMPRESS_LEVEL)
        return Response(200, buf.getvalue(), "image/png")

    def install(self, server: TileServer, prefix: str | None = None) -> str:
        """Add the routes; returns the capabilities URL."""
        self.prefix = (prefix or self.prefix).rstrip("/")
        base = server.base_url + self.prefix
        server.add_route(self.prefix + "/", lambda s, raw, h: self._handle(base, raw))
        return f"{base}/1.0.0/WMTSCapabilities.xml"

    def _handle(self, base: str, raw: str) -> Response:
        parts = urlsplit(raw)
        path = unquote(parts.path)[len(self.prefix):]
        if path == "/1.0.0/WMTSCapabilities.xml":
            return Response(200, self.capabilities(base).encode(), "application/xml")
        m = re.fullmatch(r"/rest/ortho/default/([^/]+)/([^/]+)/([^/]+)/(\d+)/(\d+)\.png", path)
        if m:
            if m.group(1) != self.time:
                return Response(404, b"no such time\n")
            return self.tile(m.group(2), m.group(3), int(m.group(4)), int(m.group(5)))
        if path == "/kvp":
            q = {k.upper(): v for k, v in parse_qsl(parts.query)}
            if q.get("REQUEST", "").lower() == "getcapabilities":
                return Response(200, self.capabilities(base).encode(), "application/xml")
            want = {"SERVICE": "WMTS", "REQUEST": "GetTile", "LAYER": "plan", "STYLE": "plain", "FORMAT": "image/png"}
            if any(q.get(k) != v for k, v in want.items()) or not q.get("TILEROW", "").isdigit() or not q.get(
                    "TILECOL", "").isdigit():
                return Response(400, b"<ExceptionReport>MissingParameterValue</ExceptionReport>", "application/xml")
            return self.tile(q.get("TILEMATRIXSET", ""), q.get("TILEMATRIX", ""), int(q["TILEROW"]), int(q["TILECOL"]))
        return Response(404, b"not found\n")


def _lonlat(x: float, y: float) -> tuple[float, float]:
    return math.degrees(x / RADIUS), math.degrees(2 * math.atan(math.exp(y / RADIUS)) - math.pi / 2)


def _xy(spec: MatrixSetSpec, x: float, y: float) -> str:
    return f"{y!r} {x!r}" if spec.lat_first else f"{x!r} {y!r}"


def _link(spec: MatrixSetSpec, site: WmtsSite) -> str:
    if not spec.limits:
        return f"<TileMatrixSetLink><TileMatrixSet>{spec.ident}</TileMatrixSet></TileMatrixSetLink>"
    rows = []
    tw, th = spec.tile
    for name in spec.limits:
        m = site.matrix(spec.ident, name)
        c0, r0 = m.pos[0] // tw, m.pos[1] // th
        c1, r1 = (m.pos[0] + m.size[0] - 1) // tw, (m.pos[1] + m.size[1] - 1) // th
        rows.append(f"<TileMatrixLimits><TileMatrix>{name}</TileMatrix><MinTileRow>{r0}</MinTileRow>"
                    f"<MaxTileRow>{r1}</MaxTileRow><MinTileCol>{c0}</MinTileCol><MaxTileCol>{c1}</MaxTileCol>"
                    "</TileMatrixLimits>")
    return (f"<TileMatrixSetLink><TileMatrixSet>{spec.ident}</TileMatrixSet><TileMatrixSetLimits>"
            + "".join(rows) + "</TileMatrixSetLimits></TileMatrixSetLink>")


def default_sets() -> list[MatrixSetSpec]:
    """GoogleMapsCompatible zooms 0–18 (the layer limited to 15–18) and a national grid with uneven scales.

    For a 1000 × 720 image: at zoom 18 it starts 136 px into tile column 137000 and 40 px into row 90000;
    in ``LocalGrid`` (EPSG:2056, resolutions 5, 4, 2.5, 2, 1.25, 1 m) it starts at (380, 260) px of the 1 m
    matrix.
    """
    google = MatrixSetSpec(
        "WebMercatorQuad", "urn:ogc:def:crs:EPSG::3857", GOOGLE_TLC, tuple(google_resolution(z) for z in range(19)),
        (137_000 * 256 + 136, 90_000 * 256 + 40), limits=("15", "16", "17", "18"),
        matrix_size=tuple((2**z, 2**z) for z in range(19)))
    local = MatrixSetSpec("LocalGrid", "urn:ogc:def:crs:EPSG::2056", (2_420_000.0, 1_350_000.0),
                          (5.0, 4.0, 2.5, 2.0, 1.25, 1.0), (380, 260), names=("5m", "4m", "2.5m", "2m", "1.25m", "1m"))
    return [google, local]

