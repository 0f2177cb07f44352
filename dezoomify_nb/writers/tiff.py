"""Tiled BigTIFF pyramid (tifffile): full resolution first, then each lower level as a top-level IFD.

The reduced levels are top-level directories marked reduced-resolution (NewSubfileType = 1), as libvips
(``tiffsave --pyramid``) and Cloud-Optimized GeoTIFFs write them, so every reader sees every level:
OpenSlide's generic-TIFF reader (it walks top-level directories only: SubIFDs are invisible to it), GDAL
(as overviews), libvips (``[page=N]``), tifffile (``series[0].levels``) and Pillow (``seek(N)``).

Streamed: tiles are cut from one band of tile rows at a time (:func:`~.pyramid.tile_grid`) while the
next tile rows are downloaded. Opens in QuPath, GDAL/QGIS, OpenSlide-like readers and tifffile
(``TiffFile(path).series[0].levels``).

Maps: a source with a georeference (the source's ``georef``, see :mod:`.geo`) gets GeoTIFF tags on the main
image and the file is a **Cloud-Optimized GeoTIFF**: the pyramid is written as above to a temporary beside the
output, then laid out in COG order by :func:`.cog.relayout` (classic TIFF below 4 GiB); other images keep
this BigTIFF layout.

Compression: Deflate (lossless; zlib level from ``--compression`` as for PNG) by default; JPEG
(quality ``100 - compression``) with :class:`TIFFJPEGWriter` (``format="tiff-jpeg"``), which needs
``imagecodecs`` (``pip install 'dezoomify_nb[tiff-jpeg]'``); ``compression=0`` stores tiles raw.

Deflate tiles are encoded here, not by tifffile: its encoder (imagecodecs' libdeflate at level 1,
predictor by imagecodecs) does ~45 MP/s per core, ISA-L ~130 MP/s for the same file size (a 16384²
RGB pyramid: 5 s -> 1.4 s on 2 cores). Each tile gets the TIFF horizontal predictor (predictor 2: each
sample minus the same sample of the pixel to its left, mod 256) in one numpy pass into a per-thread
buffer, then is compressed to a zlib stream (TIFF compression 8, Adobe Deflate: header + Adler-32) by
:func:`tile_codec`, on a small thread pool (numpy and deflate release the GIL) with a bounded number of
tiles in flight, and handed to tifffile in order as already-encoded bytes: it writes them as they are,
under the tags compression=8 and predictor=2, so every TIFF reader decodes them.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..errors import UnsupportedFormatError, WriterError
from .base import StripSource, Writer, atomic_output
from .cog import relayout
from .geo import geotiff_tags, usable
from .png import deflate_backend, zlib_level
from .pyramid import close_pyramid, pyramid_of, tile_grid

#: TIFF tile side (a multiple of 16, as TIFF requires)
TILE = 512
#: bytes of encoded tiles tifffile may hold at once (it holds everything by default)
BUFFERSIZE = 32 << 20
MAXWORKERS = 2
#: threads encoding Deflate tiles, and tiles handed to them ahead of the one tifffile writes
WORKERS = max(1, min(8, os.cpu_count() or 1))
INFLIGHT = 4 * WORKERS + 4
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


_scratch = threading.local()


def predict(tile: np.ndarray) -> np.ndarray:
    """TIFF predictor 2 of a ``(h, w[, c])`` uint8 tile, into this thread's buffer (valid until its next call)."""
    c = tile.shape[2] if tile.ndim == 3 else 1
    rows = tile.reshape(tile.shape[0], -1)
    buf = getattr(_scratch, "buf", None)
    if buf is None or buf.shape != rows.shape:
        buf = _scratch.buf = np.empty_like(rows)
    buf[:, :c] = rows[:, :c]
    np.subtract(rows[:, c:], rows[:, :-c], out=buf[:, c:])  # uint8: wraps mod 256
    return buf


def deflated(tiles: Iterator[np.ndarray], compress: Callable[[np.ndarray], bytes],
             pool: ThreadPoolExecutor, inflight: int = INFLIGHT) -> Iterator[bytes]:
    """``compress(predict(tile))`` of each tile, in order, computed on ``pool`` at most ``inflight`` ahead.

    ``tiles`` is exhausted before the last result is yielded (tifffile stops asking after the last tile
    it expects, and the source finishes the level below when its last strip is taken)."""
    pending: deque[Future] = deque()
    try:
        for tile in tiles:
            pending.append(pool.submit(lambda t: compress(predict(t)), tile))
            if len(pending) >= max(2, inflight):
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for f in pending:
            f.cancel()


