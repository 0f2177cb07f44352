"""Server sides of five formats only the web dezoomify read: FSI, LizardTech, VLS, Micrio, Mnesys.

Each ``*Site`` serves one test image the way the real servers do (as far as the web dezoomify's code and
the format notes in ``more-formats.md`` tell), with tiles cut from levels of the image resized once with
Pillow ``BOX`` (:class:`~dezoomify_nb.testing._sites.Pyramid`), PNG-encoded when ``lossless`` so that
downloads can be compared exactly. ``site.install(server, prefix)`` adds its routes to a
:class:`~dezoomify_nb.testing.TileServer` and returns the URL a user would give. With ``origin`` set (for
example ``https://www.e-rara.ch``), every URL the site prints uses it, and
``route_hosts(server, site.hosts)`` replays that host on loopback.

What each emulation assumes, where the sources do not say:

* **FSI** renders ``rect`` (fractions of the image) at ``width`` × ``height``: an exact crop when the sizes
  agree, else a ``BOX`` resize of that region.
* **LizardTech** reads ``cp`` the way the JS's centre formula implies: at level ``lev`` (size ``w``, square
  ``S`` = 512·2^(levels−1−lev)), the window centre is ``cp·w + (S − w)/2`` pixels.
* **VLS** serves 1024 px tiles cropped at the image's edges; its page declares the true height.
* **Mnesys** layers ``z = 0…N`` halve the image (rounded up) from the full size ``z = N`` down to one tile.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import numpy as np
from PIL import Image

from ._sites import Pyramid
from .tileserver import JPEG_QUALITY, LEVEL_FILTER, PNG_COMPRESS_LEVEL, Response, TileServer

__all__ = ["FsiSite", "LizardTechSite", "MicrioSite", "MnesysSite", "VlsSite"]

NOT_FOUND = Response(404, b"not found\n")
BAD = Response(400, b"bad request\n")


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _halvings(width: int, height: int, stop: int) -> list[tuple[int, int]]:
    """Sizes from the full one, each side halved (rounded up), while the largest side exceeds ``stop``."""
    sizes = [(width, height)]
    while max(sizes[-1]) > stop:
        w, h = sizes[-1]
        sizes.append((_ceil_div(w, 2), _ceil_div(h, 2)))
    return sizes


class _Site:
    """What every site has: the image pyramid, a prefix on the server, the origin its URLs use."""

    host = "site.invalid"

    def __init__(self, image: np.ndarray, *, lossless: bool, origin: str | None) -> None:
        self.pyramid = Pyramid(image, lossless=lossless)
        self.width, self.height = self.pyramid.width, self.pyramid.height
        self._origin = origin.rstrip("/") if origin else None
        self.prefix = ""
        self.base = ""

    @property
    def origin(self) -> str:
        """``scheme://host`` (or the loopback base plus prefix) that the site's URLs start with."""
        return self._origin or self.base

    @property
    def hosts(self) -> dict[str, str]:
        """For :func:`~dezoomify_nb.testing.hosts.route_hosts` when ``origin`` names a host."""
        return {urlsplit(self._origin).netloc: self.prefix} if self._origin else {}

    def _mount(self, server: TileServer, prefix: str) -> None:
        self.prefix = "/" + prefix.strip("/")
        self.base = server.base_url + self.prefix
        server.add_route(self.prefix + "/", self._route)

    def _route(self, server: TileServer, raw_path: str, headers: Mapping[str, str]) -> Response:
        parts = urlsplit(raw_path[len(self.prefix):])
        return self.handle(unquote(parts.path), dict(parse_qsl(parts.query, keep_blank_values=True)))

    def handle(self, path: str, query: dict[str, str]) -> Response:  # pragma: no cover - abstract
        raise NotImplementedError

    def encode(self, img: Image.Image) -> Response:
        buf = io.BytesIO()
        if self.pyramid.lossless:
            img.save(buf, "PNG", compress_level=PNG_COMPRESS_LEVEL)
        else:
            (img.convert("RGB") if img.mode == "RGBA" else img).save(buf, "JPEG", quality=JPEG_QUALITY)
        return Response(200, buf.getvalue(), self.pyramid.content_type)

    def level_image(self, size: tuple[int, int]) -> np.ndarray:
        """Pixels of the level of ``size`` as this site cuts its tiles from it."""
        return self.pyramid.level_array(size)


