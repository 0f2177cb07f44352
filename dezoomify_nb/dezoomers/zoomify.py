"""Zoomify: ``ImageProperties.xml`` plus ``TileGroupN/z-x-y.jpg`` tiles.

Accepted inputs: the ``ImageProperties.xml`` URL (or local path), a tile URL
(``.../TileGroup3/5-0-14.jpg``) or the image folder (``.../myimage/``).

``ImageProperties.xml`` gives only the full size and the tile count, so the level sizes are those of
the first producer's rule whose tile count matches ``NUMTILES``: zoomify.js (method 1, halving floats),
the Zoomify converter (method 2: floor-halving, odd sides rounded up to even; dezoomify-rs' fallback),
libvips ``dzsave --layout zoomify`` and OpenLayers' default (3: ``ceil(W / 2**k)``), TIFF pyramids
served by the IIPImage server (4: ``W >> k``; its ``NUMTILES`` counts the full level only, so no rule
matches). Methods 2–4 often give the same tile counts with sizes one pixel apart (1500 px: 376, 375 or
374 at 1/4): then the one-tile level's tile (``TileGroup0/0-0-0.jpg``, a few KB) is read to tell which
(a wrong guess leaves a black edge row or column on every smaller level).
"""

from __future__ import annotations

import logging
import math
import re
import warnings
from dataclasses import dataclass

from ..errors import FetchError, MetadataError, WrongDezoomer
from ..model import MAX_LEVELS, MAX_SIDE, Image, Level, ceil_div
from ._common import attr, local_name, parse_xml, referer
from .base import Context, Dezoomer

log = logging.getLogger(__name__)

NAME = "Zoomify Image"
_PROPS = "/imageproperties.xml"
_TILE_RE = re.compile(r"^(?P<folder>.*)/TileGroup\d+/\d+-\d+-\d+\.(?:jpe?g|png)(?:[?#].*)?$", re.I)


@dataclass(frozen=True)
class ZoomifyLevel(Level):
    """Level ``z`` (0 = smallest) of a Zoomify pyramid; tiles are grouped 256 per ``TileGroup``."""

    base: str = ""
    z: int = 0
    tiles_before: int = 0

    def tile_url(self, col: int, row: int) -> str:
        group = (self.tiles_before + col + row * self.cols) // 256
        return f"{self.base}/TileGroup{group}/{self.z}-{col}-{row}.jpg"


def _method1(width: int, height: int, ts: int) -> tuple[list[tuple[int, int]], int]:
    """zoomify.js: halve floats while the level is larger than one tile (that last one is dropped)."""
    sizes: list[tuple[int, int]] = []
    total = 0
    w, h = float(width), float(height)
    while (w > ts or h > ts) and len(sizes) <= MAX_LEVELS:
        sizes.append((max(1, int(w)), max(1, int(h))))
        total += math.ceil(w / ts) * math.ceil(h / ts)
        w, h = w / 2, h / 2
    return sizes, total


def _method2(width: int, height: int, ts: int) -> tuple[list[tuple[int, int]], int]:
    """Fallback: floor-halve, round odd sides up to even, stop after the first one-tile level."""
    sizes = [(width, height)]
    k = 0
    while (sizes[-1][0] > ts or sizes[-1][1] > ts) and len(sizes) <= MAX_LEVELS:
        k += 1
        w, h = width >> k, height >> k
        sizes.append((max(1, w + (w & 1)), max(1, h + (h & 1))))
    total = sum(ceil_div(w, ts) * ceil_div(h, ts) for w, h in sizes)
    return sizes, total


def _method3(width: int, height: int, ts: int) -> tuple[list[tuple[int, int]], int]:
    """libvips (``dzsave --layout zoomify``), OpenLayers' default: ``ceil(W / 2**k)`` down to one tile."""
    sizes = [(width, height)]
    k = 0
    while (sizes[-1][0] > ts or sizes[-1][1] > ts) and len(sizes) <= MAX_LEVELS:
        k += 1
        sizes.append((ceil_div(width, 1 << k), ceil_div(height, 1 << k)))
    total = sum(ceil_div(w, ts) * ceil_div(h, ts) for w, h in sizes)
    return sizes, total


def _method4(width: int, height: int, ts: int) -> tuple[list[tuple[int, int]], int]:
    """TIFF pyramids served by the IIPImage server: ``W >> k`` down to one tile (the one-tile level kept)."""
    sizes = [(width, height)]
    k = 0
    while (sizes[-1][0] > ts or sizes[-1][1] > ts) and len(sizes) <= MAX_LEVELS:
        k += 1
        sizes.append((max(1, width >> k), max(1, height >> k)))
    total = sum(ceil_div(w, ts) * ceil_div(h, ts) for w, h in sizes)
    return sizes, total


