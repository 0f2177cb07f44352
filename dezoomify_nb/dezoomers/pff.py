"""Zoomify PFF: single-file ``.pff`` images served by the Zoomify servlet (``?file=...&requestType=N``).

Round 1 asks for the header (``requestType=1``), an URL-encoded reply whose ``reply_data`` is a
``<PFFHEADER WIDTH HEIGHT TILESIZE NUMTILES HEADERSIZE VERSION/>`` element; round 2 asks for the table
of tile end offsets (``requestType=2``, reply ``"F, n1 n2 ..."`` meaning ``F + n_i``). A tile is then
the byte range between two offsets (``requestType=0``). Levels are listed and numbered largest first,
down to the last level that still covers a whole tile in both directions (reference §5).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs, quote, urlencode

from ..errors import MetadataError, WrongDezoomer
from ..model import MAX_LEVELS, MAX_SIDE, MAX_TILE_SIDE, MAX_TILES, Image, Level, ceil_div
from ._common import attr, local_name, parse_xml, referer
from .base import Context, Dezoomer

NAME = "Zoomify PFF"
#: size of the fixed header at the start of a .pff file
HEADER_OVERHEAD = 0x424
TILE, METADATA, INDICES = 0, 1, 2

_HINT = "Give the servlet URL of the image, e.g. https://host/zoomify/servlet?file=/images/x.pff&requestType=1"


@dataclass(frozen=True)
class PffHeader:
    width: int
    height: int
    tile_size: int
    num_tiles: int
    header_size: int
    version: int

    @property
    def tiles_start(self) -> int:
        """Offset of tile 0: right after the table of 8-byte tile pointers."""
        return HEADER_OVERHEAD + self.header_size + 8 * self.num_tiles


def split_servlet_url(url: str) -> tuple[str, str, int]:
    """``(base, file, requestType)`` of a servlet URL; WrongDezoomer without both parameters."""
    base, sep, query = url.partition("?")
    if not sep:
        raise WrongDezoomer("no query string (a PFF servlet URL has ?file=...&requestType=...)")
    params = parse_qs(query.split("#", 1)[0], keep_blank_values=True)
    files, types = params.get("file"), params.get("requestType")
    if not files or not types:
        raise WrongDezoomer("no file and requestType parameters")
    if not re.fullmatch(r"\d{1,3}", types[0].strip()):
        raise WrongDezoomer(f"invalid requestType {types[0]!r}")
    return base, files[0], int(types[0])


def request_url(base: str, file: str, header: PffHeader, begin: int, end: int, request_type: int) -> str:
    query = urlencode([("file", file), ("vers", header.version), ("head", header.header_size),
                       ("begin", begin), ("end", end), ("requestType", request_type)])
    return f"{base}?{query}"


def indices_url(base: str, file: str, header: PffHeader) -> str:
    begin = HEADER_OVERHEAD + header.header_size
    return request_url(base, file, header, begin, begin + 8 * header.num_tiles, INDICES)


def reply_data(data: bytes, what: str) -> str:
    """The ``reply_data`` field of an URL-encoded servlet reply."""
    text = data.decode("utf-8", errors="replace")
    values = parse_qs(text, keep_blank_values=True).get("reply_data")
    if not values:
        error = parse_qs(text).get("Error", ["?"])[0]
        raise MetadataError(f"the PFF servlet sent no {what} (Error={error}): {text[:200]!r}", hint=_HINT)
    return values[0]


def parse_header(text: str) -> PffHeader:
    root = parse_xml(text.encode())
    if root is None or local_name(root).upper() != "PFFHEADER":
        raise MetadataError(f"invalid PFF header {text[:200]!r}", hint=_HINT)

    def num(name: str) -> int:
        v = (attr(root, name) or "0").strip() or "0"
        if not re.fullmatch(r"\d{1,15}", v):
            raise MetadataError(f"invalid {name} {v!r} in the PFF header")
        return int(v)

    header = PffHeader(num("WIDTH"), num("HEIGHT"), num("TILESIZE"), num("NUMTILES"), num("HEADERSIZE"),
                       num("VERSION"))
    if not (0 < header.width <= MAX_SIDE and 0 < header.height <= MAX_SIDE):
        raise MetadataError(f"invalid PFF image size {header.width}x{header.height}")
    if not 0 < header.tile_size <= MAX_TILE_SIDE:
        raise MetadataError(f"invalid PFF tile size {header.tile_size}")
    if header.num_tiles > MAX_TILES:
        raise MetadataError(f"{header.num_tiles} tiles is over the sanity cap")
    return header


def parse_indices(text: str) -> tuple[int, ...]:
    """``"F, n1 n2 ..."`` → ``(F + n1, F + n2, ...)``: the end offset of each tile."""
    first, sep, rest = text.partition(",")
    if not sep:
        raise MetadataError(f"Missing a part of the tile indices string {text[:80]!r}")
    try:
        base = int(first.strip())
        return tuple(base + int(n) for n in rest.split())
    except ValueError:
        raise MetadataError(f"Invalid tile index in {text[:80]!r}") from None


@dataclass(frozen=True)
class PffLevel(Level):
    """One level; tile ``n`` (counted from the largest level) is the bytes ``[end[n-1], end[n])``."""

    base: str = ""
    file: str = ""
    header: PffHeader | None = None
    ends: tuple[int, ...] = field(default=(), repr=False)
    tiles_before: int = 0

    def tile_url(self, col: int, row: int) -> str:
        assert self.header is not None
        n = self.tiles_before + col + row * self.cols
        begin = self.ends[n - 1] if n > 0 else self.header.tiles_start
        return request_url(self.base, self.file, self.header, begin, self.ends[n], TILE)


def level_sizes(header: PffHeader) -> list[tuple[int, int]]:
    """Largest first, halving (rounding up) while both sides still cover a whole tile."""
    sizes: list[tuple[int, int]] = []
    w, h, ts = header.width, header.height, header.tile_size
    while w >= ts and h >= ts and len(sizes) <= MAX_LEVELS:
        sizes.append((w, h))
        w, h = ceil_div(w, 2), ceil_div(h, 2)
    return sizes


def build_levels(base: str, file: str, header: PffHeader, ends: tuple[int, ...]) -> list[PffLevel]:
    sizes = level_sizes(header)
    if not sizes:
        raise MetadataError(f"the {header.width}x{header.height} PFF image is smaller than one "
                            f"{header.tile_size}px tile: it has no zoom level")
    levels: list[PffLevel] = []
    before = 0
    for w, h in sizes:
        ts = header.tile_size
        count = ceil_div(w, ts) * ceil_div(h, ts)
        if before + count > len(ends):
            break  # the index table does not cover this level (nor the smaller ones)
        first = request_url(base, file, header, ends[before - 1] if before else header.tiles_start,
                            ends[before], TILE)
        levels.append(PffLevel(w, h, ts, ts, headers=referer(first), name=NAME, base=base, file=file,
                               header=header, ends=ends, tiles_before=before))
        before += count
    if not levels:
        raise MetadataError(f"the PFF tile index lists {len(ends)} tiles, too few for the full-size level")
    return levels


class PffDezoomer(Dezoomer):
    name = "pff"
    description = "Zoomify PFF servlet (…?file=image.pff&requestType=1)"

    def images(self, ctx: Context) -> list[Image]:
        base, file, request_type = split_servlet_url(ctx.url)
        if request_type == METADATA:
            meta_url = ctx.url
        else:
            meta_url = f"{base}?file={quote(file, safe='/:')}&requestType={METADATA}"
        header = parse_header(reply_data(ctx.get(meta_url), "header"))
        ends = parse_indices(reply_data(ctx.get(indices_url(base, file, header)), "tile index"))
        levels = build_levels(base, file, header, ends)
        return [Image(levels=tuple(levels), title=None, dezoomer=self.name, url=ctx.url)]
