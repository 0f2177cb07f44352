"""Visual Library Server (semantics GmbH): ``…/content/pageview/<id>`` → ``/zoom/<id>`` → square tiles.

Port of the web dezoomify's ``vls.js`` (reference ``more-formats.md`` §4), used by German-speaking
university libraries (e-rara.ch, digital.blb-karlsruhe.de, …).

* **Recognised** by a URL ending in ``/pageview/<digits>``, ``/thumbview/<digits>`` or ``/zoom/<digits>``;
  that last segment becomes ``/zoom/<digits>``, the viewer's (X)HTML page.
* **Metadata**: ``<var id="zoomTileSize" value=…>`` and the element with ``id="map"``, attributes
  ``vls:ot_id``, ``vls:width``, ``vls:height``. A page that is not well-formed XML is read as HTML.
* **Geometry** (as the JS): ``W = vls:width``; ``H = vls:height`` rounded **up** to a multiple of
  ``zoomTileSize`` (the JS's "avoid cropping at the bottom" workaround, so the image may end with an
  empty strip); one level, cut in **1024 px** tiles whatever ``zoomTileSize`` says.
* **Tiles**: ``scheme://host/image/tiler/square/<ot_id>/0/<x>/<y>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from ..errors import MetadataError, WrongDezoomer
from ..model import Image, Level, is_url
from ._common import local_name, parse_xml
from ._jsweb import MAX_PAGE_BYTES, decode_entities, js_parse_int
from .base import Context, Dezoomer

NAME = "VLS"
TILE = 1024
URL_RE = re.compile(r"/(thumbview|pageview|zoom)/(\d+)\Z")
_TAG_RE = re.compile(r"<([A-Za-z][\w:.-]{0,50})\b([^<>]{0,8000})>")
_ATTR_RE = re.compile(r"""([\w:.-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_HINT = "Give the URL of a page of the library's viewer: …/content/pageview/<number> (or …/zoom/<number>)."


@dataclass(frozen=True)
class VlsLevel(Level):
    """The full image, in the tiler's 1024 px squares."""

    base: str = ""  # scheme://host/image/tiler/square/<ot_id>/0

    def tile_url(self, col: int, row: int) -> str:
        return f"{self.base}/{col}/{row}"


def zoom_url(url: str) -> str:
    """The ``/zoom/<id>`` page of a ``pageview``/``thumbview``/``zoom`` URL; WrongDezoomer otherwise."""
    m = URL_RE.search(url)
    if m is None or not is_url(url):
        raise WrongDezoomer("not a VLS …/pageview/<id>, …/thumbview/<id> or …/zoom/<id> URL")
    return f"{url[: m.start()]}/zoom/{m.group(2)}"


def _attrs_xml(data: bytes) -> tuple[dict[str, str], dict[str, str]] | None:
    """``(vars, map attributes by local name)`` from a well-formed page; None if it is not XML."""
    root = parse_xml(data)
    if root is None:
        return None
    variables: dict[str, str] = {}
    found: dict[str, str] = {}
    for el in root.iter():
        if local_name(el) == "var" and el.get("id") is not None:
            variables.setdefault(el.get("id") or "", el.get("value") or "")
        elif not found and el.get("id") == "map":
            found = {str(k).rsplit("}", 1)[-1]: str(v) for k, v in el.attrib.items()}
    return variables, found


def _attrs_html(data: bytes) -> tuple[dict[str, str], dict[str, str]]:
    """The same from tag soup: each tag's attributes, ``vls:`` prefixes dropped."""
    text = data[:MAX_PAGE_BYTES].decode("utf-8", "replace")
    variables: dict[str, str] = {}
    found: dict[str, str] = {}
    for m in _TAG_RE.finditer(text):
        attrs = {a.group(1): decode_entities(a.group(2) if a.group(2) is not None else a.group(3))
                 for a in _ATTR_RE.finditer(m.group(2))}
        if m.group(1).lower() == "var" and "id" in attrs:
            variables.setdefault(attrs["id"], attrs.get("value", ""))
        elif not found and attrs.get("id") == "map":
            found = {k.rsplit(":", 1)[-1]: v for k, v in attrs.items()}
    return variables, found


def parse_zoom_page(data: bytes) -> tuple[str, int, int, int | None]:
    """``(ot_id, width, height, zoomTileSize)`` from a ``/zoom/<id>`` page."""
    variables, found = _attrs_xml(data) or _attrs_html(data)
    ot_id = found.get("ot_id")
    if not ot_id:
        raise MetadataError("Unable to extract image ID (no element id=\"map\" with vls:ot_id)", hint=_HINT)
    width, height = js_parse_int(found.get("width")), js_parse_int(found.get("height"))
    if not width or not height or width < 0 or height < 0:
        raise MetadataError(f"invalid VLS image size {found.get('width')!r} x {found.get('height')!r}")
    tile = js_parse_int(variables.get("zoomTileSize"))
    return ot_id, width, height, tile if tile and tile > 0 else None


def build_level(page_url: str, ot_id: str, width: int, height: int, zoom_tile: int | None) -> VlsLevel:
    if zoom_tile is not None:  # the JS's workaround against a cropped bottom
        height = ((height - 1) // zoom_tile + 1) * zoom_tile
    parts = urlsplit(page_url)
    base = f"{parts.scheme}://{parts.netloc}/image/tiler/square/{quote(ot_id, safe='')}/0"
    return VlsLevel(width, height, TILE, TILE, name=NAME, base=base)


class VlsDezoomer(Dezoomer):
    name = "vls"
    description = "Visual Library Server by semantics (…/content/pageview/<id>, …/zoom/<id>)"

    def images(self, ctx: Context) -> list[Image]:
        page = zoom_url(ctx.url)
        ot_id, width, height, zoom_tile = parse_zoom_page(ctx.get(page))
        level = build_level(page, ot_id, width, height, zoom_tile)
        return [Image(levels=(level,), title=None, dezoomer=self.name, url=page)]
