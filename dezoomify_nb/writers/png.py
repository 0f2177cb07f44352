"""Streaming PNG writer: rows are filtered and deflated as strips arrive, on every core.

Rows are cut into bands of a few MiB; each band is filtered and deflated in a worker thread (numpy
and deflate release the GIL), pigz-style: every band is a raw deflate segment primed with the last
32 KiB of the data before it and ended by a sync flush (the last one by the final block), so the
segments joined make **one** zlib stream, framed by the zlib header and the Adler-32 of the whole
data (combined from the bands' own checksums); the segments are the IDAT chunks. Deflate comes from ``isal`` (ISA-L, about 4x stdlib
zlib at level 1 for Pillow's level-6 file size) or ``zlib-ng`` when installed (``pip install
'dezoomify_nb[fast]'``), else the stdlib. Peak memory is bounded by a few bands and one strip,
whatever the image height: a 100,000 px tall PNG needs no more memory than a 1,000 px tall one.
"""

from __future__ import annotations

import os
import struct
import threading
import zlib
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..errors import ImageTooLargeError, WriterError
from .base import StripSource, Writer, atomic_output, iter_checked_strips

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: PNG stores each dimension as a 31-bit unsigned integer.
PNG_MAX_SIDE = 2**31 - 1
#: Colour type by number of channels (8 bits per sample).
COLOUR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}
#: IDAT chunks are the bands' deflate segments, each written as it is; smaller ones are gathered to this
IDAT_MIN = 1 << 18
#: Raw bytes filtered and deflated at once, in one worker thread (one band).
CHUNK_BYTES = 1 << 22
#: Deflate's window: each band is primed with this much of the data before it.
WINDOW = 1 << 15

FILTER_NONE, FILTER_SUB, FILTER_UP, FILTER_AVERAGE, FILTER_PAETH = range(5)
FILTERS = {"none": FILTER_NONE, "sub": FILTER_SUB, "up": FILTER_UP, "average": FILTER_AVERAGE,
           "paeth": FILTER_PAETH}


def zlib_level(compression: int) -> int:
    """dezoomify-rs's mapping of ``--compression`` (0–100) to a zlib level: 0–19 → 1, 20–60 → 6, >60 → 9."""
    if compression < 20:
        return 1
    if compression <= 60:
        return 6
    return 9


def _deflate_modules() -> list[tuple[str, Any]]:
    mods: list[tuple[str, Any]] = []
    try:
        from isal import isal_zlib

        mods.append(("isal", isal_zlib))
    except ImportError:
        pass
    try:
        from zlib_ng import zlib_ng

        mods.append(("zlib-ng", zlib_ng))
    except ImportError:
        pass
    mods.append(("zlib", zlib))
    return mods


def deflate_backend(level: int, prefer: str | None = None) -> tuple[str, Any, int]:
    """``(name, module, its level)`` for zlib ``level`` 1, 6 or 9: the fastest installed deflate.

    Level 1 (the default effort): ISA-L level 2 (Pillow's level-6 size at 35x its speed), else zlib-ng
    level 2, else zlib 1. Levels 6 and 9 (smaller files asked for): zlib-ng, else zlib, at that level.
    ``prefer`` names one backend (``"isal"``, ``"zlib-ng"``, ``"zlib"``) if installed (benchmarks).
    """
    mods = dict(_deflate_modules())
    if prefer is not None and prefer in mods:
        order = [prefer]
    elif level <= 1:
        order = ["isal", "zlib-ng", "zlib"]
    else:
        order = ["zlib-ng", "zlib"]
    name = next(n for n in order if n in mods)
    if name == "isal":
        return name, mods[name], min(3, max(level, 2))
    if name == "zlib-ng" and level <= 1:
        return name, mods[name], 2
    return name, mods[name], level


_BASE = 65521


def adler32_combine(adler1: int, adler2: int, len2: int) -> int:
    """Adler-32 of ``a + b`` from ``adler32(a)``, ``adler32(b)`` and ``len(b)`` (zlib's adler32_combine)."""
    rem = len2 % _BASE
    sum1 = adler1 & 0xFFFF
    sum2 = (rem * sum1) % _BASE
    sum1 += (adler2 & 0xFFFF) + _BASE - 1
    sum2 += ((adler1 >> 16) & 0xFFFF) + ((adler2 >> 16) & 0xFFFF) + _BASE - rem
    sum1 %= _BASE
    sum2 %= _BASE
    return sum1 | (sum2 << 16)


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _encoder_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max(1, os.cpu_count() or 1), thread_name_prefix="dezoomify_nb-png")
        return _pool


if hasattr(os, "register_at_fork"):
    def _after_fork() -> None:
        global _pool, _pool_lock
        _pool, _pool_lock = None, threading.Lock()

    os.register_at_fork(after_in_child=_after_fork)


def _checksums() -> tuple[Any, Any]:
    """``(adler32, crc32)``: the fastest installed (ISA-L's are 6x the stdlib's), same results."""
    mod = _deflate_modules()[0][1]
    return mod.adler32, mod.crc32


