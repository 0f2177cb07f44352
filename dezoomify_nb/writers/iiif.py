"""A static IIIF Image API 3 tree (level 0) with a ``viewer.html`` that works from ``file://``.

Layout of ``out.iiif/``::

    info.json                         IIIF Image 3 description (profile level0, tiles, sizes)
    {region}/{size}/0/default.jpg     the tiles, named exactly as OpenSeadragon's IIIF getTileUrl asks
    viewer.html                       OpenSeadragon viewer; open it from disk or serve the folder
    openseadragon.min.js              vendored OpenSeadragon (npm ``openseadragon``, BSD-3-Clause)
    openseadragon-LICENSE.txt

Scale factors are 1, 2, 4… up to the first at which the image fits in one tile; level ``sf`` is
``ceil(W/sf) × ceil(H/sf)``. When the source's tiles are JPEG on the same grid (IIIF and Deep Zoom
sources without overlap, Zoomify levels whose size matches), they are **copied byte for byte** — no
second JPEG generation; other tiles are encoded from pixels (JPEG at quality ``100 - compression``;
PNG for images with transparency). ``info.json``'s ``id`` must be the URL the folder is served at: it
is the folder name until you edit it (``viewer.html`` does not need it).
"""

from __future__ import annotations

import io
import json
import os
import shutil
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import WriterError
from .base import StripSource, Writer, atomic_directory, pyramid_of
from .pyramid import bands, close_pyramid

#: output tile side when the source's tiles cannot be copied
TILE = 512
#: source tile sides accepted for byte copies (OpenSeadragon handles any; keep requests sane)
COPY_TILE_RANGE = (64, 4096)
ROTATION = "0"
OSD_FILES = ("openseadragon.min.js", "openseadragon-LICENSE.txt")
OSD_VERSION = "6.1.1"
ENCODERS = 2


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def level_size(width: int, height: int, sf: int) -> tuple[int, int]:
    return ceil_div(width, sf), ceil_div(height, sf)


def scale_factors(width: int, height: int, tile_w: int, tile_h: int | None = None) -> list[int]:
    """1, 2, 4… up to the first factor at which the whole image fits in one tile."""
    tile_h = tile_h or tile_w
    sfs = [1]
    while ceil_div(width, sfs[-1]) > tile_w or ceil_div(height, sfs[-1]) > tile_h:
        sfs.append(sfs[-1] * 2)
    return sfs


def tile_path(width: int, height: int, tile_w: int, tile_h: int, sf: int, x: int, y: int,
              fmt: str = "jpg") -> str:
    """Path of tile ``(x, y)`` at scale factor ``sf``, as OpenSeadragon's IIIF 3 ``getTileUrl`` builds it.

    A port of ``IIIFTileSource.getTileUrl`` (openseadragon ``src/iiiftilesource.js``, version 3 branch).
    """
    lw, lh = level_size(width, height, sf)
    if lw < tile_w and lh < tile_h:
        size = "max" if (lw == width and lh == height) else f"{lw},{lh}"
        region = "full"
    else:
        rw, rh = tile_w * sf, tile_h * sf  # Math.round(tileWidth / scale) with scale = 1/sf
        rx, ry = x * rw, y * rh
        w, h = min(rw, width - rx), min(rh, height - ry)
        region = "full" if (x == 0 and y == 0 and w == width and h == height) else f"{rx},{ry},{w},{h}"
        sw, sh = min(tile_w, lw - x * tile_w), min(tile_h, lh - y * tile_h)
        size = "max" if (sw == width and sh == height) else f"{sw},{sh}"
    return f"{region}/{size}/{ROTATION}/default.{fmt}"


def info_json(width: int, height: int, tile_w: int, tile_h: int, service_id: str, fmt: str = "jpg") -> dict:
    sfs = scale_factors(width, height, tile_w, tile_h)
    info = {
        "@context": "http://iiif.io/api/image/3/context.json",
        "id": service_id,
        "type": "ImageService3",
        "protocol": "http://iiif.io/api/image",
        "profile": "level0",
        "width": width,
        "height": height,
        "tiles": [{"width": tile_w, "height": tile_h, "scaleFactors": sfs}],
        "sizes": [{"width": w, "height": h} for w, h in (level_size(width, height, sf) for sf in reversed(sfs))],
    }
    if fmt != "jpg":
        info["preferredFormats"] = [fmt]
        info["extraFormats"] = [fmt]
    return info


def _encode(tile: np.ndarray, fmt: str, quality: int) -> bytes:
    im = Image.fromarray(tile[:, :, 0] if tile.shape[2] == 1 else tile)
    buf = io.BytesIO()
    if fmt == "jpg":
        im.save(buf, format="JPEG", quality=quality, subsampling=0 if quality >= 90 else 2)
    else:
        im.save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def _write_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def _encode_write(dest: Path, tile: np.ndarray, fmt: str, quality: int) -> None:
    _write_file(dest, _encode(tile, fmt, quality))


