"""Tiled BigTIFF pyramid (tifffile): full resolution first, the lower levels as SubIFDs.

Streamed: tifffile gets a generator of tiles, cut from one band of tile rows at a time, and a bounded
``buffersize``, and encodes tiles on two threads while the next tile rows are downloaded. Opens in
QuPath, GDAL/QGIS, OpenSlide-like readers and tifffile (``TiffFile(path).series[0].levels``).

Compression: Deflate (lossless; zlib level from ``--compression`` as for PNG, with the horizontal
predictor) by default; JPEG (quality ``100 - compression``) with :class:`TIFFJPEGWriter`
(``format="tiff-jpeg"``), which needs ``imagecodecs`` (``pip install 'dezoomify_nb[tiff-jpeg]'``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..errors import UnsupportedFormatError, WriterError
from .base import StripSource, Writer, atomic_output, pyramid_of
from .png import zlib_level
from .pyramid import close_pyramid, tile_grid

#: TIFF tile side (a multiple of 16, as TIFF requires)
TILE = 512
#: bytes of encoded tiles tifffile may hold at once (it holds everything by default)
BUFFERSIZE = 32 << 20
MAXWORKERS = 2
PHOTOMETRIC = {1: "minisblack", 2: "minisblack", 3: "rgb", 4: "rgb"}


def has_imagecodecs() -> bool:
    try:
        import imagecodecs  # noqa: F401
    except ImportError:
        return False
    return True


def _tiles(level: StripSource, tile: int) -> Iterator[np.ndarray]:
    grey = level.channels == 1  # written as (H, W): tifffile reads (H, W, 1) as W×1 planes
    for t in tile_grid(iter(level.strips()), level.width, tile, pad=True):
        yield t[:, :, 0] if grey else t


def _shape(level: StripSource) -> tuple[int, ...]:
    return (level.height, level.width) if level.channels == 1 else (level.height, level.width, level.channels)


class TIFFWriter(Writer):
    """Tiled pyramidal BigTIFF, Deflate-compressed."""

    name = "tiff"
    suffixes = (".tif", ".tiff")
    pyramid = True
    codec = "zlib"

    def check(self, width: int, height: int, channels: int) -> None:
        if channels not in PHOTOMETRIC:
            raise WriterError(f"TIFF: cannot write {channels} channels per pixel")
        if width < 1 or height < 1:
            raise WriterError(f"cannot write an empty image ({width}×{height} px)")
        if self.codec == "jpeg":
            if not has_imagecodecs():
                raise UnsupportedFormatError(
                    "JPEG-compressed TIFF needs the imagecodecs package",
                    hint="pip install 'dezoomify_nb[tiff-jpeg]', or write a Deflate TIFF (format='tiff').")
            if channels in (2, 4):
                raise UnsupportedFormatError("JPEG-compressed TIFF cannot store transparency",
                                             hint="Use format='tiff' (Deflate) or mode RGB/L.")

    def memory_estimate(self, width: int, height: int, channels: int) -> int:
        # a band of tile rows being cut, the strips fetched ahead, the encode buffer
        band = TILE * width * channels
        return 3 * band + BUFFERSIZE * MAXWORKERS

    def options(self, channels: int, compression: int) -> dict:
        opts: dict = {"photometric": PHOTOMETRIC[channels], "metadata": None,
                      "maxworkers": MAXWORKERS, "buffersize": BUFFERSIZE}
        if channels in (2, 4):
            opts["extrasamples"] = ("unassalpha",)
        if self.codec == "jpeg":
            opts["compression"] = "jpeg"
            opts["compressionargs"] = {"level": min(100, max(1, 100 - int(compression)))}
        elif compression > 0:
            opts["compression"] = "zlib"
            opts["compressionargs"] = {"level": zlib_level(compression)}
            opts["predictor"] = True
        return opts

    def write(self, path: Path, source: StripSource, *, compression: int = 5) -> None:
        import tifffile

        self.check(source.width, source.height, source.channels)
        levels = pyramid_of(source, TILE)
        opts = self.options(source.channels, compression)
        icc = getattr(source, "icc_profile", None)
        try:
            with atomic_output(path) as f, tifffile.TiffWriter(f, bigtiff=True) as tw:
                for i, level in enumerate(levels):
                    extra = {"subifds": len(levels) - 1, "software": "dezoomify_nb"} if i == 0 else {"subfiletype": 1}
                    if icc:
                        extra["iccprofile"] = icc
                    tw.write(_tiles(level, TILE), shape=_shape(level),
                             dtype=np.uint8, tile=(TILE, TILE), **opts, **extra)
        finally:
            close_pyramid(levels)


class TIFFJPEGWriter(TIFFWriter):
    """Tiled pyramidal BigTIFF, JPEG-compressed (needs ``imagecodecs``)."""

    name = "tiff-jpeg"
    suffixes = ()
    codec = "jpeg"