_adler32, _crc32 = _checksums()


def write_chunk(f: BinaryIO, kind: bytes, data: bytes | bytearray | memoryview = b"") -> None:
    """Write one PNG chunk (length, type, data, CRC-32 of type + data)."""
    f.write(struct.pack(">I", len(data)))
    f.write(kind)
    f.write(data)
    f.write(struct.pack(">I", _crc32(data, _crc32(kind)) & 0xFFFFFFFF))


def filter_rows(rows: np.ndarray, prev: np.ndarray | None, bpp: int, kind: int) -> np.ndarray:
    """Filter ``rows`` (``(h, rowbytes)`` uint8) with PNG filter ``kind``; ``prev`` is the row above.

    Returns a ``(h, 1 + rowbytes)`` uint8 array ready for deflate (filter byte first). All five
    predictors only look at raw neighbour bytes, so each is a handful of whole-array operations.
    """
    h, n = rows.shape
    out = np.empty((h, n + 1), dtype=np.uint8)
    out[:, 0] = kind
    body = out[:, 1:]
    if kind == FILTER_NONE:
        body[...] = rows
        return out
    if kind == FILTER_SUB:
        body[:, :bpp] = rows[:, :bpp]
        np.subtract(rows[:, bpp:], rows[:, :-bpp], out=body[:, bpp:])
        return out
    if kind == FILTER_UP:  # one pass, no temporary: the default filter
        if prev is None:
            body[0] = rows[0]
        else:
            np.subtract(rows[0], prev, out=body[0])
        np.subtract(rows[1:], rows[:-1], out=body[1:])
        return out
    up = np.empty_like(rows)
    up[0] = 0 if prev is None else prev
    up[1:] = rows[:-1]
    if kind == FILTER_AVERAGE:
        pred = up >> 1
        # floor((a + b) / 2) without overflow: (a >> 1) + (b >> 1) + (a & b & 1)
        a = rows[:, :-bpp]
        b = up[:, bpp:]
        pred[:, bpp:] = (a >> 1) + (b >> 1) + (a & b & 1)
        np.subtract(rows, pred, out=body)
        return out
    # Paeth
    a = np.zeros(rows.shape, dtype=np.int16)
    a[:, bpp:] = rows[:, :-bpp]
    b = up.astype(np.int16)
    c = np.zeros(rows.shape, dtype=np.int16)
    c[:, bpp:] = b[:, :-bpp]
    pa = np.abs(b - c)
    pb = np.abs(a - c)
    pc = np.abs(a + b - 2 * c)
    pred = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
    np.subtract(rows, pred.astype(np.uint8), out=body)
    return out


def deflated_size(pixels: np.ndarray, compression: int = 5, filter: str = "up") -> int:  # noqa: A002
    """The IDAT bytes of ``pixels`` (``(h, w, channels)`` uint8) filtered and deflated as
    :class:`PNGWriter` does (its row filter, its deflate backend at ``compression``), in one band: what an
    estimate of a PNG's size and encode time is made of (the picker's)."""
    h, w, c = pixels.shape
    data = filter_rows(np.ascontiguousarray(pixels).reshape(h, w * c), None, c, FILTERS[filter])
    _, mod, level = deflate_backend(zlib_level(compression))
    z = mod.compressobj(level, zlib.DEFLATED, -15, 8, 0)
    return len(z.compress(data)) + len(z.flush())


