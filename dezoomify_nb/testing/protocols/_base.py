"""What every protocol of the :class:`~dezoomify_nb.testing.tileserver.TileServer` shares.

The encoder settings, the level geometry (sizes largest first, tile grid, overlap) and the narrow view of
the server that a protocol module answers from (:class:`Source`): the protocol modules import this module
and :mod:`.._http`, never the server itself, so the imports point one way (server → protocols → base).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from PIL import Image

from .._http import Response

#: Pillow filter used to build every lower level from the full image.
LEVEL_FILTER = Image.Resampling.BOX
JPEG_QUALITY = 90
PNG_COMPRESS_LEVEL = 1

CONTENT_TYPES = {"png": "image/png", "jpg": "image/jpeg"}


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class Geometry:
    """Level sizes (largest first) and tiling of one kind."""

    sizes: tuple[tuple[int, int], ...]
    tile_w: int
    tile_h: int
    overlap: int = 0
    fmt: str = "png"

    def grid(self, k: int) -> tuple[int, int]:
        w, h = self.sizes[k]
        return ceil_div(w, self.tile_w), ceil_div(h, self.tile_h)

    def box(self, k: int, col: int, row: int) -> tuple[int, int, int, int]:
        w, h = self.sizes[k]
        o = self.overlap
        x0 = col * self.tile_w - (o if col > 0 else 0)
        y0 = row * self.tile_h - (o if row > 0 else 0)
        x1 = min((col + 1) * self.tile_w + o, w)
        y1 = min((row + 1) * self.tile_h + o, h)
        return x0, y0, x1, y1

    def tile_count(self, k: int) -> int:
        cols, rows = self.grid(k)
        return cols * rows


class Source(Protocol):
    """The part of the server a protocol module reads: image size, URLs, level pixels, tile cache."""

    width: int
    height: int
    tile_size: int

    @property
    def base_url(self) -> str: ...

    def numtiles(self, kind: str) -> int: ...

    def _geom(self, kind: str) -> Geometry: ...

    def _tile_response(self, kind: str, k: int, col: int, row: int) -> Response: ...

    def _cached(self, key: tuple[object, ...], fmt: str, make: Callable[[], Image.Image]) -> Response:
        """The encoded ``make()`` from the tile cache (encoded and kept on a miss)."""
        ...

    def _level_pil(self, size: tuple[int, int]) -> Image.Image: ...

    def _full_pil(self) -> Image.Image: ...
