"""Our TIFF pyramid in every reader: OpenSlide, GDAL, libvips, tifffile and Pillow see the same levels
(full size, then each half down to one tile) and the same pixels."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from dezoomify_nb.testing import make_test_image
from dezoomify_nb.writers import writer_named
from dezoomify_nb.writers.base import ArraySource
from dezoomify_nb.writers.pyramid import halve

from .conftest import require, require_module, run

pytestmark = pytest.mark.conformance

W, H = 1500, 1000
SIZES = [(1500, 1000), (750, 500), (375, 250)]  # halvings down to one 512-px tile


def expected_levels(src: np.ndarray) -> list[np.ndarray]:
    levels = [src]
    while len(levels) < len(SIZES):
        a = levels[-1]
        levels.append(halve(a if a.shape[0] % 2 == 0 else np.concatenate([a, a[-1:]])))
    return levels


@pytest.fixture(scope="module", params=["tiff", "tiff-jpeg"])
def written(request, tmp_path_factory):
    src = make_test_image(W, H, seed=21)
    path = tmp_path_factory.mktemp("tiff") / f"{request.param}.tif"
    writer_named(request.param).write(path, ArraySource(src, strip_height=128), compression=5)
    with Image.open(path) as im:  # the reference decode: Pillow (libtiff), every page
        ref = []
        for k in range(len(SIZES)):
            im.seek(k)
            ref.append(np.asarray(im.convert("RGB")))
    return request.param, path, src, ref


def close(got: np.ndarray, want: np.ndarray, codec: str) -> None:
    assert got.shape == want.shape, (got.shape, want.shape)
    if codec == "tiff":
        np.testing.assert_array_equal(got, want)
    else:  # JPEG tiles: decoders may round differently by one
        assert np.abs(got.astype(np.int16) - want.astype(np.int16)).max() <= 2


def test_pillow_and_tifffile(written):
    codec, path, src, ref = written
    assert [r.shape[:2][::-1] for r in ref] == SIZES
    want = expected_levels(src)
    for k, r in enumerate(ref):
        if codec == "tiff":
            np.testing.assert_array_equal(r, want[k])
        else:
            assert np.abs(r.astype(np.int16) - want[k].astype(np.int16)).mean() < 6  # JPEG, 4:2:0
    tifffile = require_module("tifffile")
    with tifffile.TiffFile(path) as tf:
        assert len(tf.pages) == len(SIZES) and not tf.pages[0].subifds
        assert [p.subfiletype for p in tf.pages] == [0, 1, 1]
        levels = tf.series[0].levels
        assert [lv.shape[:2][::-1] for lv in levels] == SIZES
        for k, lv in enumerate(levels):
            close(lv.asarray(), ref[k], codec)


def test_openslide(written):
    codec, path, src, ref = written
    openslide = require_module("openslide", lambda m: f"openslide-python {m.__version__}, "
                                                      f"OpenSlide {m.__library_version__}")
    with openslide.OpenSlide(str(path)) as slide:
        assert slide.properties.get("openslide.vendor") == "generic-tiff"
        assert slide.level_dimensions == tuple(SIZES)
        assert slide.level_downsamples == (1.0, 2.0, 4.0)
        for k, (w, h) in enumerate(SIZES):
            region = np.asarray(slide.read_region((0, 0), k, (w, h)).convert("RGB"))
            close(region, ref[k], codec)


def test_gdal(written, tmp_path):
    codec, path, src, ref = written
    require("gdal_translate")
    info = json.loads(run(require("gdalinfo"), "-json", path).stdout)
    assert info["size"] == [W, H]
    bands = info["bands"]
    assert len(bands) == 3
    for band in bands:
        assert [tuple(o["size"]) for o in band.get("overviews", [])] == SIZES[1:]
    for k in range(len(SIZES)):
        out = tmp_path / f"gdal{k}.png"
        ovr = [] if k == 0 else ["-ovr", str(k - 1)]
        run("gdal_translate", "-q", "-of", "PNG", *ovr, path, out)
        with Image.open(out) as im:
            close(np.asarray(im.convert("RGB")), ref[k], codec)


def test_libvips(written, tmp_path):
    codec, path, src, ref = written
    require("vips")
    assert run(require("vipsheader"), "-f", "n-pages", path).stdout.strip() == str(len(SIZES))
    for k, (w, h) in enumerate(SIZES):
        header = run("vipsheader", f"{path}[page={k}]").stdout
        assert f"{w}x{h}" in header, header
        out = tmp_path / f"vips{k}.png"
        run("vips", "copy", f"{path}[page={k}]", out)
        with Image.open(out) as im:
            close(np.asarray(im.convert("RGB")), ref[k], codec)
