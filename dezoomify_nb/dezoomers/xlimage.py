"""XLimage (Centrica; kbr.be, uffizi): ``<image>.imgi?cmd=info`` XML → ``?cmd=tile&x=…&y=…&z=1`` tiles.

Inputs: the info URL (``….imgi?cmd=info``, ``….imgf?cmd=info``: the JS rule ``\\.img.\\?cmd=info``), or a
kbr.be viewer ``…kbr.be/multi/<id>Viewer…``, whose page ``N`` (``#page=N`` or ``page=N`` in the query,
1-based, default 1; the JS asks with a prompt) has the info URL
``/multi/<id>Viewer/xml.php?/multi/<id>/<NNN>.imgi?cmd=info`` (``NNN`` = ``N`` on 3 digits).

The info XML has ``<width>``, ``<height>`` and ``<tileside>``. Tiles are the info URL without its
``?cmd=info…`` plus ``?cmd=tile&x={x}&y={y}&z=1``; ``z=1`` is the full resolution, the only level the JS
reads (the server's other ``z`` values are not documented, so they are not offered).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..errors import MetadataError, WrongDezoomer
from ..model import MAX_SIDE, MAX_TILE_SIDE, Image, Level, url_stem
from ._common import local_name, parse_xml
from .base import Context, Dezoomer

NAME = "xlimage"
_INFO_RE = re.compile(r"\.img.\?cmd=info", re.I)
_KBR_RE = re.compile(r"kbr\.be/multi/([\w-]+)Viewer", re.I)
_PAGE_RE = re.compile(r"(?:^|[?&#])page=(\d{1,6})(?:$|[&#])", re.I)
_NUMBER_RE = re.compile(r"\s*\+?(\d{1,12})")
_HINT = "Give the XLimage info URL seen in the browser's network tab (…/image.imgi?cmd=info)."


@dataclass(frozen=True)
class XLimageLevel(Level):
    """The full resolution (``z=1``) of the image at ``origin`` (the info URL without ``?cmd=info``)."""

    origin: str = ""

    def tile_url(self, col: int, row: int) -> str:
        return f"{self.origin}?cmd=tile&x={col}&y={row}&z=1"


def info_url(url: str) -> str:
    """The info URL for ``url`` (a kbr.be viewer page gives page ``N``'s)."""
    if _INFO_RE.search(url):
        return url
    m = _KBR_RE.search(url)
    if m is None:
        raise WrongDezoomer("not an XLimage ….img?cmd=info URL or a kbr.be viewer")
    ident = m.group(1)
    page = _PAGE_RE.search(url[url.find(m.group(0)) + len(m.group(0)):])
    number = int(page.group(1)) if page else 1
    if not 1 <= number <= 999:
        raise MetadataError(f"invalid kbr.be page number {number}", hint="Use #page=1 for the first page.")
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/multi/{ident}Viewer/xml.php?/multi/{ident}/{number:03d}.imgi?cmd=info"


def parse_info(data: bytes) -> tuple[int, int, int]:
    """``(width, height, tileside)`` of an info document (the first element of each name)."""
    root = parse_xml(data)
    if root is None:
        raise MetadataError("the XLimage info is not XML", hint=_HINT)
    found: dict[str, int] = {}
    for el in root.iter():
        name = local_name(el).lower()
        if name in ("width", "height", "tileside") and name not in found:
            m = _NUMBER_RE.match(el.text or "")  # parseInt: leading digits
            if m is None:
                raise MetadataError(f"invalid <{name}> {el.text!r} in the XLimage info", hint=_HINT)
            found[name] = int(m.group(1))
    for name in ("width", "height", "tileside"):
        if name not in found:
            raise MetadataError(f"the XLimage info has no <{name}>", hint=_HINT)
    w, h, ts = found["width"], found["height"], found["tileside"]
    if not (0 < w <= MAX_SIDE and 0 < h <= MAX_SIDE and 0 < ts <= MAX_TILE_SIDE):
        raise MetadataError(f"invalid XLimage geometry: {w}x{h}, tiles of {ts} px", hint=_HINT)
    return w, h, ts


class XLimageDezoomer(Dezoomer):
    name = NAME
    description = "XLimage (….imgi?cmd=info, kbr.be viewers)"

    def images(self, ctx: Context) -> list[Image]:
        url = info_url(ctx.url)
        width, height, tile = parse_info(ctx.get(url))
        origin = re.sub(r"\?cmd=info.*$", "", url, flags=re.I | re.S)
        level = XLimageLevel(width, height, tile, tile, name="XLimage", origin=origin)
        return [Image(levels=(level,), title=url_stem(origin.rsplit("?", 1)[-1]) or None, dezoomer=NAME, url=url)]
