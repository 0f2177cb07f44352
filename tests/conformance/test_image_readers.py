"""Our PNG (own streaming encoder) and JPEG (Pillow) outputs in libvips and Pillow: same size, same pixels,
the source's ICC profile carried (``vips icc_transform``-able: libvips parses it as a profile)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageCms

from dezoomify_nb.testing import make_test_image
from dezoomify_nb.writers import writer_named
from dezoomify_nb.writers.base import ArraySource

from .conftest import require, run

pytestmark = pytest.mark.conformance

W, H = 900, 601


def srgb_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_libvips_and_pillow_read_our_file(tmp_path, fmt):
    require("vips")
    src = make_test_image(W, H, seed=4)
    icc = srgb_profile()
    path = tmp_path / f"out.{'jpg' if fmt == 'jpeg' else 'png'}"
    writer_named(fmt).write(path, ArraySource(src, strip_height=64, icc_profile=icc), compression=5)

    with Image.open(path) as im:
        assert im.size == (W, H)
        assert im.info.get("icc_profile") == icc
        pil = np.asarray(im.convert("RGB"))
    header = run("vipsheader", "-a", path).stdout
    assert f"width: {W}" in header and f"height: {H}" in header, header
    assert f"icc-profile-data: {len(icc)} bytes" in header, header
    # libvips' decode, to PNG, then compared with Pillow's and with the source
    run("vips", "copy", path, tmp_path / "vips.png")
    with Image.open(tmp_path / "vips.png") as im:
        vips = np.asarray(im.convert("RGB"))
    if fmt == "png":
        np.testing.assert_array_equal(pil, src)
        np.testing.assert_array_equal(vips, src)
    else:
        assert np.abs(vips.astype(np.int16) - pil.astype(np.int16)).max() <= 2  # two libjpeg builds
        assert np.abs(pil.astype(np.int16) - src.astype(np.int16)).mean() < 3
    # libvips uses the embedded profile as a colour profile: export through it to sRGB is near identity
    run("vips", "icc_transform", path, tmp_path / "srgb.png", "srgb")
    with Image.open(tmp_path / "srgb.png") as im:
        assert np.abs(np.asarray(im.convert("RGB")).astype(np.int16) - vips.astype(np.int16)).mean() < 2
