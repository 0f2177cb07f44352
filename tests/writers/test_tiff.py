"""TIFF writer: tiled BigTIFF pyramid, read back level by level with tifffile (and Pillow)."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from PIL import Image
from pyramid_helpers import JPEG_KINDS, assert_close, expected_level

import dezoomify_nb as dz
from dezoomify_nb.errors import UnsupportedFormatError
from dezoomify_nb.testing import make_test_image
from dezoomify_nb.writers import writer_for, writer_named
from dezoomify_nb.writers.base import ArraySource
from dezoomify_nb.writers.pyramid import pyramid_sizes
from dezoomify_nb.writers.tiff import TILE, TIFFJPEGWriter, TIFFWriter


def read_levels(path) -> list[np.ndarray]:
    with tifffile.TiffFile(path) as tf:
        assert tf.is_bigtiff
        page = tf.pages[0]
        assert page.is_tiled and (page.tilelength, page.tilewidth) == (TILE, TILE)
        return [lv.asarray() for lv in tf.series[0].levels]


@pytest.mark.parametrize("kind", ["iiif2", "dzi-png", "zoomify", "generic"])
def test_round_trip_from_server(server, source, tmp_path, kind):
    path = tmp_path / "out.tif"
    result = dz.open(server.url(kind)).save(path, progress=False)
    assert result.ok and result.path == path
    levels = read_levels(path)
    sizes = pyramid_sizes(source.shape[1], source.shape[0], TILE)
    assert [lv.shape for lv in levels] == [(h, w, 3) for w, h in sizes]
    exact = kind not in JPEG_KINDS
    assert_close(levels[0], source, exact=exact)
    for lv, size in zip(levels[1:], sizes[1:], strict=True):
        assert_close(lv, expected_level(source, size), exact=False, mean=3.0 if exact else 6.0)


def test_remote_levels_are_used_when_exact_halvings(server, source, tmp_path):
    # IIIF levels are ceil(W / 2**k): the lower TIFF level is the server's own level, pixel for pixel
    path = tmp_path / "out.tif"
    dz.open(server.url("iiif2")).save(path, progress=False)
    levels = read_levels(path)
    np.testing.assert_array_equal(levels[1], server.level_image("iiif2", 1))
    assert any("/0,0,512,512/256,256/" in p for p in server.requests)  # a level-1 tile was fetched


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_modes_and_many_levels(tmp_path, channels):
    a = make_test_image(2100, 1300, seed=5, channels=3 if channels != 1 else 1)
    if channels in (2, 4):
        alpha = np.linspace(30, 255, a.shape[1], dtype=np.uint8)[None, :, None].repeat(a.shape[0], 0)
        a = np.concatenate([a[:, :, :1] if channels == 2 else a, alpha], axis=2)
    path = tmp_path / "m.tiff"
    TIFFWriter().write(path, ArraySource(a, strip_height=96), compression=80)
    levels = read_levels(path)
    assert len(levels) == len(pyramid_sizes(2100, 1300, TILE)) == 4
    got = levels[0] if levels[0].ndim == 3 else levels[0][:, :, None]
    np.testing.assert_array_equal(got, a if a.ndim == 3 else a[:, :, None])
    with Image.open(path) as im:  # Pillow reads the full-resolution page too
        assert im.size == (2100, 1300) and im.mode == {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[channels]


def test_deflate_by_default_and_jpeg_option(tmp_path, source):
    plain = tmp_path / "d.tif"
    TIFFWriter().write(plain, ArraySource(source), compression=5)
    with tifffile.TiffFile(plain) as tf:
        assert tf.pages[0].compression == tifffile.COMPRESSION.ADOBE_DEFLATE
        # the reduced level is a top-level IFD marked reduced-resolution, not a SubIFD
        assert len(tf.pages) == 2 and not tf.pages[0].subifds
        assert [p.subfiletype for p in tf.pages] == [0, 1]
    jpeg = tmp_path / "j.tif"
    writer_named("tiff-jpeg").write(jpeg, ArraySource(source), compression=5)
    with tifffile.TiffFile(jpeg) as tf:
        assert tf.pages[0].compression == tifffile.COMPRESSION.JPEG
    levels = read_levels(jpeg)
    assert_close(levels[0], source, exact=False)
    assert jpeg.stat().st_size < plain.stat().st_size


def test_jpeg_tiff_without_imagecodecs_is_refused_up_front(monkeypatch):
    import dezoomify_nb.writers.tiff as tiff

    monkeypatch.setattr(tiff, "has_imagecodecs", lambda: False)
    with pytest.raises(UnsupportedFormatError) as e:
        TIFFJPEGWriter().check(100, 100, 3)
    assert "tiff-jpeg" in e.value.hint


def test_cli_format_and_extension(server, tmp_path):
    from dezoomify_nb.cli import main

    assert main([server.url("iiif2"), str(tmp_path / "a.tif"), "--largest"]) == 0
    assert main([server.url("iiif2"), str(tmp_path / "b"), "--largest", "--format", "tiff"]) == 0
    for name in ("a.tif", "b.tif"):
        assert len(read_levels(tmp_path / name)) == 2
    assert type(writer_for("x.tif")) is TIFFWriter


class FailingSource(ArraySource):
    def strips(self):
        it = super().strips()
        yield next(it)
        raise RuntimeError("tile server gone")


def test_failure_leaves_no_file(tmp_path, source):
    path = tmp_path / "f.tif"
    with pytest.raises(RuntimeError):
        TIFFWriter().write(path, FailingSource(source, strip_height=256))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("height", [1024, 1536])
def test_height_a_multiple_of_the_tile_still_gets_every_level(tmp_path, height):
    # tifffile stops pulling tiles after the last one it expects: the computed levels below must be
    # finished by then (regression: "a lower level was read before the level above it")
    a = make_test_image(1100, height, seed=8)
    path = tmp_path / "exact.tif"
    TIFFWriter().write(path, ArraySource(a, strip_height=256), compression=5)
    levels = read_levels(path)
    assert [lv.shape[:2] for lv in levels] == [(h, w) for w, h in pyramid_sizes(1100, height, TILE)]
    np.testing.assert_array_equal(levels[0], a)