def _text(body: str, ctype: str = "text/xml; charset=utf-8") -> Response:
    return Response(200, body.encode(), ctype)


# --------------------------------------------------------------------------------------------- FSI
class FsiSite(_Site):
    """An FSI Server at ``…/server`` serving ``source``; ``viewer.html`` embeds it, ``bare.html`` does not."""

    def __init__(self, image: np.ndarray, *, source: str = "images/sample.tif", lossless: bool = True,
                 origin: str | None = None) -> None:
        super().__init__(image, lossless=lossless, origin=origin)
        self.source = source

    def install(self, server: TileServer, prefix: str = "/fsi") -> str:
        self._mount(server, prefix)
        return self.image_url

    @property
    def image_url(self) -> str:
        """An image request as a browser makes it (what a user copies from the network inspector)."""
        return f"{self.origin}/server?type=image&source={quote(self.source, safe='')}&width=400"

    def handle(self, path: str, query: dict[str, str]) -> Response:
        if path == "/viewer.html":
            src = f"{self.prefix}/server?type=image&amp;source={quote(self.source, safe='')}&amp;width=300"
            return _text(f'<html><body><fsi-viewer src="{self.source}" width="800"></fsi-viewer>'
                         f'<noscript><img src="{src}"></noscript></body></html>', "text/html")
        if path == "/bare.html":
            return _text(f'<html><body><fsi-viewer src="{self.source}"></fsi-viewer></body></html>', "text/html")
        if path != "/server" or query.get("source") != self.source:
            return NOT_FOUND
        if query.get("type") == "info":
            return _text(f'<?xml version="1.0" encoding="UTF-8"?>\n<fsi_image_info>\n  <Width value="{self.width}" />'
                         f'\n  <Height value="{self.height}" />\n  <Format value="tiff" />\n</fsi_image_info>\n')
        if query.get("type") != "image":
            return BAD
        try:
            out = (int(query["width"]), int(query["height"]))
            rx, ry, rw, rh = (float(v) for v in query["rect"].split(","))
        except (KeyError, ValueError):
            return BAD

        def snap(v: float) -> float:
            return float(round(v)) if abs(v - round(v)) < 1e-6 else v

        box = (snap(rx * self.width), snap(ry * self.height), snap((rx + rw) * self.width), snap((ry + rh) * self.height))
        if min(out) <= 0 or max(out) > 4096 or box[0] < 0 or box[1] < 0 or box[2] > self.width or box[3] > self.height:
            return BAD
        full = self.pyramid.full
        if all(v == int(v) for v in box) and (box[2] - box[0], box[3] - box[1]) == out:
            return self.encode(full.crop(tuple(int(v) for v in box)))
        return self.encode(full.resize(out, LEVEL_FILTER, box=box))


