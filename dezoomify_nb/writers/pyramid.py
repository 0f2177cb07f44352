"""Pyramid helpers shared by the pyramid writers (TIFF, IIIF, OME-Zarr), all streamed.

* :func:`pyramid_sizes` — ``ceil(W / 2**i) × ceil(H / 2**i)`` down to one tile (the IIIF/OSD rule).
* :class:`Halver` — 2×2 box means of rows pushed into it, written to a temporary *spill* file, so a
  level below is computed while the level above is read **once**, in bounded memory (the spill is on
  disk: a 400-MP RGB image spills about 400 MB for all its lower levels together).
* :class:`SpilledLevel` / :class:`ComputedLevel` — a level read back from its spill in strips.
* :func:`pyramid_of` — the levels of any source: its own ``pyramid(tile)`` (a download), else
  :func:`local_pyramid` — any :class:`~.base.StripSource` as a pyramid (tests, single-level sources).
* :func:`bands` — re-cut strips into bands of a fixed height (zarr chunk rows, IIIF tile rows).
* :func:`tile_grid` — cut strips straight into contiguous tiles, row by row (TIFF), one copy per pixel.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from typing import BinaryIO

import numpy as np

from ..errors import WriterError
from .base import PyramidLevel, RawTiles, StripSource, iter_checked_strips

#: bytes read back from a spill file at a time
SPILL_READ_BYTES = 16 << 20


def pyramid_sizes(width: int, height: int, tile: int) -> list[tuple[int, int]]:
    """``[(W, H), (ceil(W/2), ceil(H/2)), …]`` down to the first size within ``tile × tile``."""
    sizes = [(width, height)]
    f = 1
    while sizes[-1][0] > tile or sizes[-1][1] > tile:
        f *= 2
        sizes.append((-(-width // f), -(-height // f)))
    return sizes


def halve(rows: np.ndarray) -> np.ndarray:
    """2×2 box mean (rounded) of an even number of rows; an odd last column is duplicated."""
    h, w, c = rows.shape
    if w % 2:
        rows = np.concatenate([rows, rows[:, -1:]], axis=1)
        w += 1
    a = rows.reshape(h // 2, 2, w // 2, 2, c).astype(np.uint16)
    s = a[:, 0, :, 0] + a[:, 0, :, 1] + a[:, 1, :, 0] + a[:, 1, :, 1]
    return ((s + 2) >> 2).astype(np.uint8)


class Halver:
    """Receives the rows of a ``width × height`` level in order; spills the half-size level."""

    def __init__(self, width: int, height: int, channels: int, *, tmpdir: str | None = None) -> None:
        self.width, self.height, self.channels = width, height, channels
        self.out_width, self.out_height = -(-width // 2), -(-height // 2)
        self.file: BinaryIO = tempfile.TemporaryFile(prefix="dezoomify-pyramid-", dir=tmpdir)
        self.child: Halver | None = None
        self._carry: np.ndarray | None = None
        self._rows_in = 0
        self._rows_out = 0
        self.done = False

    def push(self, strip: np.ndarray) -> None:
        if self.done:
            return
        self._rows_in += strip.shape[0]
        if self._carry is not None:
            strip = np.concatenate([self._carry, strip])
            self._carry = None
        n = strip.shape[0] // 2 * 2
        if strip.shape[0] > n:
            self._carry = strip[n:].copy()
        if n:
            self._emit(halve(strip[:n]))

    def _emit(self, out: np.ndarray) -> None:
        self.file.write(np.ascontiguousarray(out).data)
        self._rows_out += out.shape[0]
        if self.child is not None:
            self.child.push(out)

    def finish(self) -> None:
        if self.done:
            return
        if self._rows_in != self.height:
            raise WriterError(f"pyramid: got {self._rows_in} rows for a level of {self.height}")
        if self._carry is not None:
            self._emit(halve(np.concatenate([self._carry, self._carry])))
            self._carry = None
        self.done = True
        if self.child is not None:
            self.child.finish()

    def read_strips(self, rows_per_strip: int | None = None) -> Iterator[np.ndarray]:
        if not self.done:
            raise WriterError("pyramid: a lower level was read before the level above it")
        rowbytes = self.out_width * self.channels
        step = rows_per_strip or max(1, SPILL_READ_BYTES // rowbytes)
        self.file.seek(0)
        for y in range(0, self.out_height, step):
            n = min(step, self.out_height - y)
            buf = bytearray(n * rowbytes)
            if self.file.readinto(buf) != len(buf):
                raise WriterError("pyramid: the spill file is short")
            yield np.frombuffer(buf, dtype=np.uint8).reshape(n, self.out_width, self.channels)

    def close(self) -> None:
        self.file.close()


class _Level:
    """A pyramid level: pixels from ``source`` (read once, feeding ``halver``) or from a spill."""

    raw: RawTiles | None = None

    def __init__(self, width: int, height: int, channels: int, mode: str, icc: bytes | None) -> None:
        self.width, self.height, self.channels, self.mode = width, height, channels, mode
        self.icc_profile = icc
        self.halver: Halver | None = None  # computes the level below, if it is computed


class SourceLevel(_Level):
    """A level read from a strip source; the first full read also computes the level below."""

    def __init__(self, source: StripSource, halver: Halver | None = None, raw: RawTiles | None = None) -> None:
        super().__init__(source.width, source.height, source.channels, source.mode,
                         getattr(source, "icc_profile", None))
        self.source = source
        self.halver = halver
        self.raw = raw

    def strips(self) -> Iterator[np.ndarray]:
        rows = 0
        for strip in iter_checked_strips(self.source):
            rows += strip.shape[0]
            if self.halver is not None:
                self.halver.push(strip)
                if rows >= self.height:  # finish before the last yield: a consumer that counted its
                    self.halver.finish()  # tiles (tifffile) never asks past the last one
            yield strip
        if self.halver is not None:
            self.halver.finish()


class ComputedLevel(_Level):
    """A level computed by the :class:`Halver` of the level above (readable once that one is read)."""

    def __init__(self, parent: Halver, mode: str, icc: bytes | None) -> None:
        super().__init__(parent.out_width, parent.out_height, parent.channels, mode, icc)
        self.parent = parent

    def strips(self) -> Iterator[np.ndarray]:
        return self.parent.read_strips()


def chain(levels: list[_Level], sizes: list[tuple[int, int]], start: int, mode: str,
          icc: bytes | None, tmpdir: str | None = None) -> None:
    """Append computed levels for ``sizes[start:]`` below ``levels[-1]`` (halvers linked)."""
    above = levels[-1]
    channels = above.channels
    prev_halver: Halver | None = None
    for _ in sizes[start:]:
        h = Halver(above.width if prev_halver is None else prev_halver.out_width,
                   above.height if prev_halver is None else prev_halver.out_height, channels, tmpdir=tmpdir)
        if prev_halver is None:
            above.halver = h
        else:
            prev_halver.child = h
        levels.append(ComputedLevel(h, mode, icc))
        prev_halver = h


def pyramid_of(source: StripSource, tile: int) -> Sequence[PyramidLevel]:
    """``source.pyramid(tile)`` when the source has one, else levels computed locally (2×2 means)."""
    make = getattr(source, "pyramid", None)
    if make is not None:
        return make(tile)
    return local_pyramid(source, tile)


def local_pyramid(source: StripSource, tile: int, *, tmpdir: str | None = None) -> list[_Level]:
    """``source`` and its halvings down to one tile, each computed while the level above is read."""
    sizes = pyramid_sizes(source.width, source.height, tile)
    icc = getattr(source, "icc_profile", None)
    levels: list[_Level] = [SourceLevel(source)]
    chain(levels, sizes, 1, source.mode, icc, tmpdir)
    return levels


def close_pyramid(levels) -> None:
    """Close the spill files of a pyramid (they are deleted on close), stop what a source fetches ahead."""
    for lv in levels:
        if isinstance(lv, ComputedLevel):
            lv.parent.close()
        elif isinstance(lv, SourceLevel):
            close = getattr(lv.source, "close", None)
            if close is not None:
                close()


def bands(strips: Iterator[np.ndarray], height: int) -> Iterator[np.ndarray]:
    """Re-cut strips (any heights) into bands of exactly ``height`` rows (the last may be shorter)."""
    pending: list[np.ndarray] = []
    have = 0
    for strip in strips:
        pending.append(strip)
        have += strip.shape[0]
        while have >= height:
            joined = pending[0] if len(pending) == 1 else np.concatenate(pending)
            yield joined[:height]
            rest = joined[height:]
            pending = [rest] if rest.shape[0] else []
            have = rest.shape[0]
    if have:
        yield pending[0] if len(pending) == 1 else np.concatenate(pending)


def tile_grid(strips: Iterator[np.ndarray], width: int, tile: int, *, pad: bool = False) -> Iterator[np.ndarray]:
    """Contiguous ``(tile, tile, C)`` tiles, left to right then top to bottom, cut from strips of any
    heights. Each pixel is copied once (no band is joined first); edge tiles are padded (``pad``) with
    zeros to the full tile size, or cut to the image."""
    pending: list[np.ndarray] = []
    have = 0

    def row_of_tiles(n: int) -> Iterator[np.ndarray]:
        nonlocal pending, have
        pieces, left, rest = [], n, []
        for i, strip in enumerate(pending):
            take = min(left, strip.shape[0])
            pieces.append(strip[:take])
            left -= take
            if left == 0:
                rest = ([strip[take:]] if take < strip.shape[0] else []) + pending[i + 1 :]
                break
        pending, have = rest, have - n
        channels = pieces[0].shape[2]
        for x in range(0, width, tile):
            w = min(tile, width - x)
            full = n == tile and w == tile
            out = (np.empty if full else np.zeros)((tile, tile, channels) if pad else (n, w, channels),
                                                   dtype=np.uint8)
            y = 0
            for piece in pieces:
                out[y : y + piece.shape[0], :w] = piece[:, x : x + w]
                y += piece.shape[0]
            yield out

    for strip in strips:
        if strip.shape[0]:
            pending.append(strip)
            have += strip.shape[0]
        while have >= tile:
            yield from row_of_tiles(tile)
    if have:
        yield from row_of_tiles(have)
