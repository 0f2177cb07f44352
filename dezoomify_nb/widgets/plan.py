"""What a download will be, said before it starts: output size, file size and duration estimates, the code.

:func:`tiles_under` counts the tiles a level's box needs; :func:`estimate` turns the measured
:class:`~.rate.Rate` of the image's server (a probe after the preview, then the last download) and the
network pacing (``min_interval``, ``parallelism``) into seconds, and the preview's pixels encoded in the
chosen format into bytes per pixel (and encode seconds per pixel). :func:`code_line` is the exact ``dz.open(…).save(…)`` call doing what Download does.
"""

from __future__ import annotations

import io
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .rate import Rate, net_seconds

if TYPE_CHECKING:
    from ..api import ZoomableImage

#: seconds per tile assumed while nothing was measured (a typical museum server, one request at a time)
DEFAULT_TILE_SECONDS = 0.25
#: pyramid outputs (TIFF pyramid, IIIF folder, OME-Zarr) also hold the levels below: ~1/3 more
PYRAMID_FACTOR = 4 / 3
_JPEG_QUALITY = 95  # the writers' default: 100 - compression (5)


def tiles_under(img: ZoomableImage, level: int, region: tuple[int, int, int, int] | None) -> int:
    """How many tiles of ``level`` the download fetches (those under the region, else all)."""
    lv = img.levels[level]
    if region is None:
        return lv.n_tiles
    x, y, w, h = img.region_in_level(region, level)
    cols = (x + w - 1) // lv.tile_width - x // lv.tile_width + 1
    rows = (y + h - 1) // lv.tile_height - y // lv.tile_height + 1
    return cols * rows


#: format -> (the preview last measured, its measure): the plan is updated at every choice, the preview
#: changes only with the image
_encoded: dict[str, tuple[np.ndarray, tuple[float, float]]] = {}


def encoding(preview: np.ndarray | None, fmt: str) -> tuple[float, float] | None:
    """Bytes per pixel of ``preview`` encoded as the writer of ``fmt`` would, and the wall seconds per pixel
    that takes; None without a preview. PNG: the PNG writer's own filter and deflate (its bands are
    compressed on every core at once); the others: Pillow's JPEG (or PNG for what JPEG cannot hold). Timed
    warm (the best of two: the first call pays for imports and tables, which a download pays once)."""
    if preview is None or preview.size == 0:
        return None
    known = _encoded.get(fmt)
    if known is not None and known[0] is preview:  # measured for this preview already (each plan update asks)
        return known[1]
    pixels = preview.shape[0] * preview.shape[1]
    if fmt == "png":
        from ..writers.png import deflated_size

        def encode() -> int:
            return deflated_size(preview)
        cores = os.cpu_count() or 1
    else:
        from PIL import Image

        pil = Image.fromarray(preview[:, :, 0] if preview.shape[2] == 1 else preview)

        def encode() -> int:
            buf = io.BytesIO()
            if fmt in ("jpeg", "tiff", "iiif") and pil.mode in ("RGB", "L"):
                pil.save(buf, format="JPEG", quality=_JPEG_QUALITY)
            else:
                pil.save(buf, format="PNG", compress_level=6)
            return buf.tell()
        cores = 1
    best = math.inf
    for _ in range(2):
        t0 = time.perf_counter()
        size = encode()
        best = min(best, time.perf_counter() - t0)
    factor = PYRAMID_FACTOR if fmt in ("tiff", "iiif", "ome-zarr") else 1
    measured = size / pixels * factor, best / cores / pixels * factor
    _encoded[fmt] = (preview, measured)
    return measured


@dataclass(frozen=True)
class Estimate:
    width: int
    height: int
    tiles: int
    seconds: float
    measured: bool
    size_bytes: float | None


def estimate(img: ZoomableImage, level: int, region: tuple[int, int, int, int] | None, *, fmt: str,
             measured: Rate | None, preview: np.ndarray | None) -> Estimate:
    """Output size, tiles, seconds and bytes. The seconds: the network's time (:func:`~.rate.net_seconds`:
    the measured latency, else a default, with the download's ``parallelism`` and ``min_interval``) or the
    CPU's (the measured decode of each tile on the cores, the preview's encode time per pixel), the longer."""
    lv = img.levels[level]
    w, h = (img.region_in_level(region, level)[2:] if region is not None else (lv.width, lv.height))
    tiles = tiles_under(img, level, region)
    net = img.net
    latency = measured.latency if measured is not None else DEFAULT_TILE_SECONDS
    seconds = net_seconds(tiles, latency, net.parallelism, net.min_interval)
    enc = encoding(preview, fmt)
    decode = measured.decode if measured is not None else 0.0
    cpu = tiles * decode / max(1, min(os.cpu_count() or 1, net.parallelism)) + (enc[1] * w * h if enc else 0.0)
    return Estimate(w, h, tiles, max(seconds, cpu), measured is not None, None if enc is None else enc[0] * w * h)


def file_size(n: float) -> str:
    """``"830 kB"``, ``"12 MB"``, ``"1.4 GB"`` (powers of 1000)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            v = n / scale
            return f"{v:.1f} {unit}" if v < 10 else f"{v:.0f} {unit}"
    return f"{max(1, math.ceil(n))} B"


def _py(value: Any) -> str:
    """A Python literal: strings in double quotes (JSON's escapes are Python's too)."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_py(k)}: {_py(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        inner = ", ".join(_py(v) for v in value)
        return f"({inner})" if isinstance(value, tuple) else f"[{inner}]"
    return repr(value)


def code_line(url: str, *, image_index: int | None, headers: list[str], open_options: dict[str, Any],
              path: Path | str, level: int, region: tuple[int, int, int, int] | None, fmt: str) -> str:
    """``dz.open("…").save("…", level=…, region=…)``: what Download does, as one runnable line
    (``import dezoomify_nb as dz`` first)."""
    args = [_py(url)]
    if image_index is not None:
        args.append(f"image_index={image_index}")
    if headers:
        pairs = dict(line.split(":", 1) for line in headers)
        args.append(f"headers={_py({k.strip(): v.strip() for k, v in pairs.items()})}")
    args += [f"{k}={_py(v)}" for k, v in open_options.items()]
    save = [_py(str(path)), f"level={level}"]
    if region is not None:
        save.append(f"region={_py(tuple(region))}")
    if fmt:
        save.append(f"format={_py(fmt)}")
    return f"dz.open({', '.join(args)}).save({', '.join(save)})"
