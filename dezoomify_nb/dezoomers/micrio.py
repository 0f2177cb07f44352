"""Micrio's legacy ``getTilesInfo`` API (old Rijksmuseum and Van Gogh Museum viewers).

Port of the web dezoomify's ``micrio.js`` (reference ``more-formats.md`` §5). Modern Micrio
(``i.micr.io/<id>``) is IIIF and is read by the ``iiif`` dezoomer.

* **Recognised** by a ``…/api/getTilesInfo?object_id=…`` URL (the metadata itself) or a
  ``rijksmuseum.nl/en/rijksstudio`` page; else by a page with ``data-role="micrio"`` or
  ``dataSourcePath: "…"``.
* **Page discovery**: ``data-base-path`` + ``data-id`` is the metadata URL; else ``dataSourcePath`` plus
  the JSON-decoded ``dataSourceQuery`` is a set description (``offset=`` taken from a ``#/<object>,<offset>``
  hash) whose ``setItems[]`` entry with ``ObjectNumber`` = the hash's object (else the first) gives the
  metadata URL as ``TilingUrl``.
* **Metadata**: ``levels[]`` of ``{width, height, tiles: [{x, y, url}]}``; tiles are 512 px and each URL is
  given verbatim. The JS keeps the largest level; here every level whose tile list covers its grid is
  offered (a level with missing tiles is left out; if none is complete, that is an error).
"""

from __future__ import annotations

import json
import re
from bisect import bisect_left
from dataclasses import dataclass
from typing import Any

from ..errors import MetadataError, WrongDezoomer
from ..model import MAX_SIDE, Image, Level, ceil_div
from ._common import load_json, to_int
from ._jsweb import join_url, page_text
from .base import Context, Dezoomer

NAME = "Micrio"
TILE = 512
_URL_RES = (re.compile(r"rijksmuseum.nl/en/rijksstudio"), re.compile(r"/api/getTilesInfo\?object_id="))
_DATA_ID_RE = re.compile(r'data-id="([^"]+)"')
_BASE_PATH_RE = re.compile(r'data-base-path="([^"]+)"')
_SOURCE_RE = re.compile(r"""dataSourcePath["']?\s*:\s*["']([^'"]*)['"]""")
_QUERY_RE = re.compile(r"""dataSourceQuery["']?\s*:\s*("[^"]*")""")
_HASH_RE = re.compile(r"#/([^,]*)(?:,(\d+))?")
_HINT = ("Give the …/api/getTilesInfo?object_id=… URL (see the browser's network inspector), or the page of the "
         "Micrio viewer.")


@dataclass(frozen=True)
class MicrioLevel(Level):
    """A level whose tile URLs are listed one by one: ``keys[i] = row·cols + col`` ↔ ``urls[i]`` (sorted),
    as written in the document (joined to ``base`` when a tile is fetched: a long base is not copied per tile)."""

    keys: tuple[int, ...] = ()
    urls: tuple[str, ...] = ()
    base: str = ""

    def tile_url(self, col: int, row: int) -> str:
        key = row * self.cols + col
        i = bisect_left(self.keys, key)
        if i == len(self.keys) or self.keys[i] != key:  # cannot happen: incomplete levels are refused
            raise MetadataError(f"Micrio tile ({col}, {row}) is not listed")
        return join_url(self.base, self.urls[i], "Micrio tile URL")


def matches_url(url: str) -> bool:
    return any(r.search(url) for r in _URL_RES)


def page_matches(text: str) -> bool:
    return 'data-role="micrio"' in text or _SOURCE_RE.search(text) is not None


