"""OGC WMTS: capabilities parsing (RESTful, KVP, CRS and axis order, limits, bbox cropping), loopback downloads."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

import dezoomify_nb as dz
from dezoomify_nb.cli import main
from dezoomify_nb.dezoomers._common import parse_xml
from dezoomify_nb.dezoomers.base import Context
from dezoomify_nb.dezoomers.wmts import (
    CRS84,
    WMTSDezoomer,
    WMTSLevel,
    capabilities_url,
    epsg_code,
    mercator,
    parse_capabilities,
)
from dezoomify_nb.errors import MetadataError, NeedsData, WrongDezoomer
from dezoomify_nb.resolve import resolve
from dezoomify_nb.testing import make_test_image
from dezoomify_nb.testing.wmts import MatrixSetSpec, WmtsSite

from .fmt_helpers import FAST, Driver, load, read, serve_dict, urls

D = WMTSDezoomer()
GEOSERVER = "https://maps.example.org/geoserver/gwc/service/wmts?SERVICE=WMTS&REQUEST=GetCapabilities"


def parse(rel: str, url: str = "https://h/wmts/1.0.0/WMTSCapabilities.xml", **kw):
    root = parse_xml(read(rel))
    assert root is not None
    return parse_capabilities(url, root, **kw)


# --- the worked example (reference §10) ---------------------------------------------------------------
def test_reference_example_clamped_to_the_matrix():
    url = "https://fixtures.test/wmts/WMTSCapabilities.xml"
    (image,) = resolve(url, pages={url: read("wmts/js_fixture_WMTSCapabilities.xml")})
    assert image.dezoomer == "wmts" and image.title == "fixture"
    (level,) = image.levels
    # span = 256 px × 0.2 m = 51.2 m; the 512 m box is 2560 px, but MatrixWidth/Height = 2 tiles exist
    # (the JS ignores them and asks for rows and columns 0…10, 2816 px)
    assert (level.width, level.height, level.name) == (512, 512, "EPSG3857/0")
    assert urls(level)[0] == "https://fixtures.test/wmts/EPSG3857/0/0/0.jpg"
    assert urls(level)[-1] == "https://fixtures.test/wmts/EPSG3857/0/1/1.jpg"


def test_box_ending_on_a_tile_edge_asks_for_no_extra_tile():
    doc = read("wmts/js_fixture_WMTSCapabilities.xml").replace(b"<MatrixWidth>2<", b"<MatrixWidth>11<").replace(
        b"<MatrixHeight>2<", b"<MatrixHeight>11<")
    (image,) = parse_capabilities("https://fixtures.test/wmts/c.xml", parse_xml(doc))
    level = image.levels[0]
    assert (level.width, level.height, level.cols) == (2560, 2560, 10)  # floor(512/51.2) = 10 would be one too many
    assert urls(level)[-1] == "https://fixtures.test/wmts/EPSG3857/0/9/9.jpg"


# --- a GeoServer-style document --------------------------------------------------------------------------
def test_geoserver_layers_sets_and_limits():
    survey, ortho = parse("wmts/geoserver_WMTSCapabilities.xml", GEOSERVER)
    assert survey.title == "Second military survey, Pest (1806-1869)" and ortho.title == "Orthophoto 1946"
    assert [lv.name for lv in survey.levels] == [f"EPSG:900913/EPSG:900913:{z}" for z in range(16, 7, -1)]
    z16 = survey.levels[0]
    assert isinstance(z16, WMTSLevel) and (z16.col0, z16.row0) == (36190, 22862)  # the limits' minima
    assert z16.tile_url(0, 0) == ("https://maps.example.org/geoserver/gwc/service/wmts/rest/hist:survey2_pest/"
                                  "hist:survey2/EPSG:900913/EPSG:900913:16/22862/36190?format=image/png")
    # the box, projected, ends inside the last column: the level ends exactly there
    res = 559082264.0287178 / 2**16 * 0.00028
    right = (mercator(19.4, 47.7)[0] + 2.003750834e7) / res
    assert z16.col0 * 256 + z16.width == math.ceil(right)
    assert 0 <= math.floor((mercator(18.8, 47.3)[0] + 2.003750834e7) / res) - z16.col0 * 256 < 256
    assert pickle.loads(pickle.dumps(z16)) == z16


def test_geographic_set_is_latitude_first():
    (survey,) = parse("wmts/geoserver_WMTSCapabilities.xml", GEOSERVER, layer_id="hist:survey2_pest",
                      set_id="EPSG:4326")
    z15 = survey.levels[0]
    assert z15.name == "EPSG:4326/EPSG:4326:15" and len(survey.levels) == 9
    assert (z15.col0, z15.row0) == (36190, 7700)  # the limits, computed from lon/lat independently
    deg = 0.703125 / 2**15
    assert z15.width == math.ceil((19.4 + 180) / deg) - 36190 * 256
    assert z15.height == math.ceil((90 - 47.3) / deg) - 7700 * 256


def test_national_grid_with_uneven_scales_and_time():
    (ortho,) = parse("wmts/geoserver_WMTSCapabilities.xml", GEOSERVER, layer_id="hist:ortho_1946")
    assert len(ortho.levels) == 27
    by_name = {lv.name: lv for lv in ortho.levels}
    lv = by_name["2056_27/22"]  # 2.5 m: the box 2600000–2610000 × 1195000–1200000 is 72000–76000 × 60000–62000 px
    assert (lv.col0, lv.row0, lv.width, lv.height) == (281, 234, 76000 - 281 * 256, 62000 - 234 * 256)
    assert lv.tile_url(0, 0) == "https://maps.example.org/1.0.0/hist.ortho_1946/default/1946/2056/22/281/234.jpeg"
    coarse = by_name["2056_27/0"]  # 4000 m: 2.5 px of map after a 45 px margin
    assert (coarse.col0, coarse.row0, coarse.width, coarse.height) == (0, 0, 48, 39)
    two, one_half = by_name["2056_27/23"], by_name["2056_27/24"]  # 2 m and 1.5 m: not a halving
    assert (two.col0, two.width) == (351, 95000 - 351 * 256)
    assert (one_half.col0, one_half.width) == (468, math.ceil(190000 / 1.5) - 468 * 256)


def test_kvp_only_and_lat_first_box():
    (image,) = parse("wmts/kvp_only_WMTSCapabilities.xml", "https://gis.example.net/wmts/service?request=GetCapabilities")
    z0, z1 = sorted(image.levels, key=lambda lv: lv.width)
    assert (z0.width, z0.height, z1.col0, z1.row0, z1.width, z1.height) == (299, 143, 1, 0, 342, 285)
    assert z1.tile_url(0, 0) == (
        "https://tiles.example.net/cgi-bin/mapserv?map=wmts.map&SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
        "&LAYER=blue%20marble&STYLE=default&FORMAT=image%2Fjpeg&TIME=2004-08&TILEMATRIXSET=WGS84&TILEMATRIX=1"
        "&TILEROW=0&TILECOL=1")


def test_world_layer_keeps_the_zooms_under_the_pixel_cap():
    matrices = "".join(
        f"<TileMatrix><ows:Identifier>{z}</ows:Identifier><ScaleDenominator>{559082264.0287178 / 2**z!r}"
        "</ScaleDenominator><TopLeftCorner>-20037508.3427892 20037508.3427892</TopLeftCorner><TileWidth>256"
        f"</TileWidth><TileHeight>256</TileHeight><MatrixWidth>{2**z}</MatrixWidth><MatrixHeight>{2**z}"
        "</MatrixHeight></TileMatrix>" for z in range(25))
    doc = ('<Capabilities xmlns="http://www.opengis.net/wmts/1.0" xmlns:ows="http://www.opengis.net/ows/1.1"><Contents>'
           "<Layer><ows:Identifier>osm</ows:Identifier><ResourceURL resourceType='tile' template='https://t/{TileMatrix}/"
           "{TileCol}/{TileRow}.png'/><TileMatrixSetLink><TileMatrixSet>g</TileMatrixSet></TileMatrixSetLink></Layer>"
           "<TileMatrixSet><ows:Identifier>g</ows:Identifier><ows:SupportedCRS>EPSG:3857</ows:SupportedCRS>"
           + matrices + "</TileMatrixSet></Contents></Capabilities>").encode()
    (image,) = parse_capabilities("https://t/wmts", parse_xml(doc))
    assert [lv.name for lv in image.levels][:2] == ["g/11", "g/10"] and len(image.levels) == 12
    (small,) = parse_capabilities("https://t/wmts", parse_xml(doc), max_pixels=10**9)
    assert small.levels[0].name == "g/6"
    assert image.levels[0].tile_url(3, 4) == "https://t/11/3/4.png"


@pytest.mark.parametrize(("crs", "code"), [
    ("urn:ogc:def:crs:EPSG::3857", 3857), ("urn:ogc:def:crs:EPSG:6.18.3:3857", 3857), ("EPSG:2056", 2056),
    ("http://www.opengis.net/def/crs/EPSG/0/28992", 28992), ("urn:ogc:def:crs:OGC:1.3:CRS84", CRS84),
    ("urn:ogc:def:crs:OGC:2:84", CRS84), ("CRS:84", CRS84), ("http://www.opengis.net/def/crs/OGC/1.3/CRS84", CRS84),
    ("local", None), ("", None)])
def test_crs_names(crs, code):
    assert epsg_code(crs) == code


def test_mercator_is_the_js_formula():
    for lon, lat in ((18.8, 47.3), (-120.5, -33.25), (0.0, 0.0)):
        x, y = mercator(lon, lat)
        assert x == pytest.approx(math.pi * 6378137 * lon / 180)
        assert y == pytest.approx(6378137 * math.log(math.tan(math.pi * (lat + 90) / 360)))


def test_gettile_url_gives_capabilities_and_the_layer():
    tile = ("https://gis.example.net/wmts/service?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER=blue%20marble"
            "&STYLE=default&TILEMATRIXSET=WGS84&TILEMATRIX=1&TILEROW=0&TILECOL=1&FORMAT=image/jpeg")
    cap = "https://gis.example.net/wmts/service?SERVICE=WMTS&REQUEST=GetCapabilities&VERSION=1.0.0"
    assert capabilities_url(tile) == cap
    (image,) = D.images(Context(tile, {cap: read("wmts/kvp_only_WMTSCapabilities.xml")}))
    assert image.title == "Blue Marble (test)" and image.url == cap


def test_layer_choice_and_errors():
    url = "https://maps.example.org/wmts/1.0.0/WMTSCapabilities.xml"
    doc = read("wmts/geoserver_WMTSCapabilities.xml")
    (ortho,) = D.images(Context(url + "#layer=hist:ortho_1946", {url: doc}))
    assert ortho.title == "Orthophoto 1946"
    with pytest.raises(MetadataError, match="no layer 'nope'") as info:
        D.images(Context(url + "#layer=nope", {url: doc}))
    assert "hist:survey2_pest" in info.value.hint
    for body, match in ((b'<Capabilities xmlns="http://www.opengis.net/wmts/1.0"/>', "Contents"),
                        (b'<Capabilities xmlns="http://www.opengis.net/wmts/1.0"><Contents><Layer>'
                         b"<Identifier>x</Identifier></Layer></Contents></Capabilities>", "no tile ResourceURL")):
        with pytest.raises(MetadataError, match=match):
            D.images(Context(url, {url: body}))


def test_detection():
    bare = "https://maps.example.org/geoserver/gwc/service/wmts"
    driver = Driver(serve_dict({bare: b"<ows:ExceptionReport xmlns:ows='http://www.opengis.net/ows/1.1'/>",
                                bare + "?SERVICE=WMTS&REQUEST=GetCapabilities": read("wmts/kvp_only_WMTSCapabilities.xml")}))
    (image,) = driver.run(D, bare)  # a bare endpoint: the GetCapabilities request is tried
    assert driver.requests[1].endswith("REQUEST=GetCapabilities")
    for url in ("https://h/wmts/layer/g/3/2/1.png", "https://h/tiles/{{X}}/{{Y}}.png"):
        with pytest.raises(WrongDezoomer):
            D.images(Context(url))
    other = "https://h/1.0.0/WMTSCapabilities.xml"  # no word "wmts": recognised by its contents
    (image,) = D.images(Context(other, {other: read("wmts/kvp_only_WMTSCapabilities.xml")}))
    for url, body in (("https://h/info.json", b'{"width": 5}'), ("https://h/wmts/x.xml", b"<Capabilities/>")):
        with pytest.raises(WrongDezoomer):
            D.images(Context(url, {url: body}))
    with pytest.raises(NeedsData):
        D.images(Context("https://h/wmts/x.xml"))


# --- end to end -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def wmts(_server):
    site = WmtsSite(make_test_image(1000, 720, seed=51))
    return site, site.install(_server, "/wmts-t")


def test_every_matrix_of_every_layer_pixel_exact(server, wmts):
    site, url = wmts
    ortho, plan = dz.open_all(url, **FAST)
    assert ortho.dezoomer == "wmts" and ortho.title == "Orthophoto (test)" and plan.title == "Plan (KVP only)"
    assert [lv.name for lv in ortho.levels] == [f"WebMercatorQuad/{z}" for z in (18, 17, 16, 15)]
    for k, lv in enumerate(ortho.levels):
        np.testing.assert_array_equal(ortho.to_dask(level=k).compute(), site.level_image("WebMercatorQuad", lv.name[16:]))
    names = [lv.name.split("/")[1] for lv in plan.levels]
    assert names == ["1m", "1.25m", "2m", "2.5m", "4m", "5m"]  # ordered by size, not halvings
    for k, name in enumerate(names):
        np.testing.assert_array_equal(plan.to_dask(level=k).compute(), site.level_image("LocalGrid", name))
    assert any("/kvp?" in p for p in server.requests) and any("/rest/ortho/default/2024-05-01/" in p for p in server.requests)


def test_georeference_of_every_matrix_and_bbox(server, wmts, tmp_path):
    site, url = wmts
    ortho, plan = dz.open_all(url, **FAST)
    assert (ortho.crs, plan.crs) == ("EPSG:3857", "EPSG:2056")
    for img, spec in ((ortho, site.sets[0]), (plan, site.sets[1])):
        for k, lv in enumerate(img.levels):
            name = lv.name.split("/")[1]
            res = spec.resolutions[spec.names.index(name) if spec.names else int(name)]
            m = site.matrix(spec.ident, name)
            c, a, b, f, d, e = img.transform_of(k)
            assert (a, b, d, e) == pytest.approx((res, 0, 0, -res))
            # the image's top-left pixel in the matrix, through the level's geotransform, is where the site put it
            px, py = m.pos[0] - lv.col0 * spec.tile[0], m.pos[1] - lv.row0 * spec.tile[1]
            assert c + a * px == pytest.approx(spec.top_left[0] + m.pos[0] * res, abs=1e-6)
            assert f + e * py == pytest.approx(spec.top_left[1] - m.pos[1] * res, abs=1e-6)
    # a box in the Swiss grid (metres): pixels 100-400 x 50-250 of the image at the 1 m matrix
    x0 = site.sets[1].top_left[0] + site.sets[1].origin_px[0]
    y1 = site.sets[1].top_left[1] - site.sets[1].origin_px[1]
    box = (x0 + 100, y1 - 250, x0 + 400, y1 - 50)
    img = dz.open(url + "#layer=plan", bbox=box, bbox_crs="EPSG:2056", **FAST)
    server.reset_requests()
    out = img.save(tmp_path / "box.png", progress=False).path
    np.testing.assert_array_equal(load(out), site.image[50:250, 100:400])
    assert 0 < len(server.requests) <= 4  # the tiles under the box only (pixels 480-780 x 310-510 of 256 px tiles)
    both = dz.open(url, bbox=box, bbox_crs="EPSG:2056", **FAST)  # both layers: a collection keeps the box too
    out = both[1].save(tmp_path / "box2.png", progress=False).path
    np.testing.assert_array_equal(load(out), site.image[50:250, 100:400])


def test_cli_layer_and_matrix_set_in_the_fragment(server, wmts, tmp_path, capsys):
    site, url = wmts
    out = tmp_path / "w.png"
    code = main(["-i", "0ms", "--dezoomer", "wmts", "--zoom-level", "1", url + "#layer=ortho&tilematrixset=LocalGrid",
                 str(out)])
    assert code == 0, capsys.readouterr().err
    np.testing.assert_array_equal(load(out), site.level_image("LocalGrid", "1.25m"))


def test_latitude_first_geographic_grid(server, _server):
    spec = MatrixSetSpec("WorldCRS84", "urn:ogc:def:crs:EPSG::4326", (-180.0, 90.0), (0.01, 0.005, 0.0025),
                         (52_000 + 4 * 33, 12_000 + 4 * 21), geographic=True, lat_first=True)
    site = WmtsSite(make_test_image(1000, 720, seed=52), sets=[spec])
    url = site.install(_server, "/wmts-geo")
    img = dz.open(url + "#layer=plan", **FAST)
    assert [lv.name for lv in img.levels] == ["WorldCRS84/2", "WorldCRS84/1", "WorldCRS84/0"]
    for k in range(3):
        np.testing.assert_array_equal(img.to_dask(level=k).compute(), site.level_image("WorldCRS84", str(2 - k)))


@pytest.mark.network
def test_live_wmts():
    img = dz.open("https://wmts.geo.admin.ch/EPSG/2056/1.0.0/WMTSCapabilities.xml#layer=ch.swisstopo.pixelkarte-farbe",
                  image_index=0)
    assert img.dezoomer == "wmts" and len(img.levels) > 5
