"""Tile decoding: the simplejpeg fast path gives exactly Pillow's pixels, and falls back where it must."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from dezoomify_nb.lazy import decode
from dezoomify_nb.model import Level, TemplateLevel

simplejpeg = pytest.importorskip("simplejpeg")


def _level(tile: int = 64, width: int = 256, height: int = 256, overlap: int = 0) -> Level:
    return TemplateLevel(width, height, tile, tile, overlap=overlap, template="http://127.0.0.1:1/{col}_{row}.jpg")


def _jpeg(mode: str, size: tuple[int, int] = (64, 64), **save) -> bytes:
    rng = np.random.default_rng(7)
    channels = {"L": 1, "RGB": 3, "CMYK": 4}[mode]
    arr = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    # smooth enough to look like a photograph, with sharp edges too
    arr[: size[1] // 2] //= 4
    im = Image.fromarray(arr[:, :, 0] if channels == 1 else arr, mode)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=85, **save)
    return buf.getvalue()


def _both(data: bytes, level: Level, mode: str, col: int = 0, row: int = 0,
          monkeypatch: pytest.MonkeyPatch | None = None) -> tuple[np.ndarray, np.ndarray]:
    assert monkeypatch is not None
    fast = decode.decode_tile(data, level, col, row, mode)
    monkeypatch.setattr(decode, "_simplejpeg", None)
    slow = decode.decode_tile(data, level, col, row, mode)
    monkeypatch.setattr(decode, "_simplejpeg", simplejpeg)
    return fast, slow


@pytest.mark.parametrize("src, mode", [("RGB", "RGB"), ("L", "RGB"), ("L", "L"), ("RGB", "L"),
                                       ("CMYK", "RGB"), ("RGB", "RGBA"), ("RGB", "LA")])
@pytest.mark.parametrize("save", [{}, {"progressive": True}, {"subsampling": 0}])
def test_fast_path_pixels_equal_pillow(src, mode, save, monkeypatch):
    data = _jpeg(src, **save)
    fast, slow = _both(data, _level(), mode, monkeypatch=monkeypatch)
    assert fast.shape == slow.shape == (64, 64, decode.channels_of(mode))
    np.testing.assert_array_equal(fast, slow)


def test_fast_path_is_taken_for_rgb_jpeg(monkeypatch):
    calls = []
    real = simplejpeg.decode_jpeg
    monkeypatch.setattr(simplejpeg, "decode_jpeg", lambda *a, **k: calls.append(1) or real(*a, **k))
    decode.decode_tile(_jpeg("RGB"), _level(), 0, 0, "RGB")
    assert calls == [1]
    calls.clear()
    decode.decode_tile(_jpeg("CMYK"), _level(), 0, 0, "RGB")  # Pillow converts CMYK
    assert calls == []


def test_edge_tile_and_overlap_cropped_the_same(monkeypatch):
    # a 256x200 level of 64 px tiles with 1 px overlap: the tile (1, 3) is served 66x9 (overlap both sides
    # horizontally, top only vertically, and short at the bottom edge)
    level = _level(width=256, height=200, overlap=1)
    x, y, w, h = level.tile_box(1, 3)
    ox, oy = level.tile_offset(1, 3)
    data = _jpeg("RGB", size=(w + 2, h + oy))
    fast, slow = _both(data, level, "RGB", 1, 3, monkeypatch=monkeypatch)
    assert fast.shape == (64, 64, 3)
    np.testing.assert_array_equal(fast, slow)
    assert not fast[h:].any() and not fast[:, w:].any()  # padded with zeros


def test_truncated_jpeg_still_fails(monkeypatch):
    data = _jpeg("RGB")[:300]
    for lib in (simplejpeg, None):
        monkeypatch.setattr(decode, "_simplejpeg", lib)
        with pytest.raises(Exception):  # noqa: B017 - Pillow's own error: a failed tile, retried
            decode.decode_tile(data, _level(), 0, 0, "RGB")


def test_bomb_header_refused_before_decoding():
    data = bytearray(_jpeg("RGB"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = (60000).to_bytes(2, "big") * 2  # declares 60000x60000
    with pytest.raises(ValueError, match="unreasonable size"):
        decode.decode_tile(bytes(data), _level(), 0, 0, "RGB")
