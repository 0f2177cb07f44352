"""Writers that build the whole image in a Pillow canvas: JPEG, and every other format Pillow saves.

The canvas is made once with :func:`PIL.Image.new` and the strips are pasted into it, so the
image is held once (Pillow stores RGB at 4 bytes per pixel). :meth:`~PillowWriter.check`
refuses, before any download, an image over the format's size limit or over the memory budget
(:func:`~dezoomify_nb.budget.memory_budget`).
"""

from __future__ import annotations

import errno
import functools
import io
from pathlib import Path

import numpy as np
from PIL import Image

from ..budget import MEMORY_BUDGET_ENV, check_budget, memory_budget
from ..errors import ImageTooLargeError, UnsupportedFormatError, WriterError
from .base import StripSource, Writer, atomic_output, iter_checked_strips

__all__ = ["MEMORY_BUDGET_ENV", "JPEGWriter", "PillowWriter", "memory_budget"]

#: libjpeg's JPEG_MAX_DIMENSION: 65,501 px fails ("broken data stream").
JPEG_MAX_SIDE = 65_500
#: Largest side per Pillow format (None: no limit worth checking before the memory budget).
FORMAT_MAX_SIDE: dict[str, int] = {
    "JPEG": JPEG_MAX_SIDE,
    "MPO": JPEG_MAX_SIDE,
    "WEBP": 16_383,
    "GIF": 65_535,
    "TGA": 65_535,
    "PCX": 65_535,
    "ICO": 256,
    "ICNS": 1024,
    "DDS": 65_535,
    "BLP": 65_535,
    "SGI": 65_535,
    "IM": 2**31 - 1,
}
#: Formats Pillow lists as savable that only save through an extra handler (stubs), or not at all.
UNSAVABLE_FORMATS = frozenset({"BUFR", "GRIB", "HDF5", "FITS", "WMF"})
MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}
#: Bytes per pixel of a Pillow image of that mode (L and P use 1; every other 8-bit mode 4).
PILLOW_BYTES_PER_PIXEL = {"L": 1, "P": 1, "1": 1}
@functools.cache
def _save_mode(fmt: str, mode: str) -> str:
    """The mode the canvas gets for ``fmt``: ``mode`` if the format saves it, else a fallback.

    Found by saving a 2×2 image in memory, so it follows the installed Pillow.
    """
    fallbacks = {"LA": ["LA", "RGBA", "L", "RGB"], "RGBA": ["RGBA", "RGB"], "L": ["L", "RGB"], "RGB": ["RGB"]}
    errors = []
    for candidate in fallbacks[mode]:
        try:
            Image.new(candidate, (2, 2)).save(io.BytesIO(), format=fmt)
            return candidate
        except Exception as exc:  # any failure means "not this mode"
            errors.append(f"{candidate}: {exc}")
    raise UnsupportedFormatError(f"Pillow cannot save {mode} images as {fmt} ({'; '.join(errors)})",
                                 hint="Choose another extension, e.g. .png or .tif.")


def _to_mode(strip: np.ndarray, src: str, dst: str) -> np.ndarray:
    """Convert a ``(h, w, c)`` strip from ``src`` mode to ``dst`` (dropping or adding channels)."""
    if src == dst:
        return strip
    if src == "RGBA" and dst == "RGB" or src == "LA" and dst == "L":
        return strip[:, :, :-1]
    if src == "LA" and dst == "RGBA":
        return strip[:, :, [0, 0, 0, 1]]
    if src in ("L", "LA") and dst == "RGB":
        return np.repeat(strip[:, :, :1], 3, axis=2)
    raise WriterError(f"cannot convert {src} to {dst}")


def _image_from(strip: np.ndarray) -> Image.Image:
    return Image.fromarray(strip[:, :, 0] if strip.shape[2] == 1 else strip)


