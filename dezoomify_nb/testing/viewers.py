"""Viewer pages that reveal their image only when their JavaScript runs, for the browser mode's tests.

:func:`install_viewers` adds them to a loopback :class:`~dezoomify_nb.testing.TileServer` (best
``lossless=True``, so downloads compare exactly) and returns ``{name: (page URL, expected pixels)}``.
OpenSeadragon (the copy the IIIF writer ships) is served from ``/static/openseadragon.min.js``. No page
names its source in a form the static page scan (:mod:`dezoomify_nb.dezoomers.page`) can read:

==============  ===========================================================================================
``fetch``       OpenSeadragon whose ``tileSources`` comes from a ``fetch()`` of a JSON API (IIIF 2)
``obfuscated``  a ``.dzi`` URL assembled from string pieces (Deep Zoom, overlap 1)
``click``       nothing until the viewer placeholder is clicked; then an IIIF 3 source built in JavaScript
                (no ``info.json`` is requested: only tiles)
``cookie``      a cookie set by JavaScript, which the tile server (``/guarded/``, Deep Zoom) requires (403)
``referer``     a tile server (``/refcheck/``, IIIF 2) that answers only requests whose Referer is the page
``frame``       the obfuscated viewer inside a same-site ``<iframe>`` (Deep Zoom without overlap)
``tiles``       plain ``<img>`` tiles of a ``/xyz/{z}/{x}/{y}.png`` grid: no metadata at all
``nothing``     text, a small logo and a script polling the server forever: never an image
==============  ===========================================================================================
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import resources

import numpy as np

from .tileserver import Response, TileServer
from .tilesites import install_grid

__all__ = ["install_viewers"]

_HEAD = ('<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>'
         '<script src="/static/openseadragon.min.js"></script>'
         '<style>body{{margin:0;font:16px sans-serif}} .viewer{{width:800px;height:560px;background:#222}}</style>'
         '</head><body><h1>{title}</h1>')
_OSD = "OpenSeadragon({{id: '{id}', showNavigationControl: false, tileSources: {src}}})"

_PAGES = {
    "fetch": ('<div id="v" class="viewer"></div><script>'
              "fetch('/v/api/object/42').then(r => r.json()).then(d => "
              + _OSD.format(id="v", src="d.image.service") + ");</script>"),
    "obfuscated": ('<div id="v" class="viewer"></div><script>'
                   "var u = ['/dz', 'i-p', 'ng/im', 'age', '.d', 'zi'].join('');"
                   + _OSD.format(id="v", src="u") + ";</script>"),
    "click": ('<div id="viewer" class="viewer" style="color:#fff">Click to view the image</div><script>'
              "document.getElementById('viewer').addEventListener('click', function () {"
              "  if (this.dataset.on) return; this.dataset.on = 1; this.textContent = '';"
              "  var s = {width: W, height: H, profile: ['http://iiif.io/api/image/2/level2.json'],"
              "           tiles: [{width: 512, scaleFactors: [1, 2]}], protocol: 'http://iiif.io/api/' + 'image'};"
              "  s['@' + 'context'] = 'http://iiif.io/api/' + 'image/2/con' + 'text.json';"
              "  s['@' + 'id'] = location.origin + '/iii' + 'f3';"
              + _OSD.format(id="viewer", src="s") + ";});</script>"),
    "cookie": ('<div id="v" class="viewer"></div><script>'
               "document.cookie = 'viewer_session=' + 'ok' + '; path=/';"
               + _OSD.format(id="v", src="'/gua' + 'rded/image' + '.dzi'") + ";</script>"),
    "referer": ('<div id="v" class="viewer"></div><script>'
                + _OSD.format(id="v", src="'/refch' + 'eck/info' + '.json'") + ";</script>"),
    "frame": '<p>The viewer is in a frame:</p><iframe src="/v/frame-inner/" width="860" height="620"></iframe>',
    "frame-inner": ('<div id="v" class="viewer"></div><script>'
                    "var u = ['/dz', 'i-j', 'pg/im', 'age', '.d', 'zi'].join('');"
                    + _OSD.format(id="v", src="u") + ";</script>"),
    "tiles": '<div id="t"></div><script>{tiles}</script>',
    "nothing": ('<p>No image here, only a logo:</p><img src="/v/logo.png" width="32" height="32" alt="logo">'
                "<script>setInterval(function () { fetch('/v/ping'); }, 300);</script>"),
}


def _osd_js() -> bytes:
    return resources.files("dezoomify_nb.writers").joinpath("templates/openseadragon.min.js").read_bytes()


def _logo() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 40, 40)).save(buf, "PNG")
    return buf.getvalue()


def install_viewers(server: TileServer) -> dict[str, tuple[str, np.ndarray]]:
    """Serve the viewer pages (module doc) on ``server``: ``{name: (page URL, expected full image)}``."""
    base = server.base_url
    grid = install_grid(server, "xyz")
    z = grid.top - 1
    cols, rows = (-(-s // grid.tile) for s in grid.size(z))
    tiles_js = "".join(
        f"var i=new Image();i.src='/xy'+'z/{z}/{x}/{y}.png';document.getElementById('t').appendChild(i);"
        for y in range(rows) for x in range(cols))
    js, logo = _osd_js(), _logo()
    api = json.dumps({"image": {"service": base + "/iiif2/info.json", "title": "Object 42"}}).encode()

    def pages(srv: TileServer, raw_path: str, headers: Mapping[str, str]) -> Response:
        path = raw_path.split("?", 1)[0]
        if path == "/v/api/object/42":
            return Response(200, api, "application/json")
        if path == "/v/logo.png":
            return Response(200, logo, "image/png")
        if path == "/v/ping":
            return Response(200, b"pong", "text/plain")
        name = path.removeprefix("/v/").strip("/")
        if name not in _PAGES:
            return Response(404, b"not found\n")
        body = _PAGES[name].replace("{tiles}", tiles_js)
        if name == "click":
            body = body.replace("width: W, height: H", f"width: {server.width}, height: {server.height}")
        html = _HEAD.format(title=f"Viewer: {name}") + body + "</body></html>"
        return Response(200, html.encode(), "text/html; charset=utf-8")

    def static(srv: TileServer, raw_path: str, headers: Mapping[str, str]) -> Response:
        if raw_path.split("?", 1)[0] == "/static/openseadragon.min.js":
            return Response(200, js, "application/javascript")
        return Response(404, b"not found\n")

    def guarded(srv: TileServer, raw_path: str, headers: Mapping[str, str]) -> Response:
        if "viewer_session=ok" not in (headers.get("Cookie") or ""):
            return Response(403, b"no session cookie\n")
        return srv._route(raw_path.replace("/guarded/", "/dzi-png/", 1).split("?", 1)[0])  # noqa: SLF001

    def refcheck(srv: TileServer, raw_path: str, headers: Mapping[str, str]) -> Response:
        if not (headers.get("Referer") or "").startswith(base + "/v/referer"):
            return Response(403, b"tiles are served to our viewer only\n")
        resp = srv._route(raw_path.replace("/refcheck/", "/iiif2/", 1).split("?", 1)[0])  # noqa: SLF001
        if raw_path.endswith("/info.json") and resp.status == 200:
            resp = Response(200, resp.body.replace(b"/iiif2", b"/refcheck"), resp.content_type)
        return resp

    for prefix, handler in (("/v/", pages), ("/static/", static), ("/guarded/", guarded), ("/refcheck/", refcheck)):
        server.add_route(prefix, handler)
    return {
        "fetch": (base + "/v/fetch/", server.level_image("iiif2", 0)),
        "obfuscated": (base + "/v/obfuscated/", server.level_image("dzi-png", 0)),
        "click": (base + "/v/click/", server.level_image("iiif3", 0)),
        "cookie": (base + "/v/cookie/", server.level_image("dzi-png", 0)),
        "referer": (base + "/v/referer/", server.level_image("iiif2", 0)),
        "frame": (base + "/v/frame/", server.level_image("dzi-jpg", 0)),
        "tiles": (base + "/v/tiles/", grid.level_image(grid.top)),
        "nothing": (base + "/v/nothing/", np.zeros((0, 0, 3), np.uint8)),
    }
