"""A static IIIF Image API 3 tree (level 0) with a ``viewer.html`` that works from ``file://``.

Layout of ``out.iiif/``::

    info.json                         IIIF Image 3 description (profile level0, tiles, sizes)
    {region}/{size}/0/default.jpg     the tiles, named exactly as OpenSeadragon's IIIF getTileUrl asks
    full/max/0/default.jpg            the whole image at the largest level within WHOLE_MAX px a side
    full/{w},{h}/0/default.jpg        the whole image at each size listed in ``sizes`` (that one and below)
    viewer.html                       OpenSeadragon viewer; open it from disk or serve the folder
    openseadragon.min.js              vendored OpenSeadragon (npm ``openseadragon``, BSD-3-Clause)
    openseadragon-LICENSE.txt

Scale factors are 1, 2, 4… up to the first at which the image fits in one tile; level ``sf`` is
``ceil(W/sf) × ceil(H/sf)``. When the source's tiles are JPEG on the same grid (IIIF and Deep Zoom
sources without overlap, Zoomify levels whose size matches), they are **copied byte for byte** — no
second JPEG generation; other tiles are encoded from pixels (JPEG at quality ``100 - compression``;
PNG for images with transparency). ``info.json``'s ``id`` must be the URL the folder is served at: it
is the folder name until you edit it (``viewer.html`` does not need it).

A valid Image API 3 level-0 service (checked by the IIIF validator): a level-0 client may ask for
``full/max/0/default.jpg`` and for ``full/{w},{h}/0/default.jpg`` at each listed size, so both exist;
``max`` is the full size when the image is within :data:`WHOLE_MAX` px a side, else the largest level
within it, declared by ``maxWidth``/``maxHeight`` (these whole-image files are made from the level's
pixels, so memory stays bounded: one level of at most ``WHOLE_MAX²`` pixels at a time).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import warnings
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import WriterError
from .base import StripSource, Writer, atomic_directory
from .pyramid import bands, close_pyramid, pyramid_of

#: output tile side when the source's tiles cannot be copied
TILE = 512
#: source tile sides accepted for byte copies (OpenSeadragon handles any; keep requests sane)
COPY_TILE_RANGE = (64, 4096)
ROTATION = "0"
OSD_FILES = ("openseadragon.min.js", "openseadragon-LICENSE.txt")
OSD_VERSION = "6.1.1"
ENCODERS = 2
#: sides of the largest level also written as one whole image (``full/max`` and the listed ``sizes``)
WHOLE_MAX = 2048


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


def whole_levels(width: int, height: int, tile_w: int, tile_h: int | None = None) -> list[int]:
    """Scale factors of the levels written as whole images too: those within ``WHOLE_MAX`` (or one tile)."""
    cap_w, cap_h = max(WHOLE_MAX, tile_w), max(WHOLE_MAX, tile_h or tile_w)
    return [sf for sf in scale_factors(width, height, tile_w, tile_h)
            if level_size(width, height, sf)[0] <= cap_w and level_size(width, height, sf)[1] <= cap_h]


def whole_paths(width: int, height: int, sf: int, sf_max: int, fmt: str = "jpg") -> list[str]:
    """The whole-image files of level ``sf``: ``full/{w},{h}``, and ``full/max`` for the largest one."""
    lw, lh = level_size(width, height, sf)
    paths = [f"full/{lw},{lh}/{ROTATION}/default.{fmt}"]
    if sf == sf_max:
        paths.append(f"full/max/{ROTATION}/default.{fmt}")
    return paths


def info_json(width: int, height: int, tile_w: int, tile_h: int, service_id: str, fmt: str = "jpg") -> dict:
    sfs = scale_factors(width, height, tile_w, tile_h)
    whole = whole_levels(width, height, tile_w, tile_h)
    info = {
        "@context": "http://iiif.io/api/image/3/context.json",
        "id": service_id,
        "type": "ImageService3",
        "protocol": "http://iiif.io/api/image",
        "profile": "level0",
        "width": width,
        "height": height,
        "tiles": [{"width": tile_w, "height": tile_h, "scaleFactors": sfs}],
        "sizes": [{"width": w, "height": h} for w, h in (level_size(width, height, sf) for sf in reversed(whole))],
    }
    if whole[0] > 1:  # full/max is a reduced level: say so (Image API 3, 5.3 "maxWidth")
        info["maxWidth"], info["maxHeight"] = level_size(width, height, whole[0])
    if fmt != "jpg":
        info["preferredFormats"] = [fmt]
        info["extraFormats"] = [fmt]
    return info


def _encode(tile: np.ndarray, fmt: str, quality: int, icc: bytes | None = None) -> bytes:
    """A tile as JPEG or PNG, carrying the source's ICC profile (as the copied tiles do)."""
    im = Image.fromarray(tile[:, :, 0] if tile.shape[2] == 1 else tile)
    buf = io.BytesIO()
    extra = {"icc_profile": icc} if icc else {}
    if fmt == "jpg":
        im.save(buf, format="JPEG", quality=quality, subsampling=0 if quality >= 90 else 2, **extra)
    else:
        im.save(buf, format="PNG", compress_level=6, **extra)
    return buf.getvalue()


