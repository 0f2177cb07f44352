"""IIIF static tree: OpenSeadragon's tile names, byte-for-byte copies, pixels of every level."""

from __future__ import annotations

import io
import json
import urllib.request

import numpy as np
import pytest
from PIL import Image
from pyramid_helpers import JPEG_KINDS, assert_close, expected_level

import dezoomify_nb as dz
from dezoomify_nb.testing import make_test_image
from dezoomify_nb.writers.base import ArraySource
from dezoomify_nb.writers.iiif import IIIFWriter, scale_factors, tile_path


def test_tile_names_follow_openseadragon():
    # hand-derived from OpenSeadragon's IIIFTileSource.getTileUrl (v3): W=1000, H=700, 512 px tiles
    assert scale_factors(1000, 700, 512) == [1, 2]
    assert [tile_path(1000, 700, 512, 512, 1, x, y) for y in range(2) for x in range(2)] == [
        "0,0,512,512/512,512/0/default.jpg", "512,0,488,512/488,512/0/default.jpg",
        "0,512,512,188/512,188/0/default.jpg", "512,512,488,188/488,188/0/default.jpg"]
    # the level that fits in one tile (strictly smaller in both directions): region "full", size "w,h"
    assert tile_path(1000, 700, 512, 512, 2, 0, 0) == "full/500,350/0/default.jpg"
    # one tile covers the whole image: region "full"; size "max" when it is the full size
    assert tile_path(300, 200, 512, 512, 1, 0, 0) == "full/max/0/default.jpg"
    assert tile_path(512, 300, 512, 512, 1, 0, 0) == "full/max/0/default.jpg"
    # odd sizes: ceil at every level, regions in full-resolution pixels
    assert scale_factors(1025, 513, 256) == [1, 2, 4, 8]
    assert tile_path(1025, 513, 256, 256, 4, 1, 0) == "1024,0,1,513/1,129/0/default.jpg"
    assert tile_path(1025, 513, 256, 256, 2, 2, 1) == "1024,512,1,1/1,1/0/default.jpg"
    assert tile_path(1025, 513, 256, 256, 8, 0, 0) == "full/129,65/0/default.jpg"


