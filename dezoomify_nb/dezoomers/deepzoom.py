"""Deep Zoom (DZI): ``.dzi``/``.xml`` descriptors, JSON DZI and OpenSeadragon inline configurations.

Tiles are ``{base}/{level}/{col}_{row}.{Format}`` where ``base`` is the ``Url`` attribute when present,
else the descriptor URL without its extension plus ``_files``, as OpenSeadragon derives it: a descriptor
named inside a query string keeps it (the IIPImage server's ``…/iipsrv.fcgi?DeepZoom=/images/a.tif.dzi``
has its tiles at ``…?DeepZoom=/images/a.tif_files/12/0_0.jpg``), and the query of ``a.dzi?token=1`` is
repeated on every tile (``a_files/12/0_0.jpg?token=1``). Level ``maxLevel`` is the full image; each
lower level halves the size (rounding up) down to 1×1. Tiles carry ``Overlap`` extra pixels on each side
that touches a neighbour: :meth:`Level.tile_offset` skips the left/top overlap when ``col``/``row`` > 0
and :meth:`Level.tile_box` keeps exactly the tile's own pixels, which drops the right/bottom overlap.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..errors import FetchError, MetadataError, WrongDezoomer
from ..model import MAX_LEVELS, MAX_SIDE, Image, Level, ceil_div, is_url, resolve_relative
from . import _json5
from ._common import attr, last_segment, local_name, parse_xml, referer, to_int
from .base import Context, Dezoomer

_TILE_RE = re.compile(r"^(?P<stem>.*)_files/\d+/\d+_\d+\.(?:jpe?g|png)(?:[?#].*)?$", re.I)
_IMAGE_EXT_RE = re.compile(r"\.(?:jpe?g|png|gif|webp|tiff?|bmp|avif)(?:[?#].*)?$", re.I)
_FORMAT_RE = re.compile(r"[A-Za-z0-9]{1,10}")


@dataclass(frozen=True)
class DeepZoomLevel(Level):
    """DZI level ``level`` (``maxLevel`` is the full image)."""

    base: str = ""
    level: int = 0
    format: str = "jpg"
    query: str = ""  # the descriptor's ``?…``, repeated on every tile (OpenSeadragon's queryParams)

    def tile_url(self, col: int, row: int) -> str:
        return f"{self.base}/{self.level}/{col}_{row}.{self.format}{self.query}"


@dataclass(frozen=True)
class DziInfo:
    width: int
    height: int
    tile_size: int
    overlap: int
    format: str
    url: str | None  # the optional ``Url`` attribute


def max_level(width: int, height: int) -> int:
    """``ceil(log2(max(W, H)))``."""
    return (max(width, height) - 1).bit_length()


def level_sizes(width: int, height: int) -> list[tuple[int, int]]:
    """Sizes from ``(W, H)`` halving (rounding up) down to and including 1×1, largest first."""
    sizes = [(width, height)]
    while sizes[-1] != (1, 1) and len(sizes) <= MAX_LEVELS:
        w, h = sizes[-1]
        sizes.append((ceil_div(w, 2), ceil_div(h, 2)))
    return sizes


def _info(width: object, height: object, tile_size: object, overlap: object, fmt: object,
          url: object) -> DziInfo:
    w, h = to_int(width, "Width"), to_int(height, "Height")
    ts = to_int(tile_size, "TileSize")
    ov = to_int(overlap, "Overlap", default=0)
    if ts <= 0:
        raise MetadataError(f"invalid DZI TileSize {ts}")
    if not (0 < w <= MAX_SIDE and 0 < h <= MAX_SIDE):
        raise MetadataError(f"invalid DZI size {w}x{h}")
    fmt = str(fmt or "jpg").strip().lstrip(".")
    if not _FORMAT_RE.fullmatch(fmt):
        raise MetadataError(f"invalid DZI Format {fmt!r}")
    return DziInfo(w, h, ts, ov, fmt, str(url) if url else None)


def _from_xml(data: bytes) -> list[DziInfo] | None:
    root = parse_xml(data)
    if root is None or local_name(root) != "Image":
        return None
    size = next((c for c in root if local_name(c) == "Size"), None)
    if size is None:
        raise MetadataError("DZI without a <Size> element")
    return [_info(attr(size, "Width"), attr(size, "Height"), attr(root, "TileSize"), attr(root, "Overlap"),
                  attr(root, "Format"), attr(root, "Url"))]


def _is_dzi_object(obj: dict[str, Any]) -> bool:
    return "TileSize" in obj and "Format" in obj and isinstance(obj.get("Size"), dict)


def _from_objects(data: bytes) -> list[DziInfo]:
    found: list[DziInfo] = []
    for obj in _json5.iter_objects(data, must_contain=("TileSize",)):
        if _is_dzi_object(obj):
            s = obj["Size"]
            found.append(_info(s.get("Width"), s.get("Height"), obj["TileSize"], obj.get("Overlap"),
                               obj["Format"], obj.get("Url")))
    return list(dict.fromkeys(found))


def parse_dzi(data: bytes) -> list[DziInfo]:
    """Every DZI described by ``data`` (XML, JSON or JS); WrongDezoomer when there is none."""
    infos = _from_xml(data)
    if infos is None:
        infos = _from_objects(data)
    if not infos:
        raise WrongDezoomer("no Deep Zoom descriptor found")
    return infos


#: OpenSeadragon's DziTileSource: ``url.replace(/([^/]+?)(\.(dzi|xml|js)?(\?[^/]*)?)?\/?$/, '$1_files/')``,
#: here for the descriptor extensions only (its last ``/``-segment may sit inside a query string)
_OSD_DESCRIPTOR_RE = re.compile(r"^(?P<head>.*/)?(?P<stem>[^/]+?)\.(?:dzi|xml|js)(?P<query>\?[^/]*)?/?$")


def tiles_base(meta_url: str, info: DziInfo) -> tuple[str, str]:
    """``(base, query)``: tiles are ``{base}/{level}/{col}_{row}.{fmt}{query}``."""
    if info.url:
        return resolve_relative(meta_url, info.url.rstrip("/")), ""
    path = meta_url
    if is_url(path):
        path = path.split("#", 1)[0]
        m = _OSD_DESCRIPTOR_RE.match(path)
        if m:
            return f"{m.group('head') or ''}{m.group('stem')}_files", m.group("query") or ""
        path = path.split("?", 1)[0]
    head, sep, seg = path.rpartition("/")
    if "." in seg:
        seg = seg.rsplit(".", 1)[0]
    return f"{head}{sep}{seg}_files", ""


def build_image(meta_url: str, info: DziInfo, dezoomer: str = "deepzoom") -> Image:
    base, query = tiles_base(meta_url, info)
    # …?DeepZoom=/images/a.tif_files: the name in the query
    title = re.split(r"[/=]", base)[-1] if "?" in base else last_segment(base)
    if title.endswith("_files"):
        title = title[: -len("_files")]
    name = f"{title} (Deep Zoom Image)"
    top = max_level(info.width, info.height)
    levels = []
    for i, (w, h) in enumerate(level_sizes(info.width, info.height)):
        n = top - i
        first = f"{base}/{n}/0_0.{info.format}{query}"
        levels.append(DeepZoomLevel(w, h, info.tile_size, info.tile_size, overlap=info.overlap,
                                    headers=referer(first), name=name, base=base, level=n, format=info.format,
                                    query=query))
    return Image(levels=tuple(levels), title=title or None, dezoomer=dezoomer, url=meta_url)


def metadata_url(url: str) -> tuple[str, bool]:
    """``(descriptor URL, derived)``: a tile URL gives its ``.dzi``."""
    m = _TILE_RE.match(url)
    if m:
        return m.group("stem") + ".dzi", True
    if "{{" in url:
        raise WrongDezoomer("a URL template, not a Deep Zoom descriptor")
    if _IMAGE_EXT_RE.search(url):
        raise WrongDezoomer("an image file, not a Deep Zoom descriptor")
    return url, False


class DeepZoomDezoomer(Dezoomer):
    name = "deepzoom"
    description = "Deep Zoom (.dzi, JSON DZI, OpenSeadragon inline tileSources)"

    def images(self, ctx: Context) -> list[Image]:
        url, derived = metadata_url(ctx.url)
        try:
            data = ctx.get(url)
        except FetchError as exc:
            if derived:
                raise WrongDezoomer(f"no .dzi at {url} ({exc})") from None
            raise
        return [build_image(url, info, self.name) for info in parse_dzi(data)]
