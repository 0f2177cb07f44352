"""The streaming PNG writer: pixel-exact round trips, chunks, ICC, atomicity, bounded memory."""

from __future__ import annotations

import struct
import tracemalloc
import zlib
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image, ImageCms

from dezoomify_nb.errors import ImageTooLargeError, WriterError
from dezoomify_nb.writers.base import ArraySource
from dezoomify_nb.writers.png import FILTERS, IDAT_MIN, PNGWriter, zlib_level


def random_image(h: int, w: int, c: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, c), dtype=np.uint8)


def smooth_image(h: int, w: int, c: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    chans = [(x * 255 // max(w - 1, 1)), (y * 255 // max(h - 1, 1)), ((x + y) % 256), (255 - x % 256)]
    return np.stack(chans[:c], axis=2).astype(np.uint8)


class UnevenSource:
    """Strips of uneven heights (1, 2, 3, …, cycling) over an array."""

    def __init__(self, array: np.ndarray, icc_profile: bytes | None = None, heights=(1, 7, 2, 64, 3, 33)):
        self.array = array
        self.height, self.width, self.channels = array.shape
        self.mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[self.channels]
        self.icc_profile = icc_profile
        self.heights = heights

    def strips(self) -> Iterator[np.ndarray]:
        y, i = 0, 0
        while y < self.height:
            h = self.heights[i % len(self.heights)]
            yield self.array[y : y + h]
            y += h
            i += 1


def read_back(path) -> np.ndarray:
    with Image.open(path) as im:
        im.load()
        a = np.asarray(im)
    return a[:, :, None] if a.ndim == 2 else a


def chunks(path) -> list[tuple[bytes, bytes]]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    out, pos = [], 8
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]
        (crc,) = struct.unpack(">I", data[pos + 8 + n : pos + 12 + n])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF
        out.append((kind, body))
        pos += 12 + n
    return out


@pytest.mark.parametrize("channels,mode", [(1, "L"), (2, "LA"), (3, "RGB"), (4, "RGBA")])
@pytest.mark.parametrize("size", [(1, 1), (77, 333), (5, 1), (1, 9)])
def test_round_trip_modes_and_odd_sizes(tmp_path, channels, mode, size):
    a = random_image(*size, channels, seed=channels)
    path = tmp_path / "out.png"
    PNGWriter().write(path, UnevenSource(a))
    with Image.open(path) as im:
        assert im.mode == mode
        assert im.size == (size[1], size[0])
    assert np.array_equal(read_back(path), a)


@pytest.mark.parametrize("kind", list(FILTERS))
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_every_filter_round_trips(tmp_path, kind, channels):
    # smooth + noise: exercises every branch of the Paeth predictor and wrap-around arithmetic
    a = (smooth_image(61, 47, channels).astype(np.int16) + random_image(61, 47, channels) % 9).astype(np.uint8)
    path = tmp_path / f"{kind}.png"
    PNGWriter(kind).write(path, UnevenSource(a))
    assert np.array_equal(read_back(path), a)


def test_unknown_filter():
    with pytest.raises(ValueError):
        PNGWriter("best")


@pytest.mark.parametrize("compression", [0, 19, 20, 60, 61, 100])
def test_compression_levels_round_trip(tmp_path, compression):
    a = smooth_image(40, 50, 3)
    path = tmp_path / "c.png"
    PNGWriter().write(path, ArraySource(a, 16), compression=compression)
    assert np.array_equal(read_back(path), a)


def test_zlib_level_mapping():
    assert [zlib_level(c) for c in (0, 5, 19, 20, 40, 60, 61, 100)] == [1, 1, 1, 6, 6, 6, 9, 9]


def test_chunk_layout_and_idat_split(tmp_path):
    a = random_image(1200, 1000, 3)  # 3.6 MB of noise in bands of 75 kB: IDAT chunks of >= 256 KiB
    path = tmp_path / "big.png"
    PNGWriter().write(path, ArraySource(a, 100))
    cs = chunks(path)
    kinds = [k for k, _ in cs]
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and set(kinds[1:-1]) == {b"IDAT"}
    assert kinds.count(b"IDAT") >= 3
    assert struct.unpack(">IIBBBBB", cs[0][1]) == (1000, 1200, 8, 2, 0, 0, 0)
    assert all(IDAT_MIN <= len(body) < IDAT_MIN + 100_000 for k, body in cs[1:-2])
    assert np.array_equal(read_back(path), a)


def test_icc_profile_preserved(tmp_path):
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    path = tmp_path / "icc.png"
    PNGWriter().write(path, ArraySource(smooth_image(20, 30, 3), icc_profile=icc))
    kinds = [k for k, _ in chunks(path)]
    assert kinds.index(b"iCCP") < kinds.index(b"IDAT")
    with Image.open(path) as im:
        assert im.info["icc_profile"] == icc


def test_no_icc_chunk_without_profile(tmp_path):
    path = tmp_path / "plain.png"
    PNGWriter().write(path, ArraySource(smooth_image(3, 3, 3)))
    assert b"iCCP" not in [k for k, _ in chunks(path)]


def test_check_limits():
    w = PNGWriter()
    w.check(2**31 - 1, 1, 3)
    with pytest.raises(ImageTooLargeError) as e:
        w.check(2**31, 1, 3)
    assert e.value.hint
    with pytest.raises(WriterError):
        w.check(0, 10, 3)
    with pytest.raises(WriterError):
        w.check(10, 10, 5)


class FailingSource(UnevenSource):
    def strips(self):
        it = super().strips()
        yield next(it)
        yield next(it)
        raise RuntimeError("network down")


def test_atomic_no_file_when_source_fails(tmp_path):
    path = tmp_path / "fail.png"
    with pytest.raises(RuntimeError, match="network down"):
        PNGWriter().write(path, FailingSource(smooth_image(200, 30, 3)))
    assert list(tmp_path.iterdir()) == []


def test_atomic_keeps_placeholder_and_replaces_it(tmp_path):
    path = tmp_path / "reserved.png"
    path.touch()
    with pytest.raises(RuntimeError):
        PNGWriter().write(path, FailingSource(smooth_image(200, 30, 3)))
    assert list(tmp_path.iterdir()) == [path] and path.stat().st_size == 0
    a = smooth_image(200, 30, 3)
    PNGWriter().write(path, ArraySource(a))
    assert list(tmp_path.iterdir()) == [path]
    assert np.array_equal(read_back(path), a)


@pytest.mark.parametrize(
    "strips,match",
    [
        ([np.zeros((5, 10, 3), np.uint8)], "rows instead of"),  # too few rows
        ([np.zeros((11, 10, 3), np.uint8)], "more than"),  # too many rows
        ([np.zeros((10, 9, 3), np.uint8)], "shape"),  # wrong width
        ([np.zeros((10, 10, 3), np.uint16)], "dtype"),
    ],
)
def test_bad_strips_raise_and_leave_nothing(tmp_path, strips, match):
    class Bad:
        width, height, channels, mode, icc_profile = 10, 10, 3, "RGB", None

        def strips(self):
            yield from strips

    path = tmp_path / "bad.png"
    with pytest.raises(WriterError, match=match):
        PNGWriter().write(path, Bad())
    assert list(tmp_path.iterdir()) == []


class GeneratedSource:
    """A tall RGB image made on the fly, strip by strip (nothing kept)."""

    def __init__(self, width: int, height: int, strip_height: int = 64):
        self.width, self.height, self.channels, self.mode = width, height, 3, "RGB"
        self.icc_profile = None
        self.strip_height = strip_height

    def strips(self):
        x = np.arange(self.width, dtype=np.uint32)
        for y0 in range(0, self.height, self.strip_height):
            h = min(self.strip_height, self.height - y0)
            y = np.arange(y0, y0 + h, dtype=np.uint32)[:, None]
            v = (x[None, :] * 7 + y * 13) ^ (x[None, :] * y)  # textured, partly compressible
            yield np.stack([v, v >> 3, v >> 6], axis=2).astype(np.uint8)


def _peak(tmp_path, height: int) -> int:
    path = tmp_path / f"h{height}.png"
    tracemalloc.start()
    try:
        PNGWriter().write(path, GeneratedSource(4000, height))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    with Image.open(path) as im:
        assert im.size == (4000, height)
    return peak


def test_peak_memory_independent_of_height(tmp_path):
    short = _peak(tmp_path, 200)
    tall = _peak(tmp_path, 4000)
    # 4000 rows are 48 MB of pixels; the writer must hold only a strip or two (~0.8 MB each).
    assert tall < short * 1.25 + 256 * 1024, (short, tall)
    assert tall < 16 * 2**20, tall
