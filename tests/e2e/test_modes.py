"""Odd sizes at every level, and images with alpha or in grayscale."""

import numpy as np
import pytest
from PIL import Image

import dezoomify_nb as dz
from dezoomify_nb.testing import TileServer, make_test_image

FAST = {"min_interval": 0, "retry_delay": 0.01}


@pytest.fixture(scope="module")
def odd_server():
    with TileServer(make_test_image(1001, 703, seed=5), tile_size=128) as server:
        yield server


@pytest.mark.parametrize("kind", ["iiif2", "iiif3", "dzi-png"])
def test_every_level_of_an_odd_sized_image(odd_server, kind):
    img = dz.open(odd_server.url(kind), **FAST)
    for k in range(min(4, len(img.levels))):
        np.testing.assert_array_equal(img.to_dask(level=k).compute(), odd_server.level_image(kind, k))


@pytest.mark.parametrize(("channels", "mode"), [(4, "RGBA"), (1, "L")])
def test_alpha_and_gray_round_trip(tmp_path, channels, mode):
    src = make_test_image(300, 200, seed=2, channels=channels)
    with TileServer(src, tile_size=64) as server:
        img = dz.open(server.url("dzi-png"), mode=mode, **FAST)
        assert img.shape == (200, 300, channels)
        out = img.save(tmp_path / "o.png", progress=False).path
    with Image.open(out) as im:
        assert im.mode == mode
        got = np.asarray(im)
    np.testing.assert_array_equal(got.reshape(src.shape), src)
