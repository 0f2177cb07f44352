"""TopViewer / Memorix (Picturae; Dutch archives): a ``topviewjson`` document → numbered tiles.

Inputs: the metadata URL (``https://images.memorix.nl/<server>/topviewjson/memorix/<uuid>``, also
``…/topviewjson/beeldbank/<uuid>?checkIfTiled=1`` and arch.be's ``…/topview.json.php?FIF=…``), or a page
(any URL containing ``memorix``, ``rhcrijnstreek.nl`` or ``topview.json``, or any page whose text has a
Memorix thumbnail or a ``"topviews":`` key). From a page, as the JS: a thumbnail
``images.memorix.nl/<server>/thumb/<size>/<image>.jpg`` gives
``https://images.memorix.nl/<server>/topviewjson/memorix/<image>`` (``images.rkd.nl`` for ``rkd``), else
``server: "<url>"`` is followed, else the page must itself be the JSON.

The JSON has ``topviews[0]`` (``filepath``, ``width``, ``height``, ``tileWidth``, ``tileHeight``,
``layers[]`` of ``{no, starttile, cols, rows, width, height, scalefactor}``) and ``config.tileurl_v2``, a
template with ``{file}``, ``{tile}`` and ``{extension}`` (``jpg``), resolved against the metadata URL (arch.be
serves it root-relative). All the layers share one tile numbering: tile ``(x, y)`` of a layer is number
``starttile + x + y·cols``.

Better than the JS, which downloads the widest layer only: every layer that declares its size is a level
(the widest one has the image's ``width`` × ``height``); the metadata URL uses https for images.memorix.nl
(the JS writes http).
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from typing import Any

from ..errors import MetadataError, WrongDezoomer
from ..model import MAX_LEVELS, MAX_SIDE, MAX_TILE_SIDE, Image, Level, ceil_div, resolve_relative
from ._common import load_json
from .base import Context, Dezoomer

NAME = "topviewer"
MAX_LAYERS = 256

_URL_RE = re.compile(r"memorix|rhcrijnstreek\.nl|topview\.?json", re.I)
_META_URL_RE = re.compile(r"memorix\.nl/.+/topviewjson/memorix", re.I)
_THUMB_RE = re.compile(
    rb"(?:images\.memorix|afbeeldingen\.gahetna|images\.rkd)\.nl/([^/\s\"'<>]{1,100}?)/thumb/"
    rb"(?:image(?:bank)?-)?(?:[0-9x]{0,20}?(?:crop)?|detailresult|gallery_thumb|mediabank-(?:detail|horizontal))/"
    rb"([^\s\"'<>]{1,200}?)\.jpg"
)
_TOPVIEWS_RE = re.compile(rb'"topviews"\s*:')
_SERVER_RE = re.compile(r"""["']?server["']?\s*:\s*(["'][^"']+["'])""")
_SKIP_RE = re.compile(r"\{\{|\.(?:jpe?g|png|gif|webp|tiff?|bmp|avif)(?:[?#].*)?$", re.I)
_HINT = ("Give the topviewjson URL seen in the browser's network tab "
         "(https://images.memorix.nl/<server>/topviewjson/memorix/<uuid>), or the archive page showing the image.")


@dataclass(frozen=True)
class TopViewerLevel(Level):
    """One layer: tile ``(x, y)`` is ``template`` with ``{tile}`` = ``starttile + x + y·stride``."""

    template: str = ""
    starttile: int = 0
    stride: int = 1

    def tile_url(self, col: int, row: int) -> str:
        return self.template.replace("{tile}", str(self.starttile + col + row * self.stride))


def thumbnail_metadata_url(server: str, image: str) -> str:
    if server == "rkd":
        return f"https://images.rkd.nl/rkd/topviewjson/memorix/{image}"
    return f"https://images.memorix.nl/{server}/topviewjson/memorix/{image}"


def find_metadata_url(page_url: str, data: bytes) -> str:
    """Where a page's TopViewer metadata is (the page itself when nothing points elsewhere)."""
    thumb = _THUMB_RE.search(data)
    if thumb is not None:
        server, image = (g.decode("utf-8", "replace") for g in thumb.groups())
        return thumbnail_metadata_url(server, image)
    server = _SERVER_RE.search(html.unescape(data.decode("utf-8", "replace")))
    if server is not None:
        raw = server.group(1)
        try:
            target = json.loads(raw) if raw.startswith('"') else raw[1:-1]
        except ValueError:
            target = raw[1:-1]
        if isinstance(target, str) and target.strip():
            return resolve_relative(page_url, target.strip())
    return page_url


def _int(obj: dict[str, Any], key: str, low: int, high: int) -> int | None:
    v = obj.get(key)
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, str) and v.strip().isdigit():
        v = int(v.strip())
    if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high:
        return None
    return v


