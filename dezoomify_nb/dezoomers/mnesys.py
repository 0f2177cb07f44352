"""Mnesys (naoned viewer, French archives): playlist → ``…_jpg_/p.xml`` → ``{z}_{n}.jpg`` tiles.

Port of the web dezoomify's ``mnesys.js`` (reference ``more-formats.md`` §6).

* **Recognised** by a ``…/p.xml`` URL (the image itself), a ``…/datas/playlists/….xml`` playlist, or a
  page containing ``naoned_viewer`` or ``flashVars … playlist=….xml``.
* **Playlist**: ``<playlist host=… basepath=…>`` and one ``<a>`` per page; page ``FRAD001_0001.jpg`` is
  at ``host + basepath + FRAD001_0001_jpg_/p.xml`` (the first ``.`` becomes ``_``). The page is
  ``img_num=N`` from the URL (or ``cur_item`` from a viewer page's ``flashVars``). Without one, a playlist
  of several pages gives one image per page (a collection, like a IIIF manifest; the JS takes page 0).
* **p.xml**: ``<layer z w h t>`` elements, one per zoom level. Tile ``(x, y)`` of layer ``z`` is
  ``{z}_{x + y·ceil(w/t)}.jpg`` next to ``p.xml``. Every layer is offered as a level.

The tile prefix is the layer's ``z`` (equal to its index in real multi-layer files: dezoomify issue #360
shows a 3732×4397 image with 512 px tiles served as ``3_{n}.jpg``). The JS passes the best layer's
*index* through its engine, which for an index of 0 falls back to ``ceil(log2(max(W,H)/t))``: its
one-layer fixture (``z="0"``, 512 px, ``t=256``) asks for ``1_{n}.jpg``. That fallback is an artefact
of a falsy 0 in JavaScript, so a one-layer ``z="0"`` file gives ``0_{n}.jpg`` here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import MetadataError, WrongDezoomer
from ..model import MAX_LEVELS, MAX_SIDE, MAX_TILE_SIDE, Image, ImageRef, Level, url_stem
from ._common import local_name, parse_xml
from ._jsweb import folder_of, join_url, js_parse_int, line_has, page_text
from .base import Context, Dezoomer

NAME = "Mnesys"
#: at most this many pages of a playlist are listed
MAX_PAGES = 10_000
P_XML_RE = re.compile(r"/p\.xml(?:\?[^#]*)?\Z")
PLAYLIST_RE = re.compile(r"/datas/playlists/[^?#]*\.xml(?:\?[^#]*)?\Z")
_IMG_NUM_RE = re.compile(r"img_num=(\d{1,9})")
_FLASHVARS_RE = re.compile(r"""flashVars["= ,]+"([^"]+)\"""")
_FOLDER_TITLE_RE = re.compile(r"(.+)_[A-Za-z0-9]{1,5}_")
_HINT = ("Give the URL of the viewer page, of its playlist (…/datas/playlists/….xml) or of an image's p.xml "
         "(find '/p.xml' in the browser's network inspector).")


@dataclass(frozen=True)
class MnesysLevel(Level):
    """Layer ``z`` of an image whose ``p.xml`` is in ``folder``; tiles are numbered row-major."""

    folder: str = ""
    z: int = 0

    def tile_url(self, col: int, row: int) -> str:
        return f"{self.folder}{self.z}_{col + row * self.cols}.jpg"


def page_matches(text: str) -> bool:
    return "naoned_viewer" in text or line_has(text, "flashVars", "playlist=", ".xml")


def parse_layers(data: bytes, p_url: str) -> list[MnesysLevel]:
    """Every valid ``<layer>`` of a ``p.xml`` (the first of each ``z``), as levels."""
    root = parse_xml(data)
    if root is None:
        raise MetadataError(f"{p_url} is not a Mnesys p.xml (invalid XML)", hint=_HINT)
    folder = folder_of(p_url)
    levels: dict[int, MnesysLevel] = {}
    for el in root.iter():
        if local_name(el) != "layer":
            continue
        z, w, h, t = (js_parse_int(el.get(a)) for a in ("z", "w", "h", "t"))
        if z is None or w is None or h is None or t is None or z < 0 or z in levels:
            continue
        if not (0 < w <= MAX_SIDE and 0 < h <= MAX_SIDE and 0 < t <= MAX_TILE_SIDE):
            raise MetadataError(f"invalid Mnesys layer z={z}: {w}x{h} px, tiles of {t} px")
        levels[z] = MnesysLevel(w, h, t, t, name=NAME, folder=folder, z=z)
        if len(levels) > MAX_LEVELS:
            raise MetadataError(f"more than {MAX_LEVELS} layers in {p_url}")
    if not levels:
        raise MetadataError(f"No layer in image {p_url}", hint=_HINT)
    return list(levels.values())


def title_of_folder(p_url: str) -> str | None:
    """``…/FRAD001_0001_jpg_/p.xml`` → ``FRAD001_0001``."""
    folder = folder_of(p_url).rstrip("/").rsplit("/", 1)[-1]
    m = _FOLDER_TITLE_RE.fullmatch(folder)
    return m.group(1) if m else (folder or None)


def p_xml_of(page: str) -> str:
    """The p.xml path of a playlist page name: the first ``.`` becomes ``_``, then ``_/p.xml``."""
    return page.replace(".", "_", 1) + "_/p.xml"


def parse_playlist(data: bytes, url: str) -> tuple[str, list[str]]:
    """``(host + basepath, page names)`` of a playlist."""
    root = parse_xml(data)
    playlist = None if root is None else next((e for e in root.iter() if local_name(e) == "playlist"), None)
    if playlist is None:
        raise MetadataError(f"Invalid mnesys playlist: {url}", hint=_HINT)
    base = (playlist.get("host") or "") + (playlist.get("basepath") or "")
    pages = []
    for el in playlist.iter():
        if local_name(el) == "a" and el is not playlist:
            pages.append("".join(el.itertext()).strip())
            if len(pages) >= MAX_PAGES:
                break
    if not pages:
        raise MetadataError(f"the mnesys playlist {url} lists no page", hint=_HINT)
    return base, pages


class MnesysDezoomer(Dezoomer):
    name = "mnesys"
    description = "Mnesys viewer by naoned (…/p.xml, …/datas/playlists/….xml, or the viewer page)"

    def images(self, ctx: Context) -> list[Image | ImageRef]:
        url = ctx.url
        num = _IMG_NUM_RE.search(url)
        page_num = int(num.group(1)) if num else None
        if P_XML_RE.search(url):
            return [self.image(ctx, url)]
        if PLAYLIST_RE.search(url):
            return self.playlist(ctx, url, url, page_num)
        if "{{" in url:
            raise WrongDezoomer("a URL template, not a Mnesys page")
        text = page_text(ctx.get())
        if not page_matches(text):
            raise WrongDezoomer("no Mnesys viewer (naoned_viewer, flashVars playlist=….xml) in the page")
        m = _FLASHVARS_RE.search(text)
        if m is None:
            raise MetadataError("Unable to find a mnesys viewer information file (flashVars)", hint=_HINT)
        flash_vars = dict(part.partition("=")[::2] for part in m.group(1).split("&"))
        if flash_vars.get("cur_item"):
            page_num = js_parse_int(flash_vars["cur_item"])
        if not flash_vars.get("playlist"):
            raise MetadataError("the Mnesys viewer's flashVars name no playlist", hint=_HINT)
        return self.playlist(ctx, join_url(url, flash_vars["playlist"], "Mnesys playlist"), url, page_num)

    def image(self, ctx: Context, p_url: str, title: str | None = None) -> Image:
        levels = parse_layers(ctx.get(p_url), p_url)
        return Image(levels=tuple(levels), title=title or title_of_folder(p_url), dezoomer=self.name, url=p_url)

    def playlist(self, ctx: Context, url: str, input_url: str, page_num: int | None) -> list[Image | ImageRef]:
        base, pages = parse_playlist(ctx.get(url), url)
        # as in the JS, the p.xml path is resolved against the input URL (the playlist, or the viewer page)
        targets = [(join_url(input_url, base + p_xml_of(p), "Mnesys p.xml URL"), url_stem(p) or None) for p in pages]
        if page_num is not None:
            if not 0 <= page_num < len(targets):
                raise MetadataError(f"page {page_num} asked (img_num/cur_item), but the playlist has {len(targets)} "
                                    f"page(s), numbered from 0", hint="Ask for a page that exists.")
            return [self.image(ctx, *targets[page_num])]
        if len(targets) == 1:
            return [self.image(ctx, *targets[0])]
        return [ImageRef(p_url, title, dezoomer=self.name, found_by=self.name) for p_url, title in targets]
