"""Deflate TIFF: tiles predicted and deflated by the writer itself, read back pixel-exact by every reader."""

from __future__ import annotations

import shutil
import subprocess
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import tifffile
from PIL import Image

from dezoomify_nb.testing import make_test_image
from dezoomify_nb.writers import png
from dezoomify_nb.writers import tiff as tiffmod
from dezoomify_nb.writers.base import ArraySource
from dezoomify_nb.writers.pyramid import pyramid_sizes
from dezoomify_nb.writers.tiff import TILE, TIFFWriter, deflated, predict

MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}


def image(width: int, height: int, channels: int, seed: int = 1) -> np.ndarray:
    a = make_test_image(width, height, seed=seed, channels=1 if channels in (1, 2) else 3)
    if channels in (2, 4):
        alpha = (np.arange(width, dtype=np.uint16) * 7 % 256).astype(np.uint8)
        a = np.concatenate([a, np.broadcast_to(alpha[None, :, None], (height, width, 1))], axis=2)
    return a


def levels_of(path) -> list[np.ndarray]:
    """Every top-level page (``series[0].levels`` is a heuristic that may miss levels of 1-px-high images)."""
    with tifffile.TiffFile(path) as tf:
        assert not tf.pages[0].subifds
        return [p.asarray() for p in tf.pages]


def as3d(a: np.ndarray) -> np.ndarray:
    return a if a.ndim == 3 else a[:, :, None]


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
@pytest.mark.parametrize("size", [(1000, 777), (513, 1), (1, 600), (1100, 1024)])
def test_every_level_pixel_exact(tmp_path, channels, size):
    a = image(*size, channels)
    deflate, raw = tmp_path / "d.tif", tmp_path / "r.tif"
    TIFFWriter().write(deflate, ArraySource(a, strip_height=100), compression=5)
    TIFFWriter().write(raw, ArraySource(a, strip_height=100), compression=0)  # tifffile's own tiles
    got, want = levels_of(deflate), levels_of(raw)
    assert [lv.shape[:2] for lv in got] == [(h, w) for w, h in pyramid_sizes(*size, TILE)]
    np.testing.assert_array_equal(as3d(got[0]), a)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)
    with Image.open(deflate) as im:  # Pillow (libtiff) decodes tiled Deflate + predictor too
        assert im.mode == MODES[channels]
        np.testing.assert_array_equal(as3d(np.asarray(im)), a)


@pytest.mark.parametrize("compression", [5, 40, 80])
def test_tags_say_deflate_with_predictor(tmp_path, compression):
    icc = b"\0" * 128 + b"acsp-fake-profile"
    path = tmp_path / "t.tif"
    TIFFWriter().write(path, ArraySource(image(1300, 700, 3), icc_profile=icc), compression=compression)
    with tifffile.TiffFile(path) as tf:
        assert tf.is_bigtiff
        pages = [lv.pages[0] for lv in tf.series[0].levels]
        assert len(pages) == len(tf.pages) == 3 and not tf.pages[0].subifds
        for i, page in enumerate(pages):
            assert page.compression == tifffile.COMPRESSION.ADOBE_DEFLATE  # 8
            assert page.predictor == tifffile.PREDICTOR.HORIZONTAL  # 2
            assert (page.tilelength, page.tilewidth) == (TILE, TILE)
            assert page.tags["InterColorProfile"].value == icc
            assert page.subfiletype == (0 if i == 0 else 1)
        assert tf.pages[0].software == "dezoomify_nb"
        # each tile is a zlib stream (header + Adler-32), as TIFF compression 8 requires
        fh = tf.filehandle
        fh.seek(pages[0].dataoffsets[0])
        first = fh.read(pages[0].databytecounts[0])
    assert first[0] & 0x0F == 8 and int.from_bytes(first[:2], "big") % 31 == 0


@pytest.mark.parametrize("backend", ["isal", "zlib-ng", "zlib"])
def test_each_deflate_backend_gives_the_same_pixels(tmp_path, monkeypatch, backend):
    if png.deflate_backend(1, prefer=backend)[0] != backend:
        pytest.skip(f"{backend} is not installed")
    used = []

    def pick(level):
        used.append(png.deflate_backend(level, prefer=backend))
        return used[-1]

    monkeypatch.setattr(tiffmod, "deflate_backend", pick)
    a = image(1000, 777, 3)
    path = tmp_path / f"{backend}.tif"
    TIFFWriter().write(path, ArraySource(a), compression=5)
    assert used and used[0][0] == backend
    levels = levels_of(path)
    np.testing.assert_array_equal(levels[0], a)
    raw = tmp_path / "raw.tif"
    TIFFWriter().write(raw, ArraySource(a), compression=0)
    for g, w in zip(levels, levels_of(raw), strict=True):
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("compression", [40, 80])
@pytest.mark.parametrize("libdeflate", [True, False])
def test_smaller_file_levels_libdeflate_or_fallback(tmp_path, monkeypatch, compression, libdeflate):
    if libdeflate and not tiffmod.has_imagecodecs():
        pytest.skip("imagecodecs is not installed")
    monkeypatch.setattr(tiffmod, "has_imagecodecs", lambda: libdeflate)
    name, _ = tiffmod.tile_codec(png.zlib_level(compression))
    assert (name == "libdeflate") == libdeflate
    a = image(1000, 777, 4)
    path = tmp_path / "s.tif"
    TIFFWriter().write(path, ArraySource(a), compression=compression)
    raw = tmp_path / "raw.tif"
    TIFFWriter().write(raw, ArraySource(a), compression=0)
    for g, w in zip(levels_of(path), levels_of(raw), strict=True):
        np.testing.assert_array_equal(g, w)
    assert path.stat().st_size < raw.stat().st_size


