"""A TileJSON layer on the loopback :class:`TileServer`: an :class:`~.xyz.XyzSite` plus its TileJSON documents.

>>> site = TileJsonSite(make_test_image(1000, 720), zooms=(13, 16), origin_px=(8448096, 5632048))  # doctest: +SKIP
>>> url = site.install(server)        # …/tilejson-site/tiles.json (scheme xyz); tms.json: scheme tms

The documents follow TileJSON 3.0.0: ``tilejson``, ``name``, ``tiles`` (absolute URLs; ``relative.json``
has a relative one), ``scheme``, ``minzoom``/``maxzoom`` (the served zooms) and ``bounds`` (the image's
extent in lon/lat, exactly), plus ``attribution`` and an unknown key, which clients must ignore.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from .tileserver import Response, TileServer
from .xyz import XyzSite

__all__ = ["TileJsonSite"]


@dataclass
class TileJsonSite(XyzSite):
    prefix: str = "/tilejson-site"
    name: str = "Loopback historical map"

    def document(self, base: str, *, scheme: str = "xyz", relative: bool = False) -> dict:
        folder = "t" if scheme == "xyz" else "tms"  # TMS rows count from the bottom
        tiles = [f"{folder}/{{z}}/{{x}}/{{y}}.png"] if relative else [f"{base}/{folder}/{{z}}/{{x}}/{{y}}.png"]
        return {"tilejson": "3.0.0", "name": self.name, "version": "1.0.0", "scheme": scheme, "tiles": tiles,
                "minzoom": self.zooms[0], "maxzoom": self.zooms[1], "bounds": list(self.lonlat_bounds()),
                "attribution": "test pattern", "something_custom": "ignored"}

    def install(self, server: TileServer, prefix: str | None = None) -> str:
        """Add the routes; returns the URL of ``tiles.json``."""
        self.prefix = (prefix or self.prefix).rstrip("/")
        base = server.base_url + self.prefix
        server.add_route(self.prefix + "/", lambda s, raw, h: self._serve(base, raw))
        return f"{base}/tiles.json"

    def _serve(self, base: str, raw: str) -> Response:
        path = unquote(urlsplit(raw).path)[len(self.prefix):]
        docs = {"/tiles.json": {}, "/tms.json": {"scheme": "tms"}, "/relative.json": {"relative": True}}
        if path in docs:
            return Response(200, json.dumps(self.document(base, **docs[path])).encode(), "application/json")
        parts = path.strip("/").split("/")
        if len(parts) == 4 and parts[0] in ("t", "tms") and all(p.isdigit() for p in parts[1:3]) and \
                parts[3].endswith(".png") and parts[3][:-4].isdigit():
            z, x, y = int(parts[1]), int(parts[2]), int(parts[3][:-4])
            return self.tile_response(z, x, 2**z - 1 - y if parts[0] == "tms" else y)
        return Response(404, b"not found\n")
