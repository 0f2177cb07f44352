"""pnav (catalog.shm.ru, collection.pushkinmuseum.art, collection.ethnomuseum.ru): crops of a resizing server.

Input: an object page ``https://host/entity/OBJECT/<id>``. Its ``og:image`` (``IMG?w=1000&h=1000``) gives the
image URL ``IMG``; ``IMG`` with ``.jpg`` replaced by ``.json`` gives ``{"width": W0, "height": H0}``, the
*crop space*; the server answers ``IMG?w=&h=&cl=&ct=&cw=&ch=`` with the crop ``(cl, ct, cw, ch)`` of that
space scaled to fit the ``w`` × ``h`` box (never past its native resolution). A probe tile
``IMG?w=2000&h=2000&cl=0&ct=0&cw=512&ch=512`` is fetched while opening; its pixel size ``tw × th`` gives
the scale ``r = tw / 512`` between crop space and delivered pixels (reference §11).

Tiles are the 512-unit crops: ``wStep = W0 // 512``, ``wMod = W0 % 512`` (same for the height); the
image is ``round(tw·wStep + wMod·r)`` × ``round(th·hStep + hMod·r)`` pixels in ``tw`` × ``th`` tiles. Every
tile asks for a 2000 × 2000 box except the bottom-right one, which asks for
``ceil(wMod·r)`` × ``ceil(hMod·r)`` (a smaller crop would otherwise be scaled up to fill the box).
Columns or rows of width 0 are not requested.

Differences from the JS: HTML entities in the page are decoded and the ``og:image`` query may be any
(``&amp;`` or other sizes); an image narrower or shorter than 512 crop units (the probe is then not
square) takes its scale from the side that is complete.
"""

from __future__ import annotations

import html
import math
import re
import warnings
from dataclasses import dataclass

from PIL import Image as PILImage

from .. import imageformats
from ..errors import MetadataError, WrongDezoomer
from ..model import MAX_SIDE, Image, Level, resolve_relative
from ._common import load_json, to_int
from .base import Context, Dezoomer

NAME = "pnav"
CROP = 512
BOX = 2000
_URL_RE = re.compile(r"/entity/OBJECT/\d+")
_META_RE = re.compile(r"<meta\b[^>]*>", re.I)
_PROPERTY_RE = re.compile(r"""\bproperty\s*=\s*["']og:image["']""", re.I)
_CONTENT_RE = re.compile(r"""\bcontent\s*=\s*["']([^"']+)["']""", re.I)
_OG_TITLE_RE = re.compile(r"""<meta\b[^>]*\bproperty\s*=\s*["']og:title["'][^>]*\bcontent\s*=\s*["']([^"']{1,300})["']""",
                          re.I)
_JPEG_RE = re.compile(r"\.jpe?g$", re.I)
_HINT = "Give the object page URL, e.g. https://catalog.shm.ru/entity/OBJECT/2117418"


@dataclass(frozen=True)
class PnavLevel(Level):
    """The one level: 512-unit crops of the ``w0`` × ``h0`` crop space of ``image``."""

    image: str = ""
    w0: int = 0
    h0: int = 0
    last_box: tuple[int, int] = (BOX, BOX)

    def tile_url(self, col: int, row: int) -> str:
        w_step, h_step = self.w0 // CROP, self.h0 // CROP
        cw = self.w0 % CROP if col == w_step else CROP
        ch = self.h0 % CROP if row == h_step else CROP
        w, h = self.last_box if (col, row) == (w_step, h_step) else (BOX, BOX)
        return f"{self.image}?w={w}&h={h}&cl={col * CROP}&ct={row * CROP}&cw={cw}&ch={ch}"


def og_image(page_url: str, text: str) -> str:
    """``IMG``: the page's ``og:image`` without its query, resolved against the page."""
    for tag in _META_RE.findall(text):
        if _PROPERTY_RE.search(tag):
            content = _CONTENT_RE.search(tag)
            if content and content.group(1).strip():
                return resolve_relative(page_url, content.group(1).strip().split("?", 1)[0])
    raise MetadataError("no og:image in the pnav object page", hint=_HINT)


def probe_url(image: str) -> str:
    return f"{image}?w={BOX}&h={BOX}&cl=0&ct=0&cw={CROP}&ch={CROP}"


def probe_size(data: bytes) -> tuple[int, int]:
    """Pixel size of the probe tile (its header only is read)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PILImage.DecompressionBombWarning)
            with imageformats.open_image(data) as im:
                w, h = im.size
    except Exception as exc:
        raise MetadataError(f"the pnav probe tile is not an image ({exc})", hint="The server did not answer the crop "
                            "request with an image; check the page in a browser.") from None
    if not (0 < w <= 4 * BOX and 0 < h <= 4 * BOX):
        raise MetadataError(f"the pnav probe tile has an unreasonable size {w}x{h}")
    return w, h


def build_level(image: str, w0: int, h0: int, tw: int, th: int) -> PnavLevel:
    """The level for crop space ``w0`` × ``h0`` and a probe tile of ``tw`` × ``th`` pixels."""
    if w0 >= CROP:
        r = tw / CROP
    elif h0 >= CROP:
        r = th / CROP
    else:
        r = tw / w0
    tile_w = tw if w0 >= CROP else max(1, round(CROP * r))
    tile_h = th if h0 >= CROP else max(1, round(CROP * r))
    w_step, w_mod, h_step, h_mod = w0 // CROP, w0 % CROP, h0 // CROP, h0 % CROP
    width = round(tile_w * w_step + w_mod * r)
    height = round(tile_h * h_step + h_mod * r)
    if width <= 0 or height <= 0:
        raise MetadataError(f"the pnav image would be {width}x{height} pixels")
    last = (math.ceil(w_mod * r or CROP * r), math.ceil(h_mod * r or CROP * r))
    return PnavLevel(width, height, tile_w, tile_h, name="pnav", image=image, w0=w0, h0=h0, last_box=last)


class PnavDezoomer(Dezoomer):
    name = NAME
    description = "pnav object pages (…/entity/OBJECT/<id>: shm.ru, pushkinmuseum.art, ethnomuseum.ru)"

    def images(self, ctx: Context) -> list[Image]:
        if not _URL_RE.search(ctx.url):
            raise WrongDezoomer("not a pnav …/entity/OBJECT/<id> page")
        text = html.unescape(ctx.get(ctx.url).decode("utf-8", "replace"))
        image = og_image(ctx.url, text)
        if not _JPEG_RE.search(image):
            raise MetadataError(f"the og:image {image!r} is not a .jpg: no pnav size document next to it", hint=_HINT)
        json_url = _JPEG_RE.sub(".json", image)
        ctx.prefetch([json_url, probe_url(image)])
        doc = load_json(ctx.get(json_url))
        if not isinstance(doc, dict):
            raise MetadataError(f"{json_url} is not a JSON object with a width and a height", hint=_HINT)
        w0, h0 = to_int(doc.get("width"), "width"), to_int(doc.get("height"), "height")
        if not (0 < w0 <= MAX_SIDE and 0 < h0 <= MAX_SIDE):
            raise MetadataError(f"invalid pnav image size {w0}x{h0}")
        tw, th = probe_size(ctx.get(probe_url(image)))
        level = build_level(image, w0, h0, tw, th)
        title_m = _OG_TITLE_RE.search(text)
        title = " ".join(title_m.group(1).split()) if title_m else None
        return [Image(levels=(level,), title=title, dezoomer=NAME, url=ctx.url)]