# -------------------------------------------------------------------------------------- LizardTech
class LizardTechSite(_Site):
    """A LizardTech Express Server with one item; ``calcrgn`` XML and ``getimage`` windows."""

    def __init__(self, image: np.ndarray, *, catalog: str = "North America and United States",
                 item: str = "NorthAmerica/US1566a.sid", lossless: bool = True, origin: str | None = None,
                 declare_host: bool = True) -> None:
        super().__init__(image, lossless=lossless, origin=origin)
        self.catalog, self.item, self.declare_host = catalog, item, declare_host
        self.sizes = _halvings(self.width, self.height, 256)  # lev 0 first; stops at a side ≤ 256 after halving
        if len(self.sizes) > 1:
            self.sizes.pop()  # the JS loop stops before recording the level whose double fits 512

    def install(self, server: TileServer, prefix: str = "/lizardtech-site") -> str:
        self._mount(server, prefix)
        return self.calcrgn_url

    @property
    def calcrgn_url(self) -> str:
        return (f"{self.origin}/lizardtech/iserv/calcrgn?cat={quote(self.catalog)}&item={self.item}&wid=500&hei=400"
                "&props=item(Name,Description),cat(Name,Description)&style=default/view.xsl&plugin=true")

    def handle(self, path: str, query: dict[str, str]) -> Response:
        if query.get("cat") != self.catalog or query.get("item") != self.item:
            return NOT_FOUND
        if path == "/lizardtech/iserv/calcrgn":
            host = f' host="{urlsplit(self.origin).netloc}"' if self.declare_host else ""
            root = "" if self._origin else self.prefix  # on bare loopback the prefix is part of the path
            parent, _, name = self.item.rpartition("/")
            return _text(
                f'<?xml version="1.0"?>\n<?xml-stylesheet type="text/xsl" href="default/view.xsl"?>\n'
                f'<ImageServer{host} path="{root}/lizardtech/iserv/" version="9.5.0.4547">\n  <Request command="calcrgn">\n'
                f'    <Parameter name="cat">{self.catalog}</Parameter>\n    <Parameter name="item">{self.item}</Parameter>\n'
                f'  </Request>\n  <Response>\n    <Catalog name="{self.catalog}">\n      <Image width="{self.width}" '
                f'height="{self.height}" name="{name}" parent="{parent}" numlevels="{len(self.sizes)}" />\n'
                f"    </Catalog>\n  </Response>\n</ImageServer>\n")
        if path != "/lizardtech/iserv/getimage":
            return NOT_FOUND
        try:
            lev, wid, hei = int(query["lev"]), int(query["wid"]), int(query["hei"])
            cx, cy = (float(v) for v in query["cp"].split(","))
        except (KeyError, ValueError):
            return BAD
        if not 0 <= lev < len(self.sizes) or not (0 < wid <= 2048 and 0 < hei <= 2048):
            return BAD
        w, h = self.sizes[lev]
        square = 512 << (len(self.sizes) - 1 - lev)
        left = round(cx * w + (square - w) / 2 - wid / 2)
        top = round(cy * h + (square - h) / 2 - hei / 2)
        return self.encode(self.pyramid.level((w, h)).crop((left, top, left + wid, top + hei)))


# --------------------------------------------------------------------------------------------- VLS
class VlsSite(_Site):
    """A Visual Library Server page ``…/content/zoom/<page_id>`` and its ``/image/tiler/square`` tiles."""

    def __init__(self, image: np.ndarray, *, page_id: int = 4243948, ot_id: str = "4243948", zoom_tile: int = 512,
                 lossless: bool = True, origin: str | None = "https://www.e-rara.ch", well_formed: bool = True,
                 section: str = "/bau_1/ch17/content") -> None:
        super().__init__(image, lossless=lossless, origin=origin)
        self.page_id, self.ot_id, self.zoom_tile = page_id, ot_id, zoom_tile
        self.well_formed, self.section = well_formed, section

    def install(self, server: TileServer, prefix: str = "/vls-site") -> str:
        self._mount(server, prefix)
        return self.pageview_url

    @property
    def pageview_url(self) -> str:
        return f"{self.origin}{self.section}/pageview/{self.page_id}"

    @property
    def declared_height(self) -> int:
        """The height the dezoomer uses: the true one rounded up to a multiple of ``zoomTileSize``."""
        return _ceil_div(self.height, self.zoom_tile) * self.zoom_tile

    def zoom_page(self) -> str:
        ns = ' xmlns:vls="http://www.semantics.de/vls"' if self.well_formed else ""
        head = '<?xml version="1.0" encoding="utf-8"?>\n' if self.well_formed else "<!DOCTYPE html>\n"
        return (f'{head}<html xmlns="http://www.w3.org/1999/xhtml"{ns}><head><title>Zoom</title>'
                f'<var id="zoomTileSize" value="{self.zoom_tile}" /><var id="maxZoom" value="5" /></head><body>'
                f'<div id="map" vls:ot_id="{self.ot_id}" vls:width="{self.width}" vls:height="{self.height}" '
                f'vls:flip_rotate="0" vls:zoomsizes="256,512,1024,2048"></div></body></html>\n')

    def handle(self, path: str, query: dict[str, str]) -> Response:
        if path in (f"{self.section}/zoom/{self.page_id}", f"{self.section}/pageview/{self.page_id}"):
            return _text(self.zoom_page(), "application/xhtml+xml" if self.well_formed else "text/html")
        m = re.fullmatch(rf"/image/tiler/square/{re.escape(self.ot_id)}/0/(\d+)/(\d+)", path)
        if m is None:
            return NOT_FOUND
        col, row = int(m.group(1)), int(m.group(2))
        if col * 1024 >= self.width or row * 1024 >= self.height:
            return NOT_FOUND
        box = (col * 1024, row * 1024, min((col + 1) * 1024, self.width), min((row + 1) * 1024, self.height))
        return self.encode(self.pyramid.full.crop(box))


