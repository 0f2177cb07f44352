"""JPEG and the other Pillow formats: round trips, limits checked before any download, memory budget."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image, ImageCms

from dezoomify_nb.errors import ImageTooLargeError, UnsupportedFormatError, WriterError
from dezoomify_nb.writers import writer_for
from dezoomify_nb.writers.base import ArraySource
from dezoomify_nb.writers.pillow import JPEGWriter, PillowWriter, memory_budget


def smooth_image(h: int, w: int, c: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    chans = [128 + 100 * np.sin(x / 37) * np.cos(y / 23), 255 * x / w, 255 * y / h, 200 - 50 * np.cos((x + y) / 50)]
    return np.clip(np.stack(chans[:c], axis=2), 0, 255).astype(np.uint8)


def noise(h: int, w: int, c: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, c), dtype=np.uint8)


def read_back(path) -> tuple[np.ndarray, SimpleNamespace]:
    with Image.open(path) as im:
        im.load()
        a = np.asarray(im)
        meta = SimpleNamespace(format=im.format, mode=im.mode, size=im.size, info=dict(im.info))
    return (a[:, :, None] if a.ndim == 2 else a), meta


class ExplodingSource:
    """A source that must never be read (the check has to fail first)."""

    def __init__(self, width, height, channels=3):
        self.width, self.height, self.channels = width, height, channels
        self.mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[channels]
        self.icc_profile = None

    def strips(self):
        raise AssertionError("the source was read although the image is too large")


@pytest.fixture
def icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


# -- JPEG ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("channels,mode", [(1, "L"), (2, "L"), (3, "RGB"), (4, "RGB")])
def test_jpeg_round_trip_small_error(tmp_path, channels, mode):
    a = smooth_image(333, 517, channels)
    path = tmp_path / "out.jpg"
    JPEGWriter().write(path, ArraySource(a, 37))
    b, im = read_back(path)
    assert im.format == "JPEG" and im.mode == mode and im.size == (517, 333)
    expected = a[:, :, :1] if channels <= 2 else a[:, :, :3]  # alpha dropped
    assert np.abs(b.astype(int) - expected.astype(int)).mean() < 3


@pytest.mark.parametrize("compression,quality", [(5, 95), (0, 100), (100, 1), (150, 1), (-5, 100), (60, 40)])
def test_jpeg_quality_mapping(compression, quality):
    assert JPEGWriter().save_options(compression)["quality"] == quality
    assert JPEGWriter().save_options(compression)["optimize"] is False


def test_jpeg_compression_changes_size(tmp_path):
    a = smooth_image(200, 200, 3)
    sizes = []
    for c in (0, 50, 95):
        p = tmp_path / f"q{c}.jpg"
        JPEGWriter().write(p, ArraySource(a), compression=c)
        sizes.append(p.stat().st_size)
    assert sizes[0] > sizes[1] > sizes[2]


def test_jpeg_icc_profile(tmp_path, icc):
    path = tmp_path / "icc.jpeg"
    JPEGWriter().write(path, ArraySource(smooth_image(40, 40, 3), icc_profile=icc))
    _, im = read_back(path)
    assert im.info["icc_profile"] == icc


def test_jpeg_too_large_raises_before_download(tmp_path):
    w = JPEGWriter()
    w.check(65_500, 10, 3)  # the real libjpeg limit still passes
    with pytest.raises(ImageTooLargeError) as e:
        w.check(65_501, 10, 3)
    assert "65,500" in str(e.value)
    assert "PNG" in e.value.hint and "TIFF" in e.value.hint
    path = tmp_path / "huge.jpg"
    with pytest.raises(ImageTooLargeError):
        w.write(path, ExplodingSource(10, 70_000))
    assert list(tmp_path.iterdir()) == []


def test_memory_budget_env(monkeypatch):
    monkeypatch.setenv("DEZOOMIFY_NB_MEMORY_BUDGET", "123456")
    assert memory_budget() == 123456
    monkeypatch.setenv("DEZOOMIFY_NB_MEMORY_BUDGET", "8G")
    assert memory_budget() == 8 * 2**30
    monkeypatch.setenv("DEZOOMIFY_NB_MEMORY_BUDGET", "1.5MiB")
    assert memory_budget() == 3 * 2**19
    monkeypatch.setenv("DEZOOMIFY_NB_MEMORY_BUDGET", "none")
    assert memory_budget() is None
    monkeypatch.setenv("DEZOOMIFY_NB_MEMORY_BUDGET", "lots")
    with pytest.raises(WriterError):
        memory_budget()
    monkeypatch.delenv("DEZOOMIFY_NB_MEMORY_BUDGET")
    assert memory_budget() is None or memory_budget() > 0


def test_memory_budget_refuses_before_download(tmp_path, monkeypatch):
    monkeypatch.setenv("DEZOOMIFY_NB_MEMORY_BUDGET", str(4 * 1000 * 1000 - 1))
    w = JPEGWriter()
    with pytest.raises(ImageTooLargeError) as e:
        w.check(1000, 1000, 3)  # 4 B/px in Pillow: 4,000,000 bytes
    assert "PNG" in e.value.hint and "DEZOOMIFY_NB_MEMORY_BUDGET" in e.value.hint
    w.check(1000, 999, 3)
    w.check(2000, 1999, 1)  # L is 1 B/px
    path = tmp_path / "big.jpg"
    with pytest.raises(ImageTooLargeError):
        w.write(path, ExplodingSource(2000, 2000))
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ImageTooLargeError):
        PillowWriter("TIFF").check(2000, 2000, 4)
    writer_for(".tif").check(2000, 2000, 4)  # the TIFF writer streams: no budget to exceed


def test_default_budget_is_a_quarter_of_the_ram_at_most_4_gib(monkeypatch):
    monkeypatch.delenv("DEZOOMIFY_NB_MEMORY_BUDGET", raising=False)
    psutil = pytest.importorskip("psutil")
    assert memory_budget() == pytest.approx(min(psutil.virtual_memory().total / 4, 4 * 2**30), rel=0.01)


class FailingSource(ArraySource):
    def strips(self):
        it = super().strips()
        yield next(it)
        raise RuntimeError("tile server gone")


@pytest.mark.parametrize("ext", ["jpg", "tif", "webp", "bmp"])
def test_atomic_no_file_when_source_fails(tmp_path, ext):
    path = tmp_path / f"fail.{ext}"
    with pytest.raises(RuntimeError):
        writer_for(path).write(path, FailingSource(smooth_image(100, 20, 3), 10))
    assert list(tmp_path.iterdir()) == []


def test_save_failure_is_a_writer_error_and_leaves_nothing(tmp_path, monkeypatch):
    def broken_save(self, fp, format=None, **params):  # noqa: A002
        fp.write(b"half an image")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    path = tmp_path / "x.jpg"
    with pytest.raises(WriterError, match="disk full"):
        JPEGWriter().write(path, ArraySource(smooth_image(10, 10, 3)))
    assert list(tmp_path.iterdir()) == []


# -- other Pillow formats ----------------------------------------------------------------------------


@pytest.mark.parametrize("ext,fmt", [("tif", "TIFF"), ("tiff", "TIFF"), ("bmp", "BMP"), ("webp", "WEBP"),
                                     ("png", None), ("tga", "TGA"), ("jp2", "JPEG2000")])
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_lossless_formats_pixel_exact(tmp_path, ext, fmt, channels):
    a = noise(77, 133, channels)
    path = tmp_path / f"out.{ext}"
    writer = writer_for(path)
    writer.write(path, ArraySource(a, 10), compression=30)
    b, im = read_back(path)
    assert im.size == (133, 77)
    if fmt:
        assert im.format == fmt
    # formats without grey+alpha (or alpha) get the nearest mode they support: colour must be exact,
    # alpha too when the file has it (Pillow reads 32-bit BMP as RGB)
    a_colour = a[:, :, :1] if channels <= 2 else a[:, :, :3]
    b_colour = b[:, :, :1] if im.mode in ("L", "LA") or channels <= 2 else b[:, :, :3]
    if im.mode in ("RGB", "RGBA") and channels <= 2:
        assert np.array_equal(b[:, :, 0], b[:, :, 1]) and np.array_equal(b[:, :, 0], b[:, :, 2])
    assert np.array_equal(b_colour, a_colour)
    if channels in (2, 4) and im.mode in ("LA", "RGBA"):
        assert np.array_equal(b[:, :, -1], a[:, :, -1])
    if fmt in ("TIFF", "WEBP", "TGA", "JPEG2000", None):
        assert im.mode == {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[channels] or fmt == "WEBP"


@pytest.mark.parametrize("compression", [0, 5, 80])
def test_tiff_compressions_round_trip(tmp_path, compression):
    a = smooth_image(64, 80, 3)
    path = tmp_path / "t.tif"
    writer_for(path).write(path, ArraySource(a, 16), compression=compression)
    b, im = read_back(path)
    assert np.array_equal(b, a)
    assert ("compression" in im.info and im.info["compression"] != "raw") == (compression > 0)


@pytest.mark.parametrize("ext", ["tif", "webp"])
def test_icc_profile_preserved(tmp_path, icc, ext):
    path = tmp_path / f"icc.{ext}"
    writer_for(path).write(path, ArraySource(smooth_image(30, 30, 3), icc_profile=icc))
    _, im = read_back(path)
    assert im.info.get("icc_profile") == icc


def test_webp_limit():
    w = writer_for("webp")
    w.check(16_383, 16_383, 3) if memory_budget() is None or memory_budget() > 4 * 16_383**2 else None
    with pytest.raises(ImageTooLargeError) as e:
        w.check(16_384, 10, 3)
    assert "16,383" in str(e.value) and "PNG" in e.value.hint


def test_gif_writes(tmp_path):
    a = smooth_image(30, 40, 3)
    path = tmp_path / "a.gif"
    writer_for(path).write(path, ArraySource(a))
    _, im = read_back(path)
    assert im.format == "GIF" and im.size == (40, 30)


def test_unsavable_mode_is_unsupported():
    with pytest.raises(UnsupportedFormatError):
        PillowWriter("XBM").canvas_mode(3)  # XBM is 1-bit only
