"""LizardTech Express Server (MrSID ImageServer): ``…/lizardtech/iserv/calcrgn?…`` → ``getimage`` tiles.

Port of the web dezoomify's ``lizardtech.js`` (reference ``more-formats.md`` §3). The input is the
``calcrgn`` URL itself; its XML gives ``ImageServer@host/@path``, ``Catalog@name``, ``Image@width,
height, name, parent`` and the request's ``<Parameter name="cat|item">``.

Levels: server level ``lev = 0`` is the full size; each next one halves both sides (rounded up) while
twice its largest side exceeds 512. Walking them from the coarsest, with a square ``size`` of 512
doubling at each level, each gets ``dx = (size − w)/(2w)``, ``dy = (size − h)/(2h)``. A 512 px tile whose
box in the level is ``(x, y, tw, th)`` is
``…/getimage?cat=C&item=I&wid=TW&hei=TH&oif=jpeg&lev=L&cp=CX,CY`` with the centre
``CX = (x + tw/2)/w − dx`` (likewise ``CY``), in "resolution independent" coordinates, numbers printed
the JavaScript way.

Deviations from the JS (which only ever uses ``lev = 0``): every level is offered; tiles on the right and
bottom edges ask for exactly the pixels that remain (``wid``/``hei`` < 512, centred on them) instead of
a full 512 px window reaching past the image. Full tiles get exactly the JS URLs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from lxml import etree

from ..errors import MetadataError, WrongDezoomer
from ..model import MAX_LEVELS, MAX_SIDE, Image, Level, ceil_div, is_url, url_stem
from ._common import local_name, parse_xml
from ._jsweb import encode_uri_component, js_number, js_parse_int
from .base import Context, Dezoomer

NAME = "LizardTech ImageServer"
TILE = 512
URL_RE = re.compile(r"/lizardtech/iserv/calcrgn\?", re.I)
_HOST_RE = re.compile(r"(?:[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?")
_PATH_RE = re.compile(r"[A-Za-z0-9._~%!$&'()*+,;=:@/-]+")
_HINT = "Give the '…/lizardtech/iserv/calcrgn?cat=…&item=…' URL the server's own viewer uses."


@dataclass(frozen=True)
class LizardTechLevel(Level):
    """Server level ``lev`` of an item; ``dx``/``dy`` are the JS centre corrections of that level."""

    base: str = ""  # …/getimage?cat=…&item=…
    lev: int = 0
    dx: float = 0.0
    dy: float = 0.0

    def tile_url(self, col: int, row: int) -> str:
        x, y, tw, th = self.tile_box(col, row)
        cx = (x + tw / 2) / self.width - self.dx
        cy = (y + th / 2) / self.height - self.dy
        return f"{self.base}&wid={tw}&hei={th}&oif=jpeg&lev={self.lev}&cp={js_number(cx)},{js_number(cy)}"


def level_geometry(width: int, height: int) -> list[tuple[int, int, int, float, float]]:
    """``(w, h, lev, dx, dy)`` of every server level, finest (lev 0) first, as the JS computes them."""
    sizes: list[tuple[int, int]] = []
    w, h = width, height
    while True:
        sizes.append((w, h))
        w, h = ceil_div(w, 2), ceil_div(h, 2)
        if 2 * max(w, h) <= TILE or len(sizes) >= MAX_LEVELS:
            break
    out = []
    n = len(sizes)
    for lev, (w, h) in enumerate(sizes):
        size = TILE << (n - 1 - lev)  # 512 for the coarsest, doubling towards the finest
        out.append((w, h, lev, (size - w) / (2 * w), (size - h) / (2 * h)))
    return out


def _first(root: etree._Element, tag: str) -> etree._Element | None:
    return next((el for el in root.iter() if local_name(el) == tag), None)


def _parameter(root: etree._Element, name: str) -> str:
    for el in root.iter():
        if local_name(el) == "Parameter" and el.get("name") == name:
            return "".join(el.itertext())
    return ""


@dataclass(frozen=True)
class ServerInfo:
    origin: str  # scheme://host/path/calcrgn
    catalog: str
    item: str
    width: int
    height: int
    name: str


def parse_calcrgn(data: bytes, url: str) -> ServerInfo:
    """What the tiles need, from the ``calcrgn`` XML reply fetched from ``url``."""
    root = parse_xml(data)
    if root is None:
        raise MetadataError(f"Invalid LizardTech ImageServer XML: {url}", hint=_HINT)
    server, catalog, image = _first(root, "ImageServer"), _first(root, "Catalog"), _first(root, "Image")
    if server is None or catalog is None or image is None:
        raise MetadataError(f"Invalid LizardTech ImageServer XML (no ImageServer, Catalog or Image): {url}",
                            hint=_HINT)
    width, height = js_parse_int(image.get("width")), js_parse_int(image.get("height"))
    if not width or not height or width < 0 or height < 0:
        raise MetadataError(f"Missing LizardTech image dimensions: {url}", hint=_HINT)
    parts = urlsplit(url)
    host = server.get("host") or parts.netloc
    path = re.sub(r"^/|/$", "", server.get("path") or "lizardtech/iserv")
    if not _HOST_RE.fullmatch(host) or not _PATH_RE.fullmatch(path) or "/../" in f"/{path}/":
        raise MetadataError(f"invalid ImageServer host {host!r} or path {path!r} in {url}")
    item = _parameter(root, "item")
    if not item:
        name, parent = image.get("name"), image.get("parent")
        if not name:
            raise MetadataError(f"the LizardTech reply names no item: {url}", hint=_HINT)
        item = f"{parent}/{name}" if parent else name
    return ServerInfo(
        origin=f"{parts.scheme}://{host}/{path}/calcrgn",
        catalog=catalog.get("name") or _parameter(root, "cat"),
        item=item, width=width, height=height, name=image.get("name") or item,
    )


def build_levels(info: ServerInfo) -> list[LizardTechLevel]:
    base = (f"{info.origin[: -len('/calcrgn')]}/getimage?cat={encode_uri_component(info.catalog)}"
            f"&item={encode_uri_component(info.item)}")
    return [LizardTechLevel(w, h, TILE, TILE, name=NAME, base=base, lev=lev, dx=dx, dy=dy)
            for w, h, lev, dx, dy in level_geometry(info.width, info.height)]


class LizardTechDezoomer(Dezoomer):
    name = "lizardtech"
    description = "LizardTech Express Server / MrSID ImageServer (…/lizardtech/iserv/calcrgn?cat=…&item=…)"

    def images(self, ctx: Context) -> list[Image]:
        url = ctx.url
        if not URL_RE.search(url) or not is_url(url):
            raise WrongDezoomer("not a …/lizardtech/iserv/calcrgn? URL")
        info = parse_calcrgn(ctx.get(url), url)
        if info.width > MAX_SIDE or info.height > MAX_SIDE:
            raise MetadataError(f"invalid LizardTech image size {info.width}x{info.height}")
        levels = build_levels(info)
        return [Image(levels=tuple(levels), title=url_stem(info.name) or None, dezoomer=self.name, url=url)]