# ------------------------------------------------------------------------------------------ Micrio
class MicrioSite(_Site):
    """Micrio's legacy API: ``/api/getTilesInfo?object_id=…`` listing every 512 px tile of every level.

    Pages: ``/en/rijksstudio/<object>`` (``data-base-path`` + ``data-id``) and ``/set.html`` (a
    ``dataSourcePath`` + ``dataSourceQuery`` set, answered by ``/api/set?offset=N``).
    """

    objects = ("SK-A-1", "SK-C-5")

    def __init__(self, image: np.ndarray, *, lossless: bool = True, origin: str | None = None) -> None:
        super().__init__(image, lossless=lossless, origin=origin)
        self.sizes = _halvings(self.width, self.height, 512)

    def install(self, server: TileServer, prefix: str = "/micrio-site") -> str:
        self._mount(server, prefix)
        return self.tiles_info_url(self.objects[1])

    def tiles_info_url(self, obj: str) -> str:
        return f"{self.origin}/api/getTilesInfo?object_id={obj}"

    def tiles_info(self, obj: str) -> str:
        ext = "png" if self.pyramid.lossless else "jpg"
        levels = [{"name": f"z{k}", "width": w, "height": h,
                   "tiles": [{"x": x, "y": y, "url": f"{self.origin}/tiles/{obj}/{k}/{x}_{y}.{ext}"}
                             for y in range(_ceil_div(h, 512)) for x in range(_ceil_div(w, 512))]}
                  for k, (w, h) in enumerate(self.sizes)]
        return json.dumps({"levels": levels[::-1]})  # smallest first, as a stress on "pick the largest"

    def handle(self, path: str, query: dict[str, str]) -> Response:
        if path == "/api/getTilesInfo":
            if query.get("object_id") not in self.objects:
                return NOT_FOUND
            return _text(self.tiles_info(query["object_id"]), "application/json")
        if path.startswith("/en/rijksstudio/"):
            return _text(f'<html><body><div class="object-image" data-role="micrio" data-id="{self.objects[1]}" '
                         f'data-base-path="{self.origin}/api/getTilesInfo?object_id="></div></body></html>', "text/html")
        if path == "/set.html":
            return _text('<html><script>var viewer = new Viewer({dataSourcePath: "api/set", '
                         'dataSourceQuery: "?offset=0&count=1"});</script></html>', "text/html")
        if path == "/api/set":
            offset = int(query.get("offset", "0") or 0)
            items = [{"ObjectNumber": o, "TilingUrl": self.tiles_info_url(o)} for o in self.objects[offset:offset + 1]]
            return _text(json.dumps({"setItems": items}), "application/json")
        m = re.fullmatch(r"/tiles/([\w-]+)/(\d+)/(\d+)_(\d+)\.(png|jpg)", path)
        if m is None or m.group(1) not in self.objects or int(m.group(2)) >= len(self.sizes):
            return NOT_FOUND
        k, x, y = (int(v) for v in m.groups()[1:4])
        w, h = self.sizes[k]
        if x * 512 >= w or y * 512 >= h:
            return NOT_FOUND
        return self.encode(self.pyramid.level((w, h)).crop((x * 512, y * 512, min(x * 512 + 512, w), min(y * 512 + 512, h))))


