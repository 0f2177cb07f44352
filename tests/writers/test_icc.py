"""ICC profile (and EXIF) carried from the served tiles to the output files."""

from __future__ import annotations

import io

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageCms

import dezoomify_nb as dz
from dezoomify_nb.lazy.decode import tile_metadata

TILE = 64
W, H = 150, 100


@pytest.fixture(scope="module")
def icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()  # not sRGB: must be carried


@pytest.fixture
def tagged_url(server, icc):
    """A generic tile grid whose PNG tiles carry an ICC profile and EXIF (Artist, Copyright)."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x013B] = "A. Painter"
    exif[0x8298] = "public domain"
    files = {}
    for row in range(-(-H // TILE)):
        for col in range(-(-W // TILE)):
            tile = image[row * TILE : (row + 1) * TILE, col * TILE : (col + 1) * TILE]
            buf = io.BytesIO()
            Image.fromarray(tile).save(buf, format="PNG", icc_profile=icc, exif=exif)
            files[f"tile_{col}_{row}.png"] = buf.getvalue()
    base = server.serve_files("/tagged", files)
    return base + "/tile_{{X}}_{{Y}}.png", image


def test_tile_metadata_reads_icc_and_exif(icc):
    exif = Image.Exif()
    exif[0x013B] = "x"
    for fmt in ("PNG", "JPEG"):
        buf = io.BytesIO()
        Image.new("RGB", (4, 4)).save(buf, format=fmt, icc_profile=icc, exif=exif)
        got_icc, got_exif = tile_metadata(buf.getvalue())
        assert got_icc == icc
        assert got_exif[:2] in (b"II", b"MM")  # TIFF header: no JPEG "Exif\0\0" prefix
    assert tile_metadata(b"not an image") == (None, None)


@pytest.mark.parametrize("ext", ["png", "jpg", "tif"])
def test_icc_carried_to_output(tmp_path, tagged_url, icc, ext):
    url, image = tagged_url
    path = tmp_path / f"out.{ext}"
    assert dz.open(url).save(path, progress=False).ok
    with Image.open(path) as im:
        assert im.info.get("icc_profile") == icc
        a = np.asarray(im.convert("RGB"))
    if ext != "jpg":
        np.testing.assert_array_equal(a, image)
    if ext == "tif":
        with tifffile.TiffFile(path) as tf:
            assert tf.pages[0].tags["InterColorProfile"].value == icc


def test_exif_kept_in_png(tmp_path, tagged_url):
    url, _ = tagged_url
    path = tmp_path / "out.png"
    dz.open(url).save(path, progress=False)
    with Image.open(path) as im:
        exif = im.getexif()
    assert exif[0x013B] == "A. Painter" and exif[0x8298] == "public domain"


def test_no_icc_when_tiles_have_none(server, tmp_path):
    path = tmp_path / "plain.png"
    dz.open(server.url("generic")).save(path, progress=False)
    with Image.open(path) as im:
        assert "icc_profile" not in im.info