def _write_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def _encode_write(dest: Path, tile: np.ndarray, fmt: str, quality: int, icc: bytes | None = None) -> None:
    _write_file(dest, _encode(tile, fmt, quality, icc))


def _paste(canvas: np.ndarray, data: bytes, x: int, y: int) -> None:
    """Decode a copied JPEG tile into ``canvas`` at ``(x, y)``; an unreadable tile stays black there."""
    from ..imageformats import open_image

    grey = canvas.shape[2] == 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a bomb-sized header is refused below, not decoded
            with open_image(data) as im:
                if im.width > canvas.shape[1] or im.height > canvas.shape[0]:
                    return  # not a tile of this level: never decode more than the level's size
                a = np.asarray(im.convert("L" if grey else "RGB"))
    except Exception:  # the tile file is copied as served; only the whole-image file misses it
        return
    if grey:
        a = a[:, :, None]
    h, w = min(a.shape[0], canvas.shape[0] - y), min(a.shape[1], canvas.shape[1] - x)
    canvas[y : y + h, x : x + w] = a[:h, :w]


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
        # bands of tiles in flight, and one whole level (at most WHOLE_MAX²) with its encoding
        return 4 * TILE * width * channels + 2 * min(width * height, WHOLE_MAX * WHOLE_MAX) * channels

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
        icc = getattr(source, "icc_profile", None)
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

                whole = whole_levels(width, height, tile)
                for level, sf in zip(levels, sfs, strict=True):
                    raw = getattr(level, "raw", None)
                    copy = (fmt == "jpg" and raw is not None and raw.tile_width == tile and raw.tile_height == tile
                            and raw.format == "JPEG")
                    # the whole level, kept for its full/… files when it is small enough
                    canvas = np.zeros((level.height, level.width, channels), np.uint8) if sf in whole else None
                    rels: set[str] = set()
                    if copy:
                        for y, (tiles, _) in enumerate(raw.tile_rows()):
                            for x, data in enumerate(tiles):
                                rel = tile_path(width, height, tile, tile, sf, x, y, fmt)
                                rels.add(rel)
                                if data is None:  # failed tile: black, so the tree stays complete
                                    th = min(tile, level.height - y * tile)
                                    tw = min(tile, level.width - x * tile)
                                    submit(_encode_write, tmp / rel, np.zeros((th, tw, channels), np.uint8), fmt,
                                           quality, icc)
                                    self.encoded += 1
                                else:
                                    submit(_write_file, tmp / rel, data)
                                    self.copied += 1
                                    if canvas is not None:
                                        _paste(canvas, data, x * tile, y * tile)
                    else:
                        for y, band in enumerate(bands(iter(level.strips()), tile)):
                            if canvas is not None:
                                canvas[y * tile : y * tile + band.shape[0]] = band
                            for x in range(ceil_div(level.width, tile)):
                                rel = tile_path(width, height, tile, tile, sf, x, y, fmt)
                                rels.add(rel)
                                submit(_encode_write, tmp / rel, band[:, x * tile : (x + 1) * tile], fmt, quality, icc)
                                self.encoded += 1
                    if canvas is not None:
                        for rel in whole_paths(width, height, sf, whole[0], fmt):
                            if rel not in rels:  # the one-tile level's tile may be that file already
                                submit(_encode_write, tmp / rel, canvas, fmt, quality, icc)
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