class PillowWriter(Writer):
    """Any format Pillow saves, chosen by Pillow format name (``"TIFF"``, ``"WEBP"``, ``"BMP"``…)."""

    name = "pillow"

    def __init__(self, format: str, suffixes: tuple[str, ...] = ()) -> None:  # noqa: A002
        self.format = format.upper()
        self.name = self.format.lower()
        self.suffixes = suffixes

    # -- limits -------------------------------------------------------------------------------
    def canvas_mode(self, channels: int) -> str:
        if channels not in MODES:
            raise WriterError(f"cannot write {channels} channels per pixel",
                              hint="Sources must have 1 (L), 2 (LA), 3 (RGB) or 4 (RGBA) channels.")
        return _save_mode(self.format, MODES[channels])

    def max_side(self) -> int | None:
        return FORMAT_MAX_SIDE.get(self.format)

    def memory_estimate(self, width: int, height: int, channels: int) -> int:
        """Bytes Pillow needs for the canvas (4 B/px except for single-band modes)."""
        return PILLOW_BYTES_PER_PIXEL.get(self.canvas_mode(channels), 4) * width * height

    def check(self, width: int, height: int, channels: int) -> None:
        if width < 1 or height < 1:
            raise WriterError(f"cannot write an empty image ({width}×{height} px)")
        limit = self.max_side()
        if limit is not None and max(width, height) > limit:
            raise ImageTooLargeError(
                f"The image is {width}×{height} px, but {self.format} allows at most {limit:,} px per side",
                hint="Save it as PNG (.png, streamed, any size) or TIFF (.tif), "
                     "or choose a smaller zoom level with --max-width/--max-height.")
        check_budget(self.memory_estimate(width, height, channels),
                     f"Writing {width}×{height} px as {self.format} (the whole image in memory)",
                     hint="Save it as PNG or TIFF (.png/.tif are streamed and need little memory), or choose "
                          "a smaller zoom level (--max-width/--max-height)")

    # -- writing ------------------------------------------------------------------------------
    def save_options(self, compression: int) -> dict:
        """Keyword arguments for :meth:`PIL.Image.Image.save` (``compression`` is 0–100)."""
        if self.format == "WEBP":
            # dezoomify-rs's WebP is lossless; compression only trades speed for size.
            return {"lossless": True, "exact": True, "quality": 100 if compression > 60 else 80 if compression >= 20 else 50,
                    "method": 6 if compression > 60 else 4 if compression >= 20 else 2}
        if self.format == "TIFF":
            return {"compression": "tiff_adobe_deflate"} if compression > 0 else {}
        if self.format == "JPEG2000":
            return {"irreversible": False}
        return {}

    def write(self, path: Path, source: StripSource, *, compression: int = 5) -> None:
        width, height, channels = source.width, source.height, source.channels
        self.check(width, height, channels)
        src_mode = MODES[channels]
        mode = self.canvas_mode(channels)
        canvas = Image.new(mode, (width, height))
        try:
            y = 0
            for strip in iter_checked_strips(source):
                canvas.paste(_image_from(_to_mode(strip, src_mode, mode)), (0, y))
                y += strip.shape[0]
            options = self.save_options(compression)
            if self.format == "TIFF" and width * height * channels > 2**32 - 2**28:
                options["big_tiff"] = True  # classic TIFF offsets are 32-bit
            if getattr(source, "icc_profile", None):
                options["icc_profile"] = source.icc_profile
            with atomic_output(path) as f:
                try:
                    canvas.save(f, format=self.format, **options)
                except (OSError, ValueError) as exc:
                    raise WriterError(f"Pillow could not write {path} as {self.format}: {exc}",
                                      hint=_save_hint(exc)) from exc
        finally:
            canvas.close()


def _save_hint(exc: BaseException) -> str:
    """What to do when Pillow's save failed: free space, permissions, or another format."""
    code = getattr(exc, "errno", None)
    if code in (errno.ENOSPC, errno.EDQUOT):
        return "The disk is full: free some space or write to another folder (--logging debug shows details)."
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "The output folder is not writable: choose an output path in a folder you can write to."
    if isinstance(exc, OSError):
        return "Check that the output folder is writable and has free space, or choose another output path."
    return "Pillow refused these pixels in this format: save as PNG (.png) or TIFF (.tif) instead."


class JPEGWriter(PillowWriter):
    """JPEG through Pillow: quality = 100 − compression (default 95), no alpha, ≤ 65,500 px a side."""

    def __init__(self) -> None:
        super().__init__("JPEG", (".jpg", ".jpeg"))
        self.name = "jpeg"

    def canvas_mode(self, channels: int) -> str:
        if channels not in MODES:
            raise WriterError(f"cannot write {channels} channels per pixel")
        return {1: "L", 2: "L", 3: "RGB", 4: "RGB"}[channels]

    def save_options(self, compression: int) -> dict:
        quality = min(100, max(1, 100 - int(compression)))
        # 4:4:4 at high quality (no chroma blur on text or line art), Pillow's 4:2:0 below.
        return {"quality": quality, "subsampling": 0 if quality >= 90 else 2, "optimize": False}
