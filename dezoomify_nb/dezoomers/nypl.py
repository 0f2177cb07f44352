"""NYPL Digital Collections: ``digitalcollections.nypl.org/items/<uuid>`` item pages.

The item id leads to ``https://access.nypl.org/image.php/<id>/tiles/config.js``, a JSON document with
one Deep-Zoom-like configuration per rotation; only rotation ``"0"`` is used. Level ``l`` (0 = 1×1 or
empty, up to the bit length of the largest side) has size ``(W, H) >> (max_level - l)``; tiles are
``.../tiles/0/<l>/<x>_<y>.<format>`` with Deep Zoom overlap. Follows dezoomify-rs (reference §8).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import MetadataError, WrongDezoomer
from ..model import MAX_SIDE, Image, Level
from ._common import load_json, referer, to_int
from .base import Context, Dezoomer

NAME = "NYPL Image"
ITEM_PREFIX = "https://digitalcollections.nypl.org/items/"
META_PREFIX = "https://access.nypl.org/image.php/"
META_SUFFIX = "/tiles/config.js"

_ITEM_RE = re.compile(r"^https://digitalcollections\.nypl\.org/items/([A-Fa-f0-9-]+)")
_META_RE = re.compile(r"^https://access\.nypl\.org/image\.php/([^/?#]+)/")
_FORMAT_RE = re.compile(r"[A-Za-z0-9]{1,8}")
_NOT_TILED = ("No metadata found. This image is probably not tiled, and you can download it directly by "
              "right-clicking on it from your browser without any external tool.")


def image_id(url: str) -> str:
    """The image id of an item page URL or of an ``access.nypl.org/image.php/<id>/...`` URL."""
    m = _ITEM_RE.match(url) or _META_RE.match(url)
    if not m:
        if url.startswith(ITEM_PREFIX):
            raise MetadataError(f"Unable to extract an image id from {url!r}",
                                hint="Give the URL of an item page: https://digitalcollections.nypl.org/items/<id>")
        raise WrongDezoomer("not a digitalcollections.nypl.org item URL")
    return m.group(1)


def config_url(image_id: str) -> str:
    return f"{META_PREFIX}{image_id}{META_SUFFIX}"


@dataclass(frozen=True)
class NYPLLevel(Level):
    """Level ``level`` of an NYPL image (tiles of rotation 0)."""

    image_id: str = ""
    level: int = 0
    format: str = "jpg"

    def tile_url(self, col: int, row: int) -> str:
        return f"{META_PREFIX}{self.image_id}/tiles/0/{self.level}/{col}_{row}.{self.format}"


def parse_config(data: bytes, image_id: str) -> list[NYPLLevel]:
    if not data.strip():
        raise MetadataError(_NOT_TILED)
    doc = load_json(data)
    if doc is None:
        raise MetadataError(f"Failed to parse the NYPL image metadata as JSON: {data[:200]!r}", hint=_NOT_TILED)
    configs = doc.get("configs") if isinstance(doc, dict) else None
    meta = configs.get("0") if isinstance(configs, dict) else None
    if not isinstance(meta, dict):
        raise MetadataError(_NOT_TILED)
    size = meta.get("size")
    if not isinstance(size, dict):
        raise MetadataError("the NYPL image metadata has no size")
    width, height = to_int(size.get("width"), "width"), to_int(size.get("height"), "height")
    tile_size = to_int(meta.get("tilesize", meta.get("tile_size")), "tilesize")
    overlap = to_int(meta.get("overlap"), "overlap", default=0)
    fmt = str(meta.get("format", ""))
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise MetadataError(f"invalid NYPL image size {width}x{height}")
    if not _FORMAT_RE.fullmatch(fmt):
        raise MetadataError(f"invalid NYPL tile format {fmt!r}")
    max_level = max(width, height).bit_length()
    levels: list[NYPLLevel] = []
    for lvl in range(max_level + 1):
        shift = max_level - lvl
        w, h = width >> shift, height >> shift
        if w == 0 or h == 0:
            continue  # an empty level: no tile to fetch
        first = f"{META_PREFIX}{image_id}/tiles/0/{lvl}/0_0.{fmt}"
        levels.append(NYPLLevel(w, h, tile_size, tile_size, overlap=overlap, headers=referer(first),
                                name=NAME, image_id=image_id, level=lvl, format=fmt))
    return levels


class NYPLDezoomer(Dezoomer):
    name = "nypl"
    description = "NYPL Digital Collections (digitalcollections.nypl.org/items/<id>)"

    def images(self, ctx: Context) -> list[Image]:
        ident = image_id(ctx.url)
        levels = parse_config(ctx.get(config_url(ident)), ident)
        return [Image(levels=tuple(levels), title=None, dezoomer=self.name, url=ctx.url)]