class IIIFWriter(Writer):
    """Static IIIF Image 3 tile tree + OpenSeadragon viewer (a folder)."""

    name = "iiif"
    suffixes = (".iiif",)
    pyramid = True
    directory = True

    def __init__(self, service_id: str | None = None) -> None:
        self.service_id = service_id
        #: tiles copied byte for byte / encoded from pixels by the last :meth:`write`
        self.copied = 0
        self.encoded = 0

    def check(self, width: int, height: int, channels: int) -> None:
        if channels not in (1, 2, 3, 4):
            raise WriterError(f"IIIF: cannot write {channels} channels per pixel")
        if width < 1 or height < 1:
            raise WriterError(f"cannot write an empty image ({width}×{height} px)")

    def memory_estimate(self, width: int, height: int, channels: int) -> int:
        return 4 * TILE * width * channels

    @staticmethod
    def _copy_tile_size(source: StripSource) -> int | None:
        """The source's tile side when its full-resolution JPEG tiles can be copied as they are."""
        make = getattr(source, "pyramid", None)
        if make is None or source.channels not in (3,) or getattr(source, "mode", "RGB") != "RGB":
            return None
        lv = getattr(source, "level", None)
        if lv is None or lv.overlap or lv.tile_width != lv.tile_height:
            return None
        if not COPY_TILE_RANGE[0] <= lv.tile_width <= COPY_TILE_RANGE[1]:
            return None
        return lv.tile_width

    def write(self, path: Path, source: StripSource, *, compression: int = 5) -> None:
        path = Path(path)
        width, height, channels = source.width, source.height, source.channels
        self.check(width, height, channels)
        self.copied = self.encoded = 0
        fmt = "png" if channels in (2, 4) else "jpg"
        quality = min(100, max(1, 100 - int(compression)))
        tile = self._copy_tile_size(source) or TILE
        levels = pyramid_of(source, tile)
        sfs = scale_factors(width, height, tile)
        if len(levels) != len(sfs):
            raise WriterError(f"IIIF: {len(levels)} levels for {len(sfs)} scale factors")
        service_id = self.service_id or path.name
        info = info_json(width, height, tile, tile, service_id, fmt)
        try:
            with atomic_directory(path) as tmp, ThreadPoolExecutor(ENCODERS, "iiif-encode") as pool:
                pending: deque[Future] = deque()

                def submit(fn, *args) -> None:
                    pending.append(pool.submit(fn, *args))
                    while len(pending) > 64:
                        pending.popleft().result()

                for level, sf in zip(levels, sfs, strict=True):
                    raw = getattr(level, "raw", None)
                    copy = (fmt == "jpg" and raw is not None and raw.tile_width == tile and raw.tile_height == tile
                            and raw.format == "JPEG")
                    if copy:
                        for y, (tiles, _) in enumerate(raw.tile_rows()):
                            for x, data in enumerate(tiles):
                                dest = tmp / tile_path(width, height, tile, tile, sf, x, y, fmt)
                                if data is None:  # failed tile: black, so the tree stays complete
                                    th = min(tile, level.height - y * tile)
                                    tw = min(tile, level.width - x * tile)
                                    submit(_encode_write, dest, np.zeros((th, tw, channels), np.uint8), fmt, quality)
                                    self.encoded += 1
                                else:
                                    submit(_write_file, dest, data)
                                    self.copied += 1
                    else:
                        for y, band in enumerate(bands(iter(level.strips()), tile)):
                            for x in range(ceil_div(level.width, tile)):
                                dest = tmp / tile_path(width, height, tile, tile, sf, x, y, fmt)
                                submit(_encode_write, dest, band[:, x * tile : (x + 1) * tile], fmt, quality)
                                self.encoded += 1
                while pending:
                    pending.popleft().result()
                (tmp / "info.json").write_text(json.dumps(info, indent=2))
                self._viewer(tmp, info, getattr(source, "title", None) or path.stem, width, height)
        finally:
            close_pyramid(levels)

    @staticmethod
    def _viewer(folder: Path, info: dict, title: str, width: int, height: int) -> None:
        import html

        templates = resources.files("dezoomify_nb.writers") / "templates"
        page = (templates / "viewer.html").read_text(encoding="utf-8")
        info_js = json.dumps(info).replace("</", "<\\/")
        page = (page.replace("__INFO__", info_js).replace("__TITLE__", html.escape(title))
                .replace("__WIDTH__", str(width)).replace("__HEIGHT__", str(height))
                .replace("__OSD_VERSION__", OSD_VERSION))
        (folder / "viewer.html").write_text(page, encoding="utf-8")
        for name in OSD_FILES:
            with resources.as_file(templates / name) as src:
                shutil.copyfile(src, folder / name)
        os.chmod(folder / "viewer.html", 0o644)
