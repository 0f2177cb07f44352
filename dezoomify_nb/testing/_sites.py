"""Shared bits of the single-image site emulations (:mod:`.pff`, :mod:`.gap`, :mod:`.nypl`).

Like :class:`~dezoomify_nb.testing.TileServer`, each level image is the full image resized once with
Pillow ``BOX`` to the level size the format defines, and tiles are cut from it; lossless sites encode
tiles as PNG so that downloads can be compared with :meth:`Pyramid.level_image` exactly.
"""

from __future__ import annotations

import io
import threading

import numpy as np
from PIL import Image

from .tileserver import JPEG_QUALITY, LEVEL_FILTER, PNG_COMPRESS_LEVEL

_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


class Pyramid:
    """Level images of ``image`` (``uint8``, ``(H, W)`` or ``(H, W, 1|3|4)``), built on demand."""

    def __init__(self, image: np.ndarray, *, lossless: bool = True) -> None:
        arr = np.asarray(image)
        if arr.dtype != np.uint8:
            raise TypeError(f"image must be uint8, got {arr.dtype}")
        if arr.ndim == 3 and arr.shape[2] == 1:
            arr = arr[:, :, 0]
        if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in _MODES):
            raise ValueError(f"image must have shape (H, W) or (H, W, 1|3|4), got {arr.shape}")
        self.height, self.width = int(arr.shape[0]), int(arr.shape[1])
        self.lossless = lossless
        self.full = Image.fromarray(np.ascontiguousarray(arr), mode=_MODES[1 if arr.ndim == 2 else arr.shape[2]])
        self._levels: dict[tuple[int, int], Image.Image] = {(self.width, self.height): self.full}
        self._lock = threading.Lock()

    def level(self, size: tuple[int, int]) -> Image.Image:
        with self._lock:
            img = self._levels.get(size)
            if img is None:
                img = self._levels[size] = self.full.resize(size, LEVEL_FILTER)
        return img

    def level_array(self, size: tuple[int, int]) -> np.ndarray:
        return np.asarray(self.level(size))

    def tile(self, size: tuple[int, int], box: tuple[int, int, int, int]) -> bytes:
        """The encoded crop ``box`` = ``(x0, y0, x1, y1)`` of the level of ``size``."""
        img = self.level(size).crop(box)
        buf = io.BytesIO()
        if self.lossless:
            img.save(buf, "PNG", compress_level=PNG_COMPRESS_LEVEL)
        else:
            (img.convert("RGB") if img.mode == "RGBA" else img).save(buf, "JPEG", quality=JPEG_QUALITY)
        return buf.getvalue()

    @property
    def content_type(self) -> str:
        return "image/png" if self.lossless else "image/jpeg"