def tile_codec(level: int) -> tuple[str, Callable[[np.ndarray], bytes]]:
    """``(name, compress)`` for zlib ``level`` (1, 6, 9): a zlib stream of a tile, by the fastest deflate.

    Level 1: :func:`~.png.deflate_backend` (ISA-L, ~3x libdeflate's speed at its size). Levels 6 and 9
    (smaller files asked for): libdeflate through imagecodecs when installed (what tifffile uses: faster
    and smaller than zlib-ng there), else :func:`~.png.deflate_backend`'s choice."""
    if level > 1 and has_imagecodecs():
        import imagecodecs

        return "libdeflate", lambda a: imagecodecs.deflate_encode(a, level=level)
    name, mod, lvl = deflate_backend(level)
    return name, lambda a: mod.compress(a, lvl)


def _shape(level: StripSource) -> tuple[int, ...]:
    return (level.height, level.width) if level.channels == 1 else (level.height, level.width, level.channels)


class TIFFWriter(Writer):
    """Tiled pyramidal BigTIFF, Deflate-compressed."""

    name = "tiff"
    suffixes = (".tif", ".tiff")
    pyramid = True
    georeferenced = True
    crops = True
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
        # a band of tile rows being cut, the strips fetched ahead, the tiles being encoded
        band = TILE * width * channels
        if self.codec == "zlib":
            return 3 * band + 2 * (INFLIGHT + WORKERS) * TILE * TILE * channels
        return 3 * band + BUFFERSIZE * MAXWORKERS

    def options(self, channels: int, compression: int) -> dict:
        opts: dict = {"photometric": PHOTOMETRIC[channels], "metadata": None,
                      "maxworkers": MAXWORKERS, "buffersize": BUFFERSIZE}
        if channels in (2, 4):
            opts["extrasamples"] = ("unassalpha",)
        if self.codec == "jpeg":
            opts["compression"] = "jpeg"
            opts["compressionargs"] = {"level": min(100, max(1, 100 - int(compression)))}
        elif compression > 0:  # tiles deflated by :func:`deflated`: tifffile only writes the tags
            opts["compression"] = "zlib"
            opts["predictor"] = 2
        return opts

    def write(self, path: Path, source: StripSource, *, compression: int = 5) -> None:
        import tifffile

        self.check(source.width, source.height, source.channels)
        levels = pyramid_of(source, TILE)
        opts = self.options(source.channels, compression)
        icc = getattr(source, "icc_profile", None)
        georef = getattr(source, "georef", None)
        geotags = geotiff_tags(georef) if usable(georef) else []
        pool = None
        try:
            if self.codec == "zlib" and compression > 0:
                _, compress = tile_codec(zlib_level(compression))
                pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="dezoomify_nb-tiff")
            with atomic_output(path) as f, contextlib.ExitStack() as stack:
                # a map: the pyramid goes to a temporary beside the output, then is laid out as a COG
                out = stack.enter_context(
                    tempfile.NamedTemporaryFile(prefix=".dezoomify-cog-", suffix=".tif", dir=Path(path).parent)) \
                    if geotags else f
                with tifffile.TiffWriter(out, bigtiff=True) as tw:
                    for i, level in enumerate(levels):
                        # reduced levels are top-level IFDs marked reduced-resolution (NewSubfileType 1), as
                        # libvips and COG write them: OpenSlide walks top-level IFDs only (not SubIFDs)
                        extra = {"software": "dezoomify_nb", "extratags": geotags} if i == 0 else {"subfiletype": 1}
                        if icc:
                            extra["iccprofile"] = icc
                        data = _tiles(level, TILE)
                        if pool is not None:
                            data = deflated(data, compress, pool)
                        tw.write(data, shape=_shape(level), dtype=np.uint8, tile=(TILE, TILE), **opts, **extra)
                if geotags:
                    relayout(out, f)
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
            close_pyramid(levels)


class TIFFJPEGWriter(TIFFWriter):
    """Tiled pyramidal BigTIFF, JPEG-compressed (needs ``imagecodecs``)."""

    name = "tiff-jpeg"
    suffixes = ()
    codec = "jpeg"
