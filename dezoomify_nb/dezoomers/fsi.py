"""FSI Server (Neptune Labs): ``…/server?type=info&source=IMG`` → size → ``type=image&rect=…`` tiles.

Port of the web dezoomify's ``fsi.js`` (reference ``more-formats.md`` §2).

* **Recognised** by the URL ``…server?…`` carrying ``type=`` / ``image=`` twice (the JS rule), or — an
  addition — ``type=`` and ``source=`` (an image request copied from the browser, e.g.
  ``server?type=image&source=images/a.tif&width=400``); else by a page containing such a URL or an
  ``<fsi-viewer`` element.
* **Metadata URL**: everything from ``server?`` replaced by ``server?type=info&source=SRC`` (``SRC`` kept
  URL-encoded as written). A page is searched for the first ``…/server…source=…`` token.
* **Info reply**: only ``width value="N"`` and ``height value="N"`` are read (case-insensitive).
* **Tiles**: 512 px; tile ``(x, y)`` of a ``w × h`` level is
  ``…/server?type=image&source=SRC&width=TW&height=TH&rect=X/w,Y/h,TW/w,TH/h`` (fractions printed as JS
  numbers). The JS has one level, the full size; the server renders any rectangle at any size, so here
  smaller levels (each side halved, rounded up, down to one tile) are offered too — level 0 is the JS's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from ..errors import MetadataError, WrongDezoomer
from ..model import MAX_LEVELS, Image, Level, ceil_div, url_stem
from ._jsweb import join_url, js_number, page_text, tokens_with
from .base import Context, Dezoomer

NAME = "FSI"
TILE = 512
_SERVER = "server?"
_KEYWORD_RE = re.compile(r"type=|image=")
_WIDTH_RE = re.compile(r"width\s+value=[\"']?(\d+)", re.I)
_HEIGHT_RE = re.compile(r"height\s+value=[\"']?(\d+)", re.I)
_NO_URL_HINT = ("Open the image in its viewer, find a request to '…/server?type=image&source=…' in the browser's "
                "network inspector and give that URL.")


@dataclass(frozen=True)
class FsiLevel(Level):
    """One size of an FSI image: every tile is a ``rect`` of the image rendered at this level's scale."""

    origin: str = ""  # …/server
    source: str = ""  # the source parameter, URL-encoded as found

    def tile_url(self, col: int, row: int) -> str:
        x, y, tw, th = self.tile_box(col, row)
        w, h = self.width, self.height
        rect = ",".join(js_number(v) for v in (x / w, y / h, tw / w, th / h))
        return f"{self.origin}?type=image&source={self.source}&width={tw}&height={th}&rect={rect}"


def url_matches(url: str) -> bool:
    """The JS rule (``server?`` then ``type=``/``image=`` twice), or ``server?`` with type= and source=."""
    i = url.find(_SERVER)
    if i < 0:
        return False
    rest = url[i + len(_SERVER):]
    if len(_KEYWORD_RE.findall(rest)) >= 2:
        return True
    return ("?type=" in url[i:] or "&type=" in rest) and ("&source=" in rest or "?source=" in url[i:])


def info_url(url: str) -> str | None:
    """The ``type=info`` request for a URL carrying ``server?…source=SRC``; None without one."""
    i = url.find(_SERVER)
    if i < 0:
        return None
    tail = url[i:]
    at = max(tail.rfind("?source="), tail.rfind("&source="))
    if at < 0:
        return None
    src = re.split(r"[&#]", tail[at + len("&source="):], maxsplit=1)[0]
    if not src:
        return None
    return f"{url[:i]}{_SERVER}type=info&source={src}"


def page_matches(text: str) -> bool:
    """The JS contents rules: a ``server?`` URL as in :func:`url_matches`, or an ``<fsi-viewer`` element."""
    if "<fsi-viewer" in text:
        return True
    return any(url_matches(token) for token in tokens_with(text, _SERVER, limit=200))


def info_url_in_page(text: str, page_url: str) -> str | None:
    """The metadata URL from the first ``…/server…source=…`` token of a page (resolved against it)."""
    for token in tokens_with(text, "/server"):
        found = info_url(token)
        if found is not None:
            return join_url(page_url, found, "FSI server URL")
    return None


def parse_info(data: bytes) -> tuple[int, int]:
    """``(width, height)`` from an FSI ``type=info`` reply."""
    text = data[:1 << 20].decode("utf-8", "replace")
    w, h = _WIDTH_RE.search(text), _HEIGHT_RE.search(text)
    if w is None or h is None:
        raise MetadataError("the FSI info reply gives no 'width value' and 'height value'",
                            hint="The URL does not seem to point to an FSI server image (type=info request).")
    if len(w.group(1)) > 12 or len(h.group(1)) > 12:
        raise MetadataError("absurd image size in the FSI info reply")
    return int(w.group(1)), int(h.group(1))


def build_levels(meta_url: str, width: int, height: int) -> list[FsiLevel]:
    """Full size first, then each side halved (rounded up) until the level fits one tile."""
    origin = re.sub(r"/server\?.*", "/server", meta_url, count=1, flags=re.S)
    m = re.search(r"source=([^&#]+)", meta_url)
    if m is None or not origin.endswith("/server"):
        raise MetadataError(f"not an FSI server URL: {meta_url}", hint=_NO_URL_HINT)
    levels = [FsiLevel(width, height, TILE, TILE, name=NAME, origin=origin, source=m.group(1))]
    k = 1
    while max(levels[-1].size) > TILE and k < MAX_LEVELS:
        w, h = ceil_div(width, 1 << k), ceil_div(height, 1 << k)
        levels.append(FsiLevel(w, h, TILE, TILE, name=NAME, origin=origin, source=m.group(1)))
        k += 1
    return levels


def title_of(meta_url: str) -> str | None:
    m = re.search(r"source=([^&#]+)", meta_url)
    return (url_stem(unquote(m.group(1))) or None) if m else None


class FsiDezoomer(Dezoomer):
    name = "fsi"
    description = "FSI Server by Neptune Labs (…/server?type=info&source=image.tif, or a page with an FSI viewer)"

    def images(self, ctx: Context) -> list[Image]:
        url = ctx.url
        meta = info_url(url) if url_matches(url) else None
        if meta is None:
            if "{{" in url:
                raise WrongDezoomer("a URL template, not an FSI server URL")
            text = page_text(ctx.get())
            if not (url_matches(url) or page_matches(text)):
                raise WrongDezoomer("no FSI server URL or <fsi-viewer> in the page")
            meta = info_url_in_page(text, url)
            if meta is None:
                raise MetadataError("No FSI URL found.", hint=_NO_URL_HINT)
        width, height = parse_info(ctx.get(meta))
        levels = build_levels(meta, width, height)
        return [Image(levels=tuple(levels), title=title_of(meta), dezoomer=self.name, url=meta)]
