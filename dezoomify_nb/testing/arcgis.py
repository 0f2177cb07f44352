"""Cached ArcGIS REST services on the loopback :class:`TileServer`: ``…/MapServer?f=json`` and its tiles.

>>> site = ArcGisSite(make_test_image(1000, 720))     # doctest: +SKIP
>>> urls = site.install(server)                      # {"plan": …/Plan/MapServer, "ortho": …/Ortho/ImageServer, …}
>>> site.level_image("plan", 5)                      # what a download of LOD 5 must give

The service JSON is written from the ArcGIS REST API reference (``tileInfo`` with ``rows``, ``cols``,
``dpi``, ``format``, ``origin``, ``spatialReference``, ``lods``; ``fullExtent`` / ``extent``;
``documentInfo``; ``minLOD``/``maxLOD``). The map is a :class:`~.wmts.WmtsSite` (the same placement of the
image in a grid): ``plan`` is a MapServer in the Swiss grid (EPSG:2056, uneven resolutions 5, 4, 2.5, 2,
1.25, 1 m: LODs 0–5); ``ortho`` an ImageServer in Web Mercator (``wkid`` 102100, ``latestWkid`` 3857) whose
LODs 0–18 are listed but only 15–18 cached (``minLOD``/``maxLOD``), and which wants ``?token=secret`` on
every request (else the JSON error 499 ArcGIS sends); ``dynamic`` a MapServer without a cache.
Tiles are ``…/tile/{level}/{row}/{col}``; a tile outside the cache is a 404.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit

import numpy as np

from .tileserver import Response, TileServer
from .wmts import MatrixSetSpec, WmtsSite, default_sets

__all__ = ["TOKEN", "ArcGisSite"]

TOKEN = "secret"
_SERVICES = {"plan": ("Plan", "MapServer", 1), "ortho": ("Ortho", "ImageServer", 0)}


@dataclass
class ArcGisSite:
    image: np.ndarray
    prefix: str = "/arcgis/rest/services"
    _wmts: WmtsSite = field(init=False)

    def __post_init__(self) -> None:
        self._wmts = WmtsSite(self.image)  # default_sets(): WebMercatorQuad (15-18 served), LocalGrid

    def spec(self, service: str) -> MatrixSetSpec:
        return default_sets()[_SERVICES[service][2]]

    def level_image(self, service: str, lod: int) -> np.ndarray:
        """The pixels of LOD ``lod``: from the edge of its first tile to the end of the image."""
        spec = self.spec(service)
        return self._wmts.level_image(spec.ident, spec.name(lod))

    def extent(self, service: str) -> tuple[float, float, float, float]:
        """``(xmin, ymin, xmax, ymax)`` of the image in the service's CRS."""
        spec = self.spec(service)
        res = spec.resolutions[-1]
        h, w = self.image.shape[:2]
        x0 = spec.top_left[0] + spec.origin_px[0] * res
        y1 = spec.top_left[1] - spec.origin_px[1] * res
        return x0, y1 - h * res, x0 + w * res, y1

    def document(self, service: str) -> dict:
        spec = self.spec(service)
        wkid = {"wkid": 102100, "latestWkid": 3857} if service == "ortho" else {"wkid": 2056, "latestWkid": 2056}
        xmin, ymin, xmax, ymax = self.extent(service)
        lods = [{"level": i, "resolution": res, "scale": res * 96 / 0.0254} for i, res in enumerate(spec.resolutions)]
        doc = {"currentVersion": 11.1, "serviceDescription": "", "capabilities": "Map,Query,Data",
               "spatialReference": wkid, "singleFusedMapCache": True,
               "tileInfo": {"rows": spec.tile[1], "cols": spec.tile[0], "dpi": 96, "format": "PNG32",
                            "compressionQuality": 0, "origin": {"x": spec.top_left[0], "y": spec.top_left[1]},
                            "spatialReference": wkid, "lods": lods},
               "units": "esriMeters"}
        extent = {"xmin": xmin, "ymin": ymin, "xmax": xmax, "ymax": ymax, "spatialReference": wkid}
        if service == "ortho":  # an ImageServer: "extent", a "name", the cached LODs
            doc.update(name="Ortho", extent=extent, cacheType="Map", minLOD=15, maxLOD=18,
                       initialExtent={**extent, "xmin": xmin - 1e6})
        else:
            doc.update(mapName="Layers", fullExtent=extent, documentInfo={"Title": "Plan (test)", "Author": "t"},
                       initialExtent={**extent, "xmax": xmax + 1e5})
        return doc

    def install(self, server: TileServer, prefix: str | None = None) -> dict[str, str]:
        """Add the routes; returns the service URLs (``plan``, ``ortho`` (needs the token), ``dynamic``)."""
        self.prefix = (prefix or self.prefix).rstrip("/")
        server.add_route(self.prefix + "/", lambda s, raw, h: self._handle(raw))
        base = server.base_url + self.prefix
        return {"plan": f"{base}/Plan/MapServer", "ortho": f"{base}/Ortho/ImageServer",
                "dynamic": f"{base}/Dynamic/MapServer"}

    def _handle(self, raw: str) -> Response:
        parts = urlsplit(raw)
        path = unquote(parts.path)[len(self.prefix):]
        query = dict(parse_qsl(parts.query))
        if path == "/Dynamic/MapServer":
            return Response(200, json.dumps({"currentVersion": 11.1, "mapName": "Dynamic", "singleFusedMapCache": False,
                                             "spatialReference": {"wkid": 2056}}).encode(), "application/json")
        service = next((k for k, (n, kind, _) in _SERVICES.items() if path.startswith(f"/{n}/{kind}")), None)
        if service is None:
            return Response(404, b"not found\n")
        if service == "ortho" and query.get("token") != TOKEN:
            return Response(200, b'{"error":{"code":499,"message":"Token Required","details":[]}}', "application/json")
        name, kind, _ = _SERVICES[service]
        rest = path[len(f"/{name}/{kind}"):]
        if rest == "" and query.get("f") in ("json", "pjson"):
            return Response(200, json.dumps(self.document(service)).encode(), "application/json")
        m = re.fullmatch(r"/tile/(\d+)/(\d+)/(\d+)", rest)
        if m:
            spec, level = self.spec(service), int(m.group(1))
            if level >= len(spec.resolutions):
                return Response(404, b"no such level\n")
            got = self._wmts.tile(spec.ident, spec.name(level), int(m.group(2)), int(m.group(3)))
            return got if got.status == 200 else Response(404, b"tile not cached\n")
        return Response(404, b"not found\n")
