"""IIIF tile formats against trees made by libvips ``dzsave`` with png tiles, served statically.

* ``--layout iiif --suffix .png`` writes a level-0 v2 info.json (jpg implied) whose profile object says
  ``"formats": ["png"]``: that list is believed, the first png tile is probed, every tile is png, pixels exact.
* ``--layout iiif3 --suffix .png`` says nothing of its format: jpg is asked for (as OpenSeadragon does) and
  refused; ``tile_format="png"`` / ``--tile-format png`` downloads it, pixels exact.
* A jpg tree asked for in png (``--tile-format png``): the probe is refused (404), jpg is used, said once.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

import dezoomify_nb as dz
from dezoomify_nb.cli import main as cli_main
from dezoomify_nb.testing import make_test_image

from .conftest import require, run

W, H = 700, 500
FAST = {"parallelism": 4, "min_interval": 0, "retries": 0, "timeout": 20}


@pytest.fixture(scope="module")
def trees(static_root):
    require("vips")
    root, srv = static_root
    src = make_test_image(W, H, seed=5)
    Image.fromarray(src).save(root / "source.png")
    for name, layout, suffix in (("v2png", "iiif", ".png"), ("v3png", "iiif3", ".png"), ("v3jpg", "iiif3", ".jpg")):
        run("vips", "dzsave", root / "source.png", root / name, "--layout", layout, "--tile-size", "256",
            "--suffix", suffix, "--id", srv.base_url)
    return src, srv


def read_png(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def test_v2_png_tree_says_png(trees, tmp_path):
    src, srv = trees
    info = json.loads((srv.root / "v2png" / "info.json").read_text())
    assert {"formats": ["png"], "qualities": ["default"]} in info["profile"]  # what libvips writes
    srv.reset()
    result = dz.open(srv.url("v2png/info.json"), **FAST).save(tmp_path / "a.png", progress=False)
    np.testing.assert_array_equal(read_png(result.path), src)
    assert all(status == 200 for _, status in srv.log), [e for e in srv.log if e[1] != 200]
    tiles = [p for p in srv.paths() if "/default." in p]
    assert tiles and all(p.endswith("/default.png") for p in tiles)


def test_v3_png_tree_needs_tile_format(trees, tmp_path):
    src, srv = trees
    srv.reset()
    image = dz.open(srv.url("v3png/info.json"), **FAST)
    assert image.levels[0].tile_url(0, 0).endswith("/default.jpg")  # nothing said: jpg, as OpenSeadragon
    with pytest.raises(dz.DownloadError):
        image.save(tmp_path / "nothing.png", progress=False)
    srv.reset()
    out = tmp_path / "b.png"
    assert cli_main([srv.url("v3png/info.json"), str(out), "--largest", "--tile-format", "png", "-i", "0",
                     "-r", "0"]) == 0
    np.testing.assert_array_equal(read_png(out), src)
    assert all(status == 200 for _, status in srv.log), [e for e in srv.log if e[1] != 200]


def test_jpg_tree_asked_in_png_falls_back(trees, tmp_path, caplog):
    src, srv = trees
    srv.reset()
    image = dz.open(srv.url("v3jpg/info.json"), tile_format="png", **FAST)
    assert "refused png tiles (HTTP 404" in caplog.text and "falling back to jpg" in caplog.text
    result = image.save(tmp_path / "c.png", progress=False)
    err = np.abs(read_png(result.path).astype(np.int16) - src.astype(np.int16)).mean()
    buf = io.BytesIO()  # the JPEG noise floor: the whole source at libvips' default quality (75)
    Image.fromarray(src).save(buf, "JPEG", quality=75)
    floor = np.abs(np.asarray(Image.open(buf).convert("RGB")).astype(np.int16) - src.astype(np.int16)).mean()
    assert err < 1.2 * floor + 0.5, (err, floor)
    refused = [p for p, status in srv.log if status != 200]
    assert len(refused) == 1 and refused[0].endswith("/default.png")  # the probe, once