def candidate_sizes(width: int, height: int, tile_size: int, num_tiles: int) -> list[list[tuple[int, int]]]:
    """The distinct level-size lists (largest first) whose tile count is ``NUMTILES``, most likely
    first; when none matches (the IIPImage server counts the full level's tiles only), every rule's,
    method 2's first (with a warning)."""
    if tile_size <= 0:
        raise MetadataError(f"invalid TILESIZE {tile_size}")
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise MetadataError(f"invalid image size {width}x{height}")
    sizes, total = _method1(width, height, tile_size)
    if sizes and total == num_tiles:
        return [sizes]
    found: list[list[tuple[int, int]]] = []
    every: list[list[tuple[int, int]]] = []
    for method in (_method2, _method3, _method4):
        sizes, total = method(width, height, tile_size)
        if sizes not in every:
            every.append(sizes)
        if total == num_tiles and sizes not in found:
            found.append(sizes)
    if found:
        return found
    log.info("Zoomify: no level rule gives NUMTILES=%d; the one-tile level's tile tells the sizes", num_tiles)
    return every


def level_sizes(width: int, height: int, tile_size: int, num_tiles: int) -> list[tuple[int, int]]:
    """Level sizes, largest first (the most likely rule; :func:`candidate_sizes` lists every match)."""
    return candidate_sizes(width, height, tile_size, num_tiles)[0]


def build_levels(base: str, width: int, height: int, tile_size: int, num_tiles: int,
                 sizes: list[tuple[int, int]] | None = None) -> list[ZoomifyLevel]:
    smallest_first = list(reversed(sizes or level_sizes(width, height, tile_size, num_tiles)))
    if len(smallest_first) > MAX_LEVELS:
        raise MetadataError(f"{len(smallest_first)} levels is over the sanity cap")
    levels: list[ZoomifyLevel] = []
    before = 0
    for z, (w, h) in enumerate(smallest_first):
        first = ZoomifyLevel(w, h, tile_size, tile_size, name=NAME, base=base, z=z, tiles_before=before)
        levels.append(ZoomifyLevel(w, h, tile_size, tile_size, headers=referer(first.tile_url(0, 0)),
                                   name=NAME, base=base, z=z, tiles_before=before))
        before += first.n_tiles
    return levels


def properties_url(url: str) -> tuple[str, bool]:
    """``(ImageProperties.xml URL, guessed)``; ``guessed`` when it was derived from a folder URL."""
    idx = url.lower().find(_PROPS)
    if idx >= 0:
        return url, False
    m = _TILE_RE.match(url)
    if m:
        return m.group("folder") + "/ImageProperties.xml", True
    if "{{" in url or "?" in url or "#" in url:
        raise WrongDezoomer("not an ImageProperties.xml URL")
    stripped = url.rstrip("/")
    last = stripped.rsplit("/", 1)[-1]
    if url.endswith("/") or ("." not in last and stripped.count("/") >= (3 if "://" in url else 0)):
        return stripped + "/ImageProperties.xml", True
    raise WrongDezoomer("not an ImageProperties.xml URL")


def parse_properties(data: bytes) -> tuple[int, int, int, int]:
    """``(WIDTH, HEIGHT, TILESIZE, NUMTILES)``; a missing attribute reads as 0."""
    root = parse_xml(data)
    if root is None or local_name(root).upper() != "IMAGE_PROPERTIES":
        raise WrongDezoomer("not a Zoomify ImageProperties.xml document")

    def num(name: str) -> int:
        v = (attr(root, name) or "0").strip() or "0"
        if not re.fullmatch(r"\d{1,12}", v):
            raise MetadataError(f"invalid {name} {v!r} in ImageProperties.xml")
        return int(v)

    return num("WIDTH"), num("HEIGHT"), num("TILESIZE"), num("NUMTILES")


class ZoomifyDezoomer(Dezoomer):
    name = "zoomify"
    description = "Zoomify (ImageProperties.xml, TileGroupN/z-x-y.jpg)"

    def images(self, ctx: Context) -> list[Image]:
        url, guessed = properties_url(ctx.url)
        try:
            data = ctx.get(url)
        except FetchError as exc:
            if guessed:
                raise WrongDezoomer(f"no ImageProperties.xml at {url} ({exc})") from None
            raise
        try:
            width, height, tile_size, num_tiles = parse_properties(data)
        except WrongDezoomer:
            if guessed:
                raise
            raise MetadataError(f"{url} is not a valid Zoomify ImageProperties.xml") from None
        base = url[: url.lower().find(_PROPS)]
        candidates = candidate_sizes(width, height, tile_size, num_tiles)
        sizes = candidates[0]
        if len(candidates) > 1:  # same tile grid, sizes a pixel apart: the one-tile level's tile tells
            sizes = _pick_by_smallest_tile(ctx, f"{base}/TileGroup0/0-0-0.jpg", candidates)
        levels = build_levels(base, width, height, tile_size, num_tiles, sizes)
        return [Image(levels=tuple(levels), title=None, dezoomer=self.name, url=url)]


def _pick_by_smallest_tile(ctx: Context, url: str, candidates: list[list[tuple[int, int]]]) -> list[tuple[int, int]]:
    """The candidate whose smallest level has the size of the tile at ``url`` (else the first)."""
    from ..imageformats import open_image

    data = ctx.try_get(url)
    if data is None:
        return candidates[0]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # only the header is read: a bomb-sized one just matches nothing
            with open_image(data) as im:
                size = im.size
    except Exception as exc:  # a broken or hostile tile: keep the most likely rule
        log.info("Zoomify: cannot read %s (%s); level sizes by the Zoomify converter's rule", url, exc)
        return candidates[0]
    for sizes in candidates:
        if sizes[-1] == size:
            return sizes
    return candidates[0]