def level_from_tree(folder, width, height, tile, sf) -> np.ndarray:
    lw, lh = -(-width // sf), -(-height // sf)
    out = np.zeros((lh, lw, 3), np.uint8)
    for y in range(-(-lh // tile)):
        for x in range(-(-lw // tile)):
            with Image.open(folder / tile_path(width, height, tile, tile, sf, x, y)) as im:
                a = np.asarray(im.convert("RGB"))
            assert a.shape == (min(tile, lh - y * tile), min(tile, lw - x * tile), 3)
            out[y * tile : (y + 1) * tile, x * tile : (x + 1) * tile] = a
    return out


def check_tree(folder, source, tile, *, exact_level0_tol: bool) -> dict:
    info = json.loads((folder / "info.json").read_text())
    h, w = source.shape[:2]
    assert info["@context"] == "http://iiif.io/api/image/3/context.json"
    assert info["type"] == "ImageService3" and info["profile"] == "level0"
    assert (info["width"], info["height"]) == (w, h)
    assert info["tiles"] == [{"width": tile, "height": tile, "scaleFactors": scale_factors(w, h, tile)}]
    for sf in info["tiles"][0]["scaleFactors"]:
        got = level_from_tree(folder, w, h, tile, sf)
        want = source if sf == 1 else expected_level(source, (-(-w // sf), -(-h // sf)))
        assert_close(got, want, exact=False, mean=4.0 if sf == 1 and exact_level0_tol else 6.0)
    for name in ("viewer.html", "openseadragon.min.js", "openseadragon-LICENSE.txt"):
        assert (folder / name).is_file()
    check_whole_images(folder, source, info)
    return info


def check_whole_images(folder, source, info) -> None:
    """Level 0 of Image API 3: full/max and every listed size exist, with the pixels of that level."""
    h, w = source.shape[:2]
    max_size = (info.get("maxWidth", w), info.get("maxHeight", h))
    assert max((s["width"], s["height"]) for s in info["sizes"]) == max_size
    for size in [(s["width"], s["height"]) for s in info["sizes"]] + ["max"]:
        spec = "max" if size == "max" else f"{size[0]},{size[1]}"
        with Image.open(folder / f"full/{spec}/0/default.jpg") as im:
            got = np.asarray(im.convert("RGB"))
        want_size = max_size if size == "max" else size
        assert_close(got, source if want_size == (w, h) else expected_level(source, want_size), exact=False)


@pytest.mark.parametrize("kind,copied_levels,n_levels", [("dzi-jpg", 3, 3), ("zoomify", 2, 3)])
def test_byte_copy_when_grids_match(server, source, tmp_path, kind, copied_levels, n_levels):
    # 256 px JPEG tiles without overlap on ceil(W / 2**k) levels: the output grid, so tiles are copied as
    # served. Zoomify has no 250×175 level (it fits one tile): that one is computed from the level above.
    img = dz.open(server.url(kind))
    folder = tmp_path / "a.iiif"
    assert img.save(folder, progress=False).ok
    info = check_tree(folder, source, 256, exact_level0_tol=False)
    assert info["tiles"][0]["scaleFactors"] == [1, 2, 4][:n_levels]
    copied = 0
    for k in range(copied_levels):
        lv = img.levels[k]
        for row in range(lv.rows):
            for col in range(lv.cols):
                with urllib.request.urlopen(lv.tile_url(col, row)) as r:
                    served = r.read()
                assert served[:2] == b"\xff\xd8"
                assert (folder / tile_path(1000, 700, 256, 256, 2**k, col, row)).read_bytes() == served
                copied += 1
    assert copied == 12 + 4 + (1 if copied_levels == 3 else 0)


@pytest.mark.parametrize("kind", ["iiif3", "dzi-png", "generic"])
def test_retiled_sources(server, source, tmp_path, kind):
    # PNG tiles (iiif3, generic) are re-encoded as JPEG; Deep Zoom tiles with overlap are re-cut
    folder = tmp_path / "b.iiif"
    assert dz.open(server.url(kind)).save(folder, progress=False).ok
    tile = {"iiif3": 512, "generic": 256, "dzi-png": 512}[kind]
    check_tree(folder, source, tile, exact_level0_tol=kind not in JPEG_KINDS)


def test_whole_image_files_and_max_width(tmp_path, monkeypatch):
    from dezoomify_nb.writers import iiif

    a = make_test_image(1000, 700, seed=2)
    IIIFWriter().write(tmp_path / "s.iiif", ArraySource(a, strip_height=64))
    info = json.loads((tmp_path / "s.iiif" / "info.json").read_text())
    assert info["sizes"] == [{"width": 500, "height": 350}, {"width": 1000, "height": 700}]
    assert "maxWidth" not in info and "maxHeight" not in info
    check_whole_images(tmp_path / "s.iiif", a, info)
    # past WHOLE_MAX px a side, full/max is the largest level within it, and info.json says so
    monkeypatch.setattr(iiif, "WHOLE_MAX", 600)
    IIIFWriter().write(tmp_path / "m.iiif", ArraySource(a, strip_height=64))
    info = json.loads((tmp_path / "m.iiif" / "info.json").read_text())
    assert info["sizes"] == [{"width": 500, "height": 350}]
    assert (info["maxWidth"], info["maxHeight"]) == (500, 350)
    assert not (tmp_path / "m.iiif" / "full/1000,700").exists()
    check_whole_images(tmp_path / "m.iiif", a, info)


@pytest.mark.parametrize("channels", [3, 4])
def test_reencoded_files_keep_the_icc_profile(tmp_path, channels):
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    a = make_test_image(700, 300, seed=3, channels=channels)
    IIIFWriter().write(tmp_path / "i.iiif", ArraySource(a, strip_height=64, icc_profile=icc))
    files = sorted((tmp_path / "i.iiif").rglob("default.*"))
    assert len(files) >= 4  # tiles, the smaller level, full/max
    for f in files:
        with Image.open(f) as im:
            assert im.info.get("icc_profile") == icc, f


def test_writer_counts_copies_and_encodes(tmp_path):
    a = make_test_image(600, 300, seed=1)
    w = IIIFWriter()
    w.write(tmp_path / "c.iiif", ArraySource(a, strip_height=50), compression=0)
    assert (w.copied, w.encoded) == (0, 3)  # two full-resolution tiles + one 300×150 level
    assert_close(level_from_tree(tmp_path / "c.iiif", 600, 300, 512, 1), a, exact=False, mean=2.0)


def test_alpha_gives_png_tiles(tmp_path):
    a = make_test_image(300, 200, seed=1, channels=4)
    folder = tmp_path / "d.iiif"
    IIIFWriter().write(folder, ArraySource(a))
    info = json.loads((folder / "info.json").read_text())
    assert info["preferredFormats"] == ["png"]
    with Image.open(folder / "full/max/0/default.png") as im:
        assert im.mode == "RGBA" and np.array_equal(np.asarray(im), a)


def test_viewer_embeds_info(tmp_path):
    folder = tmp_path / "e.iiif"
    IIIFWriter().write(folder, ArraySource(make_test_image(100, 80, seed=1)))
    page = (folder / "viewer.html").read_text()
    assert '"width": 100' in page and 'src="openseadragon.min.js"' in page and "__INFO__" not in page
    assert Image.open(io.BytesIO((folder / "full/max/0/default.jpg").read_bytes())).size == (100, 80)



def test_copied_levels_fetch_each_tile_once(server, tmp_path):
    # Deep Zoom, 256 px JPEG tiles: every level is copied, each tile asked for once (the first tile of
    # each level, read for its format and colour profile, is kept for the copy)
    img = dz.open(server.url("dzi-jpg"), min_interval=0)
    server.reset_requests()
    assert img.save(tmp_path / "once.iiif", progress=False).ok
    tiles = [p for p in server.requests if p.endswith(".jpg")]
    assert len(tiles) == len(set(tiles)) == sum(lv.n_tiles for lv in img.levels[:3]) == 17