def _level(meta_url: str, obj: Any) -> MicrioLevel | None:
    """A complete level, or None when ``obj`` is not a level or misses tiles."""
    if not isinstance(obj, dict) or not isinstance(obj.get("tiles"), list):
        return None
    try:
        width, height = to_int(obj.get("width"), "level width"), to_int(obj.get("height"), "level height")
    except MetadataError:
        return None
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        return None
    cols, rows = ceil_div(width, TILE), ceil_div(height, TILE)
    if cols * rows > len(obj["tiles"]):
        return None  # cannot be complete (and no grid is allocated from an absurd size)
    found: dict[int, str] = {}
    for tile in obj["tiles"]:
        if not isinstance(tile, dict) or not isinstance(tile.get("url"), str):
            continue
        x, y = tile.get("x"), tile.get("y")
        if type(x) is int and type(y) is int and 0 <= x < cols and 0 <= y < rows:
            found.setdefault(y * cols + x, tile["url"])
    if len(found) < cols * rows:
        return None
    keys = tuple(sorted(found))
    for ref in found.values():  # refused now rather than tile by tile
        join_url(meta_url, ref, "Micrio tile URL")
    return MicrioLevel(width, height, TILE, TILE, name=NAME, keys=keys, urls=tuple(found[k] for k in keys),
                       base=meta_url)


def parse_tiles_info(data: bytes, meta_url: str) -> list[MicrioLevel]:
    doc = load_json(data)
    levels_in = doc.get("levels") if isinstance(doc, dict) else None
    if not isinstance(levels_in, list) or not levels_in:
        raise MetadataError(f"{meta_url} is not a Micrio getTilesInfo document (no 'levels')", hint=_HINT)
    levels: dict[tuple[int, int], MicrioLevel] = {}
    for obj in levels_in[:64]:
        lv = _level(meta_url, obj)
        if lv is not None:
            levels.setdefault(lv.size, lv)
    if not levels:
        raise MetadataError("no level of the Micrio image lists all its tiles",
                            hint="The server's tile list is incomplete; the image cannot be assembled.")
    return list(levels.values())


def _set_item_url(ctx: Context, text: str, page_url: str) -> str | None:
    """The ``TilingUrl`` of a ``dataSourcePath`` page's set; None when the page has no such path."""
    source = _SOURCE_RE.search(text)
    if source is None:
        return None
    hashed = _HASH_RE.search(page_url)
    obj_number = hashed.group(1) if hashed else ""
    offset = hashed.group(2) if hashed else None
    query = _QUERY_RE.search(text)
    path = source.group(1)
    if query is not None:
        try:
            decoded = json.loads(query.group(1))
        except ValueError:
            raise MetadataError("invalid dataSourceQuery in the Micrio page") from None
        path += decoded
    if offset:
        path = re.sub(r"offset=\d+", f"offset={offset}", path, count=1)
    set_url = join_url(page_url, path, "Micrio set URL")
    doc = load_json(ctx.get(set_url))
    items = doc.get("setItems") if isinstance(doc, dict) else None
    if not isinstance(items, list) or not items:
        raise MetadataError(f"no setItems in the Micrio set {set_url}", hint=_HINT)
    chosen = next((it for it in items if isinstance(it, dict) and it.get("ObjectNumber") == obj_number), items[0])
    tiling = chosen.get("TilingUrl") if isinstance(chosen, dict) else None
    if not isinstance(tiling, str):
        raise MetadataError(f"the Micrio set item has no TilingUrl ({set_url})", hint=_HINT)
    return join_url(page_url, tiling, "Micrio TilingUrl")


class MicrioDezoomer(Dezoomer):
    name = "micrio"
    description = "Micrio legacy viewer (…/api/getTilesInfo?object_id=…, old Rijksmuseum pages)"

    def images(self, ctx: Context) -> list[Image]:
        url = ctx.url
        if _URL_RES[1].search(url):
            meta = url
        else:
            if "{{" in url:
                raise WrongDezoomer("a URL template, not a Micrio page")
            text = page_text(ctx.get())
            if not (matches_url(url) or page_matches(text)):
                raise WrongDezoomer("no Micrio viewer in the page")
            data_id, base_path = _DATA_ID_RE.search(text), _BASE_PATH_RE.search(text)
            if data_id and base_path:
                meta = join_url(url, base_path.group(1) + data_id.group(1), "Micrio metadata URL")
            else:
                meta = _set_item_url(ctx, text, url) or url
        levels = parse_tiles_info(ctx.get(meta), meta)
        return [Image(levels=tuple(levels), title=None, dezoomer=self.name, url=meta)]