class PNGWriter(Writer):
    """8-bit PNG (grey, grey+alpha, RGB, RGBA), written strip by strip.

    ``filter`` is the PNG row filter used for every row. ``"up"`` (the default) is the fastest
    and, on a real JPEG-derived photo, the smallest at zlib level 1 and within 1 % of Paeth at 6; ``"average"``
    and ``"paeth"`` win by 5–7 % on smooth synthetic images at 2–3× the CPU; ``"none"`` is plain.
    """

    name = "png"
    suffixes = (".png",)

    def __init__(self, filter: str = "up", *, deflate: str | None = None) -> None:  # noqa: A002 - PNG's own word
        if filter not in FILTERS:
            raise ValueError(f"unknown PNG filter {filter!r}; choose one of {', '.join(FILTERS)}")
        self.filter = filter
        #: deflate implementation (``"isal"``, ``"zlib-ng"``, ``"zlib"``); None: the fastest installed
        self.deflate = deflate

    def check(self, width: int, height: int, channels: int) -> None:
        if channels not in COLOUR_TYPES:
            raise WriterError(f"PNG cannot store {channels} channels per pixel",
                              hint="Sources must have 1 (L), 2 (LA), 3 (RGB) or 4 (RGBA) channels.")
        if width < 1 or height < 1:
            raise WriterError(f"cannot write an empty image ({width}×{height} px)")
        if max(width, height) > PNG_MAX_SIDE:
            raise ImageTooLargeError(
                f"The image is {width}×{height} px; PNG allows at most {PNG_MAX_SIDE:,} px per side",
                hint="Choose a smaller zoom level (--max-width/--max-height) or save as IIIF tiles.")

    def memory_estimate(self, width: int, height: int, channels: int) -> int:
        """The bands queued or in work (see :meth:`_write_idat`), each with its filtered copy and its
        deflate output (the strips they are cut from are the source's)."""
        rowbytes = width * channels + 1
        band = max(rowbytes, min(CHUNK_BYTES, height * rowbytes))
        return 2 * ((os.cpu_count() or 1) + 2) * band

    def write(self, path: Path, source: StripSource, *, compression: int = 5) -> None:
        width, height, channels = source.width, source.height, source.channels
        self.check(width, height, channels)
        with atomic_output(path) as f:
            f.write(PNG_SIGNATURE)
            write_chunk(f, b"IHDR", struct.pack(">IIBBBBB", width, height, 8, COLOUR_TYPES[channels], 0, 0, 0))
            if getattr(source, "icc_profile", None):
                write_chunk(f, b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(bytes(source.icc_profile), 9))
            if getattr(source, "exif", None):  # TIFF-structured EXIF (no "Exif\0\0" header), before IDAT
                write_chunk(f, b"eXIf", bytes(source.exif))
            self._write_idat(f, source, zlib_level(compression))
            write_chunk(f, b"IEND")

    def _bands(self, source: StripSource) -> Iterator[tuple[np.ndarray, np.ndarray | None, np.ndarray | None]]:
        """``(rows, row above, rows before them)``: raw bands of at most :data:`CHUNK_BYTES`.

        The rows before (enough for :data:`WINDOW` filtered bytes, plus the one above them) let the
        band's worker rebuild the exact data its deflate segment is primed with.
        """
        rowbytes = source.width * source.channels
        keep = -(-WINDOW // (rowbytes + 1)) + 1
        history: np.ndarray | None = None
        for strip in iter_checked_strips(source):
            rows = strip.reshape(strip.shape[0], rowbytes)
            # a quarter strip at most: the bands in work then pin at most two strips in memory
            step = max(1, min(CHUNK_BYTES // rowbytes, -(-rows.shape[0] // 4)))
            for y in range(0, rows.shape[0], step):
                band = rows[y : y + step]
                yield band, (None if history is None else history[-1]), history
                history = band[-keep:] if history is None or band.shape[0] >= keep else \
                    np.concatenate([history, band])[-keep:]

    def _encode_band(self, rows: np.ndarray, above: np.ndarray | None, before: np.ndarray | None,
                     bpp: int, backend: tuple[str, Any, int], last: bool) -> tuple[bytes, int, int]:
        """In a worker thread: filter and deflate one band → ``(segment, adler32, length)``."""
        kind = FILTERS[self.filter]
        data = filter_rows(rows, above, bpp, kind)
        _, mod, level = backend
        zdict = None
        if before is not None:  # the filtered bytes just before this band: the decoder's window
            prior = filter_rows(before[1:], before[0], bpp, kind) if before.shape[0] > 1 else None
            if prior is not None:
                zdict = prior.reshape(-1)[-WINDOW:].tobytes()
        z = mod.compressobj(level, zlib.DEFLATED, -15, 8, 0, zdict) if zdict else \
            mod.compressobj(level, zlib.DEFLATED, -15, 8, 0)
        out = z.compress(data) + z.flush(mod.Z_FINISH if last else mod.Z_SYNC_FLUSH)
        return out, _adler32(data), data.size

    def _write_idat(self, f: BinaryIO, source: StripSource, level: int) -> None:
        backend = deflate_backend(level, self.deflate)
        pool = _encoder_pool()
        depth = pool._max_workers + 1  # bands queued or in work: memory stays a few bands
        pending: deque[Future[tuple[bytes, int, int]]] = deque()
        # the bands' segments become IDAT chunks as they are (no copy into a buffer), small ones gathered;
        # the zlib header goes before the first segment, the Adler-32 after the last one
        head = b"\x78\x01" if level <= 1 else b"\x78\x9c" if level <= 6 else b"\x78\xda"
        held, first = head, True  # held: the data of the next IDAT chunk, not written yet
        adler = 1
        bpp = source.channels

        def drain(n: int) -> None:
            nonlocal adler, held, first
            while len(pending) > n:
                segment, band_adler, size = pending.popleft().result()
                adler = adler32_combine(adler, band_adler, size)
                if first or len(held) < IDAT_MIN:  # small segments are gathered (few chunks)
                    held, first = held + segment, False
                else:
                    write_chunk(f, b"IDAT", held)
                    held = segment

        done_rows = 0
        try:
            for band in self._bands(source):
                done_rows += band[0].shape[0]
                pending.append(pool.submit(self._encode_band, *band, bpp, backend, done_rows >= source.height))
                drain(depth)
            drain(0)
        finally:
            for fut in pending:
                fut.cancel()
        write_chunk(f, b"IDAT", held + struct.pack(">I", adler & 0xFFFFFFFF))
