"""ArcGIS REST cached services: documents written from the REST reference (tests/data/arcgis), loopback
MapServer (EPSG:2056) and ImageServer (Web Mercator, token, minLOD/maxLOD), --bbox, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

import dezoomify_nb as dz
from dezoomify_nb.cli import main
from dezoomify_nb.dezoomers.arcgis import ArcGISDezoomer, service_url, spatial_reference
from dezoomify_nb.dezoomers.base import Context
from dezoomify_nb.errors import MetadataError, NeedsData, WrongDezoomer
from dezoomify_nb.geo import HALF_WORLD
from dezoomify_nb.resolve import resolve
from dezoomify_nb.testing import make_test_image
from dezoomify_nb.testing.arcgis import TOKEN, ArcGisSite

from .fmt_helpers import FAST, load, read

TRANSPORTS = ["aiohttp", "httpx"]
D = ArcGISDezoomer()
SERVICE = "https://gis.example.org/arcgis/rest/services/Basemaps/World/MapServer"


# --- URLs and documents ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("url", "root", "query"), [
    (SERVICE, SERVICE, ""),
    (SERVICE + "?f=pjson", SERVICE, ""),
    (SERVICE + "/tile/3/2/1", SERVICE, ""),
    (SERVICE + "/WMTS/1.0.0/WMTSCapabilities.xml", SERVICE, ""),
    (SERVICE + "?token=abc&f=json", SERVICE, "token=abc"),
    ("https://h/arcgis/rest/services/Ortho/ImageServer#x", "https://h/arcgis/rest/services/Ortho/ImageServer", ""),
])
def test_service_urls(url, root, query):
    assert service_url(url) == (root, query)


def test_not_arcgis():
    for url in ("https://h/maps/MapServerX", "https://h/wmts/1.0.0/WMTSCapabilities.xml", "https://h/MapServer.json"):
        with pytest.raises(WrongDezoomer):
            D.images(Context(url))


def test_spatial_references():
    assert spatial_reference({"wkid": 102100, "latestWkid": 3857}) == "EPSG:3857"
    assert spatial_reference({"wkid": 102100}) == "EPSG:3857" and spatial_reference({"wkid": 2056}) == "EPSG:2056"
    assert spatial_reference({"wkid": 54004}) == "ESRI:54004"
    assert spatial_reference({"wkt": 'PROJCS["local"]'}) == 'PROJCS["local"]' and spatial_reference({}) is None


def test_world_basemap_keeps_the_lods_under_the_caps():
    meta = SERVICE + "?f=json"
    with pytest.raises(NeedsData) as need:
        D.images(Context(SERVICE))
    assert list(need.value.urls) == [meta]
    (image,) = resolve(SERVICE, pages={meta: read("arcgis/world_mapserver.json")})
    assert image.dezoomer == "arcgis" and image.title == "World Basemap" and image.georef.crs == "EPSG:3857"
    assert [lv.zoom for lv in image.levels] == list(range(11, -1, -1))  # LOD 12 is over 10^12 pixels
    lod11 = image.levels[0]
    assert lod11.tile_url(0, 0) == SERVICE + f"/tile/11/{lod11.row0}/{lod11.col0}"
    res = 2 * HALF_WORLD / 256 / 2**11
    assert (lod11.col0, lod11.width) == (0, math.ceil((20037507.0672 + 20037508.342787) / res))
    assert lod11.row0 == math.floor((20037508.342787 - 19971868.8804) / res) // 256
    assert image.georef.transform == pytest.approx((-20037508.342787, res, 0, 20037508.342787 - lod11.row0 * 256 * res,
                                                    0, -res))


def test_state_plane_in_feet():
    meta = SERVICE + "?f=json"
    (image,) = resolve(SERVICE, pages={meta: read("arcgis/feet_mapserver.json")})
    assert image.title == "County tax maps" and image.georef.crs == "EPSG:2234" and len(image.levels) == 14
    lod = image.levels[0]
    res = 0.520833333333333
    left, top = (1208754.33338469 + 120039300) / res, (96012300 - 722338.938829664) / res
    assert (lod.zoom, lod.col0, lod.row0) == (13, math.floor(left) // 256, math.floor(top) // 256)
    assert lod.col0 * 256 + lod.width == math.ceil((1255525.98410345 + 120039300) / res)
    c, a, _, f, _, e = image.georef.transform
    assert c == pytest.approx(-120039300 + lod.col0 * 256 * res) and f == pytest.approx(96012300 - lod.row0 * 256 * res)


@pytest.mark.parametrize(("doc", "message"), [("elevation_imageserver.json", "LERC data, not pictures"),
                                              ("token_required.json", "answered: Token Required")])
def test_refused_services(doc, message):
    url = SERVICE.replace("MapServer", "ImageServer")
    with pytest.raises(MetadataError, match=message) as err:
        resolve(url, pages={url + "?f=json": read(f"arcgis/{doc}")})
    assert err.value.hint


# --- loopback ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def arcgis(_server):
    site = ArcGisSite(make_test_image(1000, 720, seed=81))
    return site, site.install(_server, "/arcgis-t/rest/services")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_mapserver_every_lod_pixel_exact(server, arcgis, transport):
    site, urls = arcgis
    img = dz.open(urls["plan"], transport=transport, **FAST)
    assert img.dezoomer == "arcgis" and img.title == "Plan (test)" and img.crs == "EPSG:2056"
    assert [lv.zoom for lv in img.levels] == [5, 4, 3, 2, 1, 0]  # 1 m, 1.25 m, 2 m, 2.5 m, 4 m, 5 m
    for k, lv in enumerate(img.levels):
        np.testing.assert_array_equal(img.to_dask(level=k).compute(), site.level_image("plan", lv.zoom))
    xmin, ymin, xmax, ymax = site.extent("plan")
    for k, lv in enumerate(img.levels):  # every level's corners land on the extent (pixels of that LOD)
        c, a, _, f, _, e = img.transform_of(k)
        res = site.spec("plan").resolutions[lv.zoom]
        assert a == -e == res
        assert c + a * lv.width == pytest.approx(xmax) and f + e * lv.height == pytest.approx(ymin)
        assert 0 <= (xmin - c) / res < 256 and 0 <= (f - ymax) / res < 256


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_imageserver_with_token_and_cached_lods(server, arcgis, transport):
    site, urls = arcgis
    img = dz.open(urls["ortho"] + f"?token={TOKEN}", transport=transport, **FAST)
    assert img.title == "Ortho" and img.crs == "EPSG:3857" and [lv.zoom for lv in img.levels] == [18, 17, 16, 15]
    for k, lv in enumerate(img.levels):
        np.testing.assert_array_equal(img.to_dask(level=k).compute(), site.level_image("ortho", lv.zoom))
    assert all(f"token={TOKEN}" in p for p in server.requests if "/Ortho/" in p)


def test_bbox_in_the_service_crs_and_in_lonlat(server, arcgis, tmp_path):
    site, urls = arcgis
    xmin, ymin, xmax, ymax = site.extent("plan")
    box = (xmin + 200, ymin + 100, xmin + 700, ymin + 500)  # metres of EPSG:2056: pixels 200-700 x 220-620 at 1 m
    img = dz.open(urls["plan"], bbox=box, bbox_crs="EPSG:2056", **FAST)
    server.reset_requests()
    out = img.save(tmp_path / "box.png", progress=False).path
    np.testing.assert_array_equal(load(out), site.image[220:620, 200:700])
    lv = img.levels[0]
    assert server.count("/tile/5/") == lv.cols * lv.rows == 3 * 3  # grid pixels 580-1080 x 480-880
    # the same place asked by its lon/lat corners (pyproj): the box covering that lon/lat box, whose edges are
    # not the grid's (the Swiss grid is turned against the meridians): a few metres larger
    pyproj = pytest.importorskip("pyproj")
    to_lonlat = pyproj.Transformer.from_crs("EPSG:2056", "EPSG:4326", always_xy=True)
    lons, lats = to_lonlat.transform([box[0], box[2]], [box[1], box[3]])
    ll = dz.open(urls["plan"], bbox=(lons[0], lats[0], lons[1], lats[1]), **FAST)
    x, y, w, h = ll.bbox_in_level((lons[0], lats[0], lons[1], lats[1]), 0)
    c, a, _, f, _, e = ll.transform
    assert abs(c + a * x - box[0]) < 30 and abs(f + e * (y + h) - box[1]) < 30 and 500 <= w < 560 and 400 <= h < 460


def test_errors_on_the_command_line(server, arcgis, tmp_path, capsys):
    _, urls = arcgis
    for url, message, hint in ((urls["ortho"], "Token Required", "?token="),
                               (urls["dynamic"], "no tile cache", "cached services")):
        assert main(["-i", "0", url, str(tmp_path / "x.png")]) == 1
        err = capsys.readouterr().err.splitlines()
        assert err[0].startswith("error: ") and message in err[0], err
        assert err[1].startswith("hint: ") and hint in err[1]


@pytest.mark.network
def test_live_arcgis_service():
    img = dz.open("https://services.arcgisonline.com/ArcGIS/rest/services/World_Imagery/MapServer",
                  bbox=(2.33, 48.85, 2.36, 48.87))
    assert img.dezoomer == "arcgis" and img.crs == "EPSG:3857" and img.levels[0].zoom >= 17