# ------------------------------------------------------------------------------------------ Mnesys
class MnesysSite(_Site):
    """A naoned viewer: a two-page playlist (page 1 is the image mirrored), ``p.xml`` and ``{z}_{n}.jpg``."""

    pages = ("FRAD001_0001.jpg", "FRAD001_0002.jpg")
    medias = "/accounts/mnesys_ad01/datas/medias/FRAD001/"

    def __init__(self, image: np.ndarray, *, tile: int = 256, lossless: bool = True, origin: str | None = None) -> None:
        super().__init__(image, lossless=lossless, origin=origin)
        self.mirror = Pyramid(np.ascontiguousarray(np.asarray(image)[:, ::-1]), lossless=lossless)
        self.tile = tile
        self.sizes = _halvings(self.width, self.height, tile)[::-1]  # z = 0 (one tile) … N (full size)

    def install(self, server: TileServer, prefix: str = "/mnesys-site") -> str:
        self._mount(server, prefix)
        return self.viewer_url

    @property
    def playlist_url(self) -> str:
        return f"{self.origin}/accounts/mnesys_ad01/datas/playlists/FRAD001_1.xml"

    @property
    def viewer_url(self) -> str:
        return f"{self.origin}/?id=viewer&doc=accounts/mnesys_ad01/datas/ir/FRAD001.xml&page_ref=1"

    def p_xml_url(self, page: int) -> str:
        return f"{self.origin}{self.medias}{self.pages[page].replace('.', '_', 1)}_/p.xml"

    def page_image(self, page: int, z: int) -> np.ndarray:
        return (self.mirror if page else self.pyramid).level_array(self.sizes[z])

    def handle(self, path: str, query: dict[str, str]) -> Response:
        if path == "/" and query.get("id") == "viewer":
            return _text('<html><body><div id="naoned_viewer"></div><script>var flashVars = '
                         '"playlist=accounts/mnesys_ad01/datas/playlists/FRAD001_1.xml&cur_item=1&lang=fr";'
                         "</script></body></html>", "text/html")
        if path == "/accounts/mnesys_ad01/datas/playlists/FRAD001_1.xml":
            links = "".join(f"<a>{p}</a>" for p in self.pages)
            return _text(f'<?xml version="1.0" encoding="utf-8"?>\n<playlist host="{self.origin}/" '
                         f'basepath="{self.medias[1:]}">{links}</playlist>\n')
        for page, name in enumerate(self.pages):
            folder = f"{self.medias}{name.replace('.', '_', 1)}_/"
            if not path.startswith(folder):
                continue
            rest = path[len(folder):]
            if rest == "p.xml":
                layers = "".join(f'<layer z="{z}" w="{w}" h="{h}" t="{self.tile}" />' for z, (w, h) in enumerate(self.sizes))
                return _text(f"<?xml version='1.0' encoding='utf-8'?>\n<image>{layers}</image>\n")
            m = re.fullmatch(r"(\d+)_(\d+)\.jpg", rest)
            if m is None or int(m.group(1)) >= len(self.sizes):
                return NOT_FOUND
            z, n = int(m.group(1)), int(m.group(2))
            w, h = self.sizes[z]
            t, cols = self.tile, _ceil_div(w, self.tile)
            x, y = n % cols, n // cols
            if y * t >= h:
                return NOT_FOUND
            level = (self.mirror if page else self.pyramid).level((w, h))
            return self.encode(level.crop((x * t, y * t, min(x * t + t, w), min(y * t + t, h))))
        return NOT_FOUND