def parse_topview(meta_url: str, data: bytes) -> Image:
    doc = load_json(data)
    if not isinstance(doc, dict) or "topviews" not in doc:
        raise WrongDezoomer("not a TopViewer document (no topviews)")
    views, config = doc.get("topviews"), doc.get("config")
    if not isinstance(views, list) or not views or not isinstance(views[0], dict) or not isinstance(config, dict):
        raise MetadataError("Invalid Topviewer file: topviews[0] or config is missing", hint=_HINT)
    view: dict[str, Any] = views[0]
    template = config.get("tileurl_v2")
    if not isinstance(template, str) or "{tile}" not in template:
        raise MetadataError("Invalid Topviewer file: config.tileurl_v2 has no {tile}", hint=_HINT)
    width, height = _int(view, "width", 1, MAX_SIDE), _int(view, "height", 1, MAX_SIDE)
    tw = _int(view, "tileWidth", 1, MAX_TILE_SIDE)
    th = _int(view, "tileHeight", 1, MAX_TILE_SIDE) or tw
    if width is None or height is None or tw is None or th is None:
        raise MetadataError("Invalid Topviewer file: topviews[0] needs a width, height and tileWidth", hint=_HINT)
    layers = view.get("layers")
    if not isinstance(layers, list) or not layers:
        raise MetadataError("Invalid Topviewer file: topviews[0] has no layers", hint=_HINT)
    filepath = view.get("filepath")
    filepath = filepath if isinstance(filepath, str) else ""
    template = resolve_relative(meta_url, template.replace("{file}", filepath).replace("{extension}", "jpg"))
    usable = [lay for lay in layers[:MAX_LAYERS] if isinstance(lay, dict)]
    widest = max(usable, key=lambda lay: _int(lay, "width", 0, MAX_SIDE) or 0, default=None)
    levels: dict[tuple[int, int], TopViewerLevel] = {}
    for layer in usable:
        start = _int(layer, "starttile", 0, 1 << 40)
        cols = _int(layer, "cols", 1, MAX_SIDE)
        if layer is widest:
            w, h = width, height
        else:
            w, h = _int(layer, "width", 1, MAX_SIDE), _int(layer, "height", 1, MAX_SIDE)
        if start is None or cols is None or w is None or h is None or (w, h) in levels:
            continue
        if cols < ceil_div(w, tw):  # the numbering would wrap onto the next row
            if layer is widest:
                raise MetadataError(f"Invalid Topviewer file: the widest layer has {cols} columns for {w} px", hint=_HINT)
            continue
        levels[(w, h)] = TopViewerLevel(w, h, tw, th, name=f"TopViewer layer {layer.get('no', '?')}",
                                        template=template, starttile=start, stride=cols)
    if widest is None or (width, height) not in levels:
        raise MetadataError("Invalid Topviewer file: no layer has a starttile and cols", hint=_HINT)
    chosen = sorted(levels.values(), key=lambda lv: lv.width * lv.height, reverse=True)[:MAX_LEVELS]
    title = filepath.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1].rsplit(".", 1)[0] or None
    return Image(levels=tuple(chosen), title=title, dezoomer=NAME, url=meta_url)


class TopViewerDezoomer(Dezoomer):
    name = NAME
    description = "TopViewer / Memorix (…/topviewjson/memorix/<uuid>, Dutch archive pages)"

    def images(self, ctx: Context) -> list[Image]:
        url = ctx.url
        if _META_URL_RE.search(url):
            return [parse_topview(url, ctx.get(url))]
        if _SKIP_RE.search(url):
            raise WrongDezoomer("not a TopViewer page or topviewjson URL")
        data = ctx.get(url)
        head = data[:4_000_000]
        if not _URL_RE.search(url) and not (_TOPVIEWS_RE.search(head) or _THUMB_RE.search(head)):
            raise WrongDezoomer("no TopViewer metadata, Memorix thumbnail or topviews key")
        if _TOPVIEWS_RE.search(head) and isinstance(load_json(data), dict):
            return [parse_topview(url, data)]
        meta = find_metadata_url(url, head)
        if meta == url:
            raise MetadataError(f"no TopViewer metadata found in {url}", hint=_HINT)
        return [parse_topview(meta, ctx.get(meta))]
