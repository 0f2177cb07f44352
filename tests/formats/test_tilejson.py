"""TileJSON: documents from the 3.0.0 spec (tests/data/tilejson), loopback layers (xyz, tms, relative), --bbox."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image as PILImage

import dezoomify_nb as dz
from dezoomify_nb.dezoomers.base import Context
from dezoomify_nb.dezoomers.tilejson import TileJSONDezoomer, parse
from dezoomify_nb.errors import MetadataError, NeedsData, WrongDezoomer
from dezoomify_nb.geo import HALF_WORLD, MAX_LAT, lonlat_to_mercator
from dezoomify_nb.resolve import resolve
from dezoomify_nb.testing import make_test_image
from dezoomify_nb.testing.tilejson import TileJsonSite

from .fmt_helpers import FAST, load, read

TRANSPORTS = ["aiohttp", "httpx"]
D = TileJSONDezoomer()


def _png(w: int = 256, h: int = 256) -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", (w, h)).save(buf, "PNG")
    return buf.getvalue()


# --- documents written from the spec -------------------------------------------------------------------
def test_raster_document_from_the_spec():
    url = "https://tiles.example.org/cassini/tiles.json"
    doc = json.loads(read("tilejson/raster.json"))
    template, tms, minzoom, maxzoom, bounds, name = parse(url, doc)
    assert template == "https://a.tiles.example.org/cassini/{z}/{x}/{y}.jpg" and not tms
    assert (minzoom, maxzoom, bounds, name) == (5, 12, (1.9, 48.6, 2.8, 49.1), "Carte de Cassini (1750-1815), feuille 1")
    # the tile under the bounds' centre at minzoom gives the tile size: one request before the levels
    with pytest.raises(NeedsData) as need:
        D.images(Context(url, {url: read("tilejson/raster.json")}))
    (probe,) = need.value.urls
    assert probe == "https://a.tiles.example.org/cassini/5/16/11.jpg"
    (image,) = resolve(url, pages={url: read("tilejson/raster.json"), probe: _png()})
    assert image.dezoomer == "tilejson" and [lv.zoom for lv in image.levels] == list(range(12, 4, -1))
    z12 = image.levels[0]
    res = 2 * HALF_WORLD / 256 / 2**12
    west, south = lonlat_to_mercator(1.9, 48.6)
    east, north = lonlat_to_mercator(2.8, 49.1)
    assert z12.col0 == int((west + HALF_WORLD) / res) // 256 and z12.row0 == int((HALF_WORLD - north) / res) // 256
    assert z12.col0 * 256 + z12.width == -(-(east + HALF_WORLD) // res)  # ends exactly at the east edge
    assert z12.row0 * 256 + z12.height == -(-(HALF_WORLD - south) // res)
    assert image.georef.crs == "EPSG:3857" and image.georef.transform[0] == -HALF_WORLD + z12.col0 * 256 * res


def test_vector_tiles_are_refused():
    url = "https://tiles.example.org/osm/tiles.json"
    with pytest.raises(MetadataError, match="vector tiles"):
        D.images(Context(url, {url: read("tilejson/vector.json")}))


def test_invalid_values_count_as_absent():
    url = "https://tiles.example.org/world/tilejson.json"
    template, _, minzoom, maxzoom, bounds, name = parse(url, json.loads(read("tilejson/invalid_values.json")))
    assert (minzoom, maxzoom, name) == (0, 30, None) and bounds == (-180, -MAX_LAT, 180, MAX_LAT)
    probe = "https://tiles.example.org/world/0/0/0.png"
    (image,) = resolve(url, pages={url: read("tilejson/invalid_values.json"), probe: _png()})
    assert [lv.zoom for lv in image.levels][:2] == [11, 10] and len(image.levels) == 12  # the size caps
    assert (image.levels[0].width, image.levels[0].height) == (256 << 11, 256 << 11)


def test_not_tilejson():
    with pytest.raises(WrongDezoomer):
        D.images(Context("https://h/iiif/info.json", {"https://h/iiif/info.json": b'{"@context": "x", "tiles": []}'}))
    with pytest.raises(WrongDezoomer):
        D.images(Context("https://h/map/ImageProperties.xml"))


# --- loopback ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def layer(_server):
    site = TileJsonSite(make_test_image(1000, 720, seed=71), zooms=(13, 16), origin_px=(33_000 * 256 + 96, 22_000 * 256 + 48))
    return site, site.install(_server, "/tilejson-t")


def _expected(site, lv) -> np.ndarray:
    x, y, w, h = site.pixel_box(lv.zoom)
    return site.world_image(lv.zoom, (lv.col0 * 256, lv.row0 * 256, x + w, y + h))


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("doc", ["tiles.json", "tms.json", "relative.json"])
def test_every_zoom_pixel_exact(server, layer, transport, doc):
    site, url = layer
    img = dz.open(url.replace("tiles.json", doc), transport=transport, **FAST)
    assert img.dezoomer == "tilejson" and img.title == "Loopback historical map"
    assert [lv.zoom for lv in img.levels] == [16, 15, 14, 13]
    assert server.count("/tilejson-t/") == 2  # the document and one tile (the tile size)
    for k, lv in enumerate(img.levels):
        np.testing.assert_array_equal(img.to_dask(level=k).compute(), _expected(site, lv))
    west, south, east, north = site.mercator_bounds()
    c, a, _, f, _, e = img.transform
    lv = img.levels[0]
    assert c + a * 96 == pytest.approx(west, abs=1e-6) and f + e * 48 == pytest.approx(north, abs=1e-6)
    assert c + a * lv.width == pytest.approx(east, abs=1e-6) and f + e * lv.height == pytest.approx(south, abs=1e-6)


def test_bbox_inside_the_bounds(server, layer, tmp_path):
    site, url = layer
    w, s, e, n = site.lonlat_bounds()
    box = (w + (e - w) * 0.5, s + (n - s) * 0.25, e, s + (n - s) * 0.75)  # the right half, the middle rows
    img = dz.open(url, bbox=box, **FAST)
    x, y, bw, bh = img.bbox_in_level(box, 0)
    server.reset_requests()
    out = img.save(tmp_path / "half.png", progress=False).path
    lv = img.levels[0]
    expected = site.world_image(16, (lv.col0 * 256 + x, lv.row0 * 256 + y, lv.col0 * 256 + x + bw, lv.row0 * 256 + y + bh))
    np.testing.assert_array_equal(load(out), expected)
    assert bw == pytest.approx(500, abs=1) and bh == pytest.approx(360, abs=2)
    assert server.count("/tilejson-t/") == lv.cols * lv.rows  # only the tiles under the box
    with pytest.raises(MetadataError, match="outside the TileJSON layer's bounds"):
        dz.open(url, bbox=(w - 1, s - 1, w - 0.5, s - 0.5), **FAST)
