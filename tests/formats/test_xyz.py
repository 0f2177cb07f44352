"""XYZ / TMS templates: placeholders, probed extent, --bbox (only the tiles under it), georeference, to_xarray."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

import dezoomify_nb as dz
from dezoomify_nb.cli import main
from dezoomify_nb.dezoomers.base import Context
from dezoomify_nb.dezoomers.xyz import XYZDezoomer, canonical, fill, quadkey
from dezoomify_nb.errors import GeoError, MetadataError, WrongDezoomer
from dezoomify_nb.geo import HALF_WORLD, lonlat_to_mercator, mercator_to_lonlat
from dezoomify_nb.testing import make_test_image
from dezoomify_nb.testing.xyz import XyzSite

from .fmt_helpers import FAST, load

TRANSPORTS = ["aiohttp", "httpx"]
DEEP_ORIGIN = (33_000 * 256 + 96, 22_000 * 256 + 48)  # the image's corner at zoom 16: 96 px into column 33000


# --- templates ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("written", "canon"), [
    ("https://t/{z}/{x}/{y}.png", "https://t/{z}/{x}/{y}.png"),
    ("https://t/{{Z}}/{{X}}/{{Y}}.png", "https://t/{z}/{x}/{y}.png"),
    ("https://t/${z}/${x}/${y}.png", "https://t/{z}/{x}/{y}.png"),
    ("https://{s}.t/{zoom}/{x}/{-y}{r}.png", "https://{s}.t/{z}/{x}/{-y}.png"),
    ("https://t/{{z}}/{{x:03}}_{{y:03}}.jpg", "https://t/{z}/{x:3}_{y:3}.jpg"),
    ("https://t/tiles/{quadkey}.jpeg", "https://t/tiles/{q}.jpeg"),
])
def test_placeholder_spellings(written, canon):
    assert canonical(written)[0] == canon


def test_fill_rows_subdomains_and_quadkeys():
    assert fill("https://{s}.t/{z}/{x}/{y}.png", 3, 5, 2) == "https://b.t/3/5/2.png"  # Leaflet: (5 + 2) % 3
    assert fill("https://t/{z}/{x}/{-y}.png", 3, 5, 2) == "https://t/3/5/5.png"  # TMS: 2^3 - 1 - 2
    assert fill("https://t/{z}/{x}/{y}.png", 3, 5, 2, tms=True) == "https://t/3/5/5.png"
    assert fill("https://t/{x:3}_{y:3}", 0, 7, 12) == "https://t/007_012"
    assert quadkey(3, 5, 3) == "213"  # the example of Bing Maps' tile system documentation
    assert fill("https://t/{q}", 3, 3, 5) == "https://t/213"


def test_not_a_template():
    for url in ("https://t/tile_{{X}}_{{Y}}.jpg", "https://t/info.json", "/local/{z}/{x}/{y}.png"):
        with pytest.raises(WrongDezoomer):
            XYZDezoomer().images(Context(url))


# --- the probed extent ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def xyz(_server):
    site = XyzSite(make_test_image(800, 600, seed=61))
    return site, site.install(_server, "/xyz-t")


@pytest.fixture(scope="module")
def deep(_server):
    site = XyzSite(make_test_image(1000, 720, seed=62), zooms=(13, 16), origin_px=DEEP_ORIGIN)
    return site, site.install(_server, "/xyz-deep")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_probed_extent_pixel_exact_and_georeferenced(server, xyz, transport):
    site, template = xyz
    img = dz.open(template, transport=transport, **FAST)
    assert img.dezoomer == "xyz" and [lv.zoom for lv in img.levels] == [3, 2, 1, 0]
    # 1 tile at zoom 0, then at most 8 per zoom (the children of the corner tiles), zoom 4 included
    assert server.count("/xyz-t/") == 1 + 4 + 8 + 8 + 8
    assert img.crs == "EPSG:3857"
    west, south, east, north = site.mercator_bounds()
    for k, lv in enumerate(img.levels):
        assert (lv.col0, lv.row0, lv.col0 + lv.cols - 1, lv.row0 + lv.rows - 1) == site.tile_range(lv.zoom)
        np.testing.assert_array_equal(img.to_dask(level=k).compute(), site.tiles_image(lv.zoom))
        # the geotransform puts the image's corners where the site placed them
        c, a, b, f, d, e = img.transform_of(k)
        x, y, w, h = site.pixel_box(lv.zoom)
        px, py = x - lv.col0 * 256, y - lv.row0 * 256
        assert (b, d) == (0, 0) and a == pytest.approx(-e) == pytest.approx(2 * HALF_WORLD / 256 / 2**lv.zoom)
        assert c + a * px == pytest.approx(west, abs=1e-6) and f + e * py == pytest.approx(north, abs=1e-6)
        assert c + a * (px + w) == pytest.approx(east, abs=1e-6) and f + e * (py + h) == pytest.approx(south, abs=1e-6)
    assert img.transform == img.transform_of(0) == img.image.georef.transform
    assert pickle.loads(pickle.dumps(img.levels[0])) == img.levels[0]


def test_tms_rows(server, xyz):
    site, _ = xyz
    img = dz.open(site.tms_template(server), **FAST)
    assert [lv.zoom for lv in img.levels] == [3, 2, 1, 0] and img.levels[0].tile_url(0, 0).endswith("/tms/3/2/6.png")
    np.testing.assert_array_equal(img.to_dask(level=0).compute(), site.tiles_image(3))


def test_world_layer_stops_at_the_size_cap(server, xyz):
    _, template = xyz
    img = dz.open(template, max_pixels=600 * 1000, **FAST)  # zoom 3 (1024 x 1024) is over it
    assert [lv.zoom for lv in img.levels] == [2, 1, 0]


def test_no_tile_zero_without_a_box_explains(server, deep, tmp_path, capsys):
    _, template = deep
    assert main(["-i", "0", template, str(tmp_path / "x.png")]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("error: ") and "tile 0/0/0" in err[0] and "could not be downloaded" in err[0]
    assert err[1].startswith("hint: ") and "--bbox" in err[1]


# --- a box ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_bbox_opens_a_regional_layer_and_saves_exactly_the_box(server, deep, transport, tmp_path):
    site, template = deep
    bounds = site.lonlat_bounds()
    img = dz.open(template, bbox=bounds, transport=transport, **FAST)
    assert [lv.zoom for lv in img.levels] == [16, 15, 14, 13]
    assert server.count("/xyz-deep/") == 25  # the tile under the box's centre at zooms 0-24, fetched at once
    lv = img.levels[0]
    assert (lv.col0, lv.row0, lv.width, lv.height) == (33_000, 22_000, 96 + 1000, 48 + 720)
    server.reset_requests()
    out = img.save(tmp_path / "box.png", progress=False).path
    np.testing.assert_array_equal(load(out), site.image)  # zoom 16 is the source itself
    assert server.count("/xyz-deep/") == 5 * 3  # the tiles under the box: 5 columns x 3 rows
    # a smaller level: the box in its pixels
    out = img.save(tmp_path / "z14.png", level=2, progress=False).path
    x, y, w, h = site.pixel_box(14)
    np.testing.assert_array_equal(load(out), site.world_image(14, (x, y, x + w, y + h)))


def test_bbox_at_save_fetches_only_the_tiles_under_it(server, deep, tmp_path):
    site, template = deep
    west, south, east, north = site.mercator_bounds()
    res = 2 * HALF_WORLD / 256 / 2**16
    # pixels 300-700 x 100-400 of the image (in the grid: 396-796 x 148-448 of the level: tiles 1-3 x 0-1)
    box = (west + 300 * res, north - 400 * res, west + 700 * res, north - 100 * res)
    img = dz.open(template, bbox=site.lonlat_bounds(), **FAST)
    server.reset_requests()
    out = img.save(tmp_path / "part.png", bbox=box, bbox_crs="EPSG:3857", progress=False).path
    np.testing.assert_array_equal(load(out), site.image[100:400, 300:700])
    requested = sorted(p.rsplit("/", 2)[-2:][0] + "/" + p.rsplit("/", 1)[-1] for p in server.requests)
    assert len(requested) == 3 * 2 and all(p.startswith(("33001/", "33002/", "33003/")) for p in requested)
    # the same box in lon/lat through the CLI: the same pixels
    lon0, lat0 = mercator_to_lonlat(box[0], box[1])
    lon1, lat1 = mercator_to_lonlat(box[2], box[3])
    out2 = tmp_path / "cli.png"
    assert main(["-i", "0", "--bbox", f"{lon0!r},{lat0!r},{lon1!r},{lat1!r}", template, str(out2)]) == 0
    np.testing.assert_array_equal(load(out2), site.image[100:400, 300:700])


def test_bbox_in_another_crs_through_pyproj(server, deep, tmp_path):
    pyproj = pytest.importorskip("pyproj")
    site, template = deep
    to_utm = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:32631", always_xy=True)
    west, south, east, north = site.lonlat_bounds()
    cx, cy = to_utm.transform((west + east) / 2, (south + north) / 2)
    utm = (cx - 300, cy - 200, cx + 300, cy + 200)  # 600 m x 400 m around the centre
    img = dz.open(template, bbox=utm, bbox_crs="EPSG:32631", **FAST)
    x, y, w, h = img.bbox_in_level(utm, 0, "EPSG:32631")
    # the box in Web Mercator, from pyproj independently: its corners' pixels
    to_merc = pyproj.Transformer.from_crs("EPSG:32631", "EPSG:3857", always_xy=True)
    xs, ys = to_merc.transform([utm[0], utm[2], utm[0], utm[2]], [utm[1], utm[1], utm[3], utm[3]])
    c, a, _, f, _, e = img.transform
    assert x == math.floor((min(xs) - c) / a) and y == math.floor((max(ys) - f) / e)
    assert x + w == math.ceil((max(xs) - c) / a) and y + h == math.ceil((min(ys) - f) / e)
    out = img.save(tmp_path / "utm.png", progress=False).path
    assert load(out).shape == (h, w, 3)


def test_bbox_errors(server, xyz, deep, tmp_path, capsys):
    site, template = xyz
    img = dz.open(template, **FAST)
    with pytest.raises(GeoError, match="outside the map"):
        img.bbox_in_level((100, 10, 101, 11), 0)
    with pytest.raises(GeoError, match="east must be greater"):
        img.save(tmp_path / "x.png", bbox=(10, 0, 5, 1))
    not_map = dz.open(server.url("iiif3"), **FAST)
    with pytest.raises(GeoError, match="not a map"):
        not_map.save(tmp_path / "y.png", bbox=(0, 0, 1, 1))
    _, deep_template = deep
    with pytest.raises(MetadataError, match="no tile under the centre of the box"):
        dz.open(deep_template, dezoomer="xyz", bbox=(-170, -80, -169, -79), **FAST)
    with pytest.raises(SystemExit) as exit_:
        main(["--bbox", "1,2,3", template])
    assert exit_.value.code == 2 and "expected a bounding box" in capsys.readouterr().err
    assert main(["-i", "0", "--bbox", "-170.5,-80,-169,-79", deep_template, str(tmp_path / "z.png")]) == 1  # negative
    assert "no tile under the centre of the box" in capsys.readouterr().err
    assert main(["--bbox-crs", "EPSG:3857", template]) == 1
    assert "--bbox-crs without --bbox" in capsys.readouterr().err


# --- xarray -------------------------------------------------------------------------------------------
def test_to_xarray_read_by_rioxarray(server, xyz):
    pytest.importorskip("rioxarray")
    site, template = xyz
    img = dz.open(template, **FAST)
    arr = img.to_xarray(1)
    lv = img.levels[1]
    assert arr.dims == ("y", "x", "band") and arr.shape == (lv.height, lv.width, 3)
    assert list(arr.band.values) == ["R", "G", "B"] and arr.attrs["level"] == 1 and arr.attrs["source_url"] == template
    assert arr.rio.crs.to_epsg() == 3857
    c, a, _, f, _, e = img.transform_of(1)
    assert arr.rio.transform().to_gdal() == pytest.approx((c, a, 0, f, 0, e))
    assert arr.rio.bounds() == pytest.approx((c, f + e * lv.height, c + a * lv.width, f))
    np.testing.assert_allclose(arr.x.values, c + a * (np.arange(lv.width) + 0.5))
    np.testing.assert_allclose(arr.y.values, f + e * (np.arange(lv.height) + 0.5))
    # the data is the same lazy array: a selection by coordinates fetches and gives the right pixels
    west, _, _, north = site.mercator_bounds()
    x0, y0 = lonlat_to_mercator(*mercator_to_lonlat(west, north))
    part = arr.sel(x=slice(x0, None), y=slice(y0, None)).isel(x=slice(0, 50), y=slice(0, 40))
    px, py, _, _ = site.pixel_box(2)
    np.testing.assert_array_equal(part.values, site.world_image(2, (px, py, px + 50, py + 40)))
    tree = img.to_datatree()
    assert [tree[f"level_{i}"]["image"].shape for i in range(4)] == [(lv.height, lv.width, 3) for lv in img.levels]
    assert tree["level_3"]["image"].rio.crs.to_epsg() == 3857


def test_to_xarray_of_an_image_without_georeference(server):
    img = dz.open(server.url("iiif3"), **FAST)
    arr = img.to_xarray(0)
    np.testing.assert_array_equal(arr.x.values, np.arange(img.width))
    assert img.crs is None and img.transform is None and "crs" not in arr.attrs


def test_list_json_gives_the_georeference(server, deep, capsys):
    import json

    site, template = deep
    west, south, east, north = site.lonlat_bounds()
    assert main(["--json", "--bbox", f"{west!r},{south!r},{east!r},{north!r}", template]) == 0
    (rec,) = json.loads(capsys.readouterr().out)["images"]
    assert rec["crs"] == "EPSG:3857" and rec["title"] == "127.0.0.1/xyz-deep"
    lv = rec["levels"][0]
    c, a, _, f, _, e = lv["transform"]
    assert rec["bounds"] == pytest.approx([c, f + e * lv["height"], c + a * lv["width"], f])
    lon0, lat0, lon1, lat1 = rec["lonlat_bounds"]  # the tiles under the box: it, and a part of the first tiles
    assert lon0 <= west < lon0 + 256 * a / 111_000 and lat1 >= north and lon1 == pytest.approx(east)
    assert lat0 == pytest.approx(south)
    assert main(["--list", "--bbox", f"{west!r},{south!r},{east!r},{north!r}", template]) == 0
    text = capsys.readouterr().out
    assert "EPSG:3857  bounds (W, S, E, N): " in text and "lon/lat    bounds (W, S, E, N): " in text


@pytest.mark.network
def test_live_xyz_layer():
    img = dz.open("https://tile.openstreetmap.org/{z}/{x}/{y}.png", bbox=(2.33, 48.85, 2.36, 48.87))
    assert img.dezoomer == "xyz" and img.crs == "EPSG:3857" and img.levels[0].zoom >= 18


def test_bulk_list_of_layers_with_a_box(server, deep, tmp_path, capsys):
    site, template = deep
    west, south, east, north = site.lonlat_bounds()
    listing = tmp_path / "layers.txt"
    listing.write_text(f"{template} First layer\n{template.replace('{z}/{x}/{y}', '{{Z}}/{{X}}/{{Y}}')} Second\n")
    out = tmp_path / "map.png"
    assert main(["-i", "0", "--bulk", str(listing), "--bbox", f"{west!r},{south!r},{east!r},{north!r}", str(out)]) == 0
    saved = sorted(tmp_path.glob("map_*.png"))
    assert len(saved) == 2, capsys.readouterr().err
    for path in saved:
        np.testing.assert_array_equal(load(path), site.image)  # each cut to the box, at full resolution