def test_predictor_matches_the_tiff_definition():
    rng = np.random.default_rng(0)
    for shape in [(512, 512, 3), (512, 512), (4, 7, 4), (3, 1, 2)]:
        t = rng.integers(0, 256, shape, dtype=np.uint8)
        want = t.astype(np.int16)
        want[:, 1:] = want[:, 1:] - t[:, :-1].astype(np.int16)  # each sample minus the pixel to its left
        np.testing.assert_array_equal(predict(t).reshape(shape), (want % 256).astype(np.uint8))


def _tile_feed(n: int, log: list[str]):
    for i in range(n):
        log.append(f"in{i}")
        yield np.full((8, 8, 3), i, np.uint8)
    log.append("end")


def test_deflated_keeps_order_bounds_tiles_in_flight_and_exhausts_its_input():
    log: list[str] = []
    with ThreadPoolExecutor(2) as pool:
        out = []
        for b in deflated(_tile_feed(50, log), lambda a: zlib.compress(a, 1), pool, inflight=5):
            out.append(b)
            pulled = sum(s.startswith("in") for s in log)
            assert pulled - len(out) <= 5
    assert log[-1] == "end" and len(out) == 50
    for i, b in enumerate(out):
        rows = np.frombuffer(zlib.decompress(b), np.uint8).reshape(8, 24)
        assert (rows[:, :3] == i).all() and (rows[:, 3:] == 0).all()  # first pixel as is, then i - i
    # the input is finished before the last tile is handed out (tifffile never asks past it)
    log.clear()
    with ThreadPoolExecutor(1) as pool:
        gen = deflated(_tile_feed(3, log), lambda a: zlib.compress(a, 1), pool, inflight=8)
        for _ in range(3):
            next(gen)
        assert log[-1] == "end"
        gen.close()


class FailingSource(ArraySource):
    def __init__(self, array, after: int) -> None:
        super().__init__(array, strip_height=64)
        self.after = after

    def strips(self):
        for i, s in enumerate(super().strips()):
            if i == self.after:
                raise RuntimeError("tile server gone")
            yield s


@pytest.mark.parametrize("after", [0, 1, 9, 20])
def test_source_failure_midway_leaves_no_file_and_no_thread(tmp_path, after):
    path = tmp_path / "f.tif"
    with pytest.raises(RuntimeError, match="tile server gone"):
        TIFFWriter().write(path, FailingSource(image(2000, 1400, 3), after), compression=5)
    assert list(tmp_path.iterdir()) == []
    assert not [t for t in threading.enumerate() if t.name.startswith("dezoomify_nb-tiff")]


def test_encoder_failure_leaves_no_file(tmp_path, monkeypatch):
    calls = []

    def broken(level):
        def compress(data, lvl):
            calls.append(1)
            if len(calls) == 7:
                raise MemoryError("no room")
            return zlib.compress(data, lvl)
        return "broken", type("M", (), {"compress": staticmethod(compress)}), level

    monkeypatch.setattr(tiffmod, "deflate_backend", broken)
    path = tmp_path / "e.tif"
    with pytest.raises(MemoryError):
        TIFFWriter().write(path, ArraySource(image(2000, 1400, 3)), compression=5)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(shutil.which("gdalinfo") is None, reason="gdalinfo (gdal-bin) not installed")
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_gdal_checksums_match_uncompressed(tmp_path, channels):
    a = image(1000, 777, channels)
    outs = []
    for name, compression in (("d.tif", 5), ("r.tif", 0)):
        TIFFWriter().write(tmp_path / name, ArraySource(a), compression=compression)
        outs.append(subprocess.run(["gdalinfo", "-checksum", str(tmp_path / name)], capture_output=True,
                                   text=True, check=True).stdout)
    assert "COMPRESSION=DEFLATE" in outs[0] and "COMPRESSION" not in outs[1]
    sums = [[ln.strip() for ln in out.splitlines() if "hecksum=" in ln or "hecksum:" in ln] for out in outs]
    assert sums[0] == sums[1] and len(sums[0]) >= channels  # a band each (+ overviews)
