"""dezoomify_nb.geo: CRS names, boxes, lon/lat <-> Web Mercator (checked against PROJ through pyproj), pixel boxes."""

from __future__ import annotations

import math

import pytest

from dezoomify_nb.errors import GeoError
from dezoomify_nb.geo import (
    HALF_WORLD,
    MAX_LAT,
    lonlat_to_mercator,
    mercator_to_lonlat,
    parse_bbox,
    parse_crs,
    pixel_box,
    transform_bbox,
)


@pytest.mark.parametrize(("text", "crs"), [
    ("4326", "EPSG:4326"), ("epsg:2056", "EPSG:2056"), ("EPSG::3857", "EPSG:3857"), ("EPSG:900913", "EPSG:3857"),
    ("urn:ogc:def:crs:EPSG::28992", "EPSG:28992"), ("http://www.opengis.net/def/crs/EPSG/0/25832", "EPSG:25832"),
    ("CRS:84", "EPSG:4326"), ("urn:ogc:def:crs:OGC:1.3:CRS84", "EPSG:4326"), ("ESRI:102100", "EPSG:3857"),
    ("ESRI:54009", "ESRI:54009"), (102100, "EPSG:3857"), ('PROJCS["x",GEOGCS["y"]]', 'PROJCS["x",GEOGCS["y"]]'),
])
def test_crs_spellings(text, crs):
    assert parse_crs(text) == crs


@pytest.mark.parametrize("text", ["", "mercator", "EPSG:", "EPSG:0"])
def test_unknown_crs(text):
    with pytest.raises(GeoError) as err:
        parse_crs(text)
    assert err.value.hint


def test_boxes():
    assert parse_bbox("2.25,48.8, 2.42,48.9") == (2.25, 48.8, 2.42, 48.9)
    assert parse_bbox("-5.2 40 -4.9 40.2") == (-5.2, 40.0, -4.9, 40.2)
    assert parse_bbox([1, 2, 3, 4]) == (1.0, 2.0, 3.0, 4.0)
    for bad in ("1,2,3", "a,b,c,d", "1,2,3,nan", "3,0,1,1", (0, 5, 1, 4)):
        with pytest.raises(GeoError):
            parse_bbox(bad)


def test_mercator_is_proj_s():
    pyproj = pytest.importorskip("pyproj")
    fwd = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)
    for lon, lat in ((0, 0), (2.35, 48.85), (-122.4, 37.8), (151.2, -33.9), (179.9, 84.9)):
        x, y = lonlat_to_mercator(lon, lat)
        assert (x, y) == pytest.approx(fwd.transform(lon, lat), abs=1e-6)
        assert mercator_to_lonlat(x, y) == pytest.approx((lon, lat), abs=1e-9)
    assert lonlat_to_mercator(180, MAX_LAT) == pytest.approx((HALF_WORLD, HALF_WORLD))
    assert lonlat_to_mercator(0, 89.9)[1] == pytest.approx(HALF_WORLD)  # clamped to the square world


def test_box_through_pyproj_covers_the_outline():
    pyproj = pytest.importorskip("pyproj")
    box = (2.0, 46.0, 3.0, 47.0)  # in UTM 31N its edges are curves: the box must hold every point of them
    got = transform_bbox(box, "EPSG:4326", "EPSG:32631")
    fwd = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:32631", always_xy=True)
    edge = [(2.0 + t / 100, 46.0) for t in range(101)] + [(2.0 + t / 100, 47.0) for t in range(101)] + \
        [(2.0, 46.0 + t / 100) for t in range(101)] + [(3.0, 46.0 + t / 100) for t in range(101)]
    xs, ys = fwd.transform([p[0] for p in edge], [p[1] for p in edge])
    assert got[0] <= min(xs) + 0.5 and got[2] >= max(xs) - 0.5 and got[1] <= min(ys) + 0.5 and got[3] >= max(ys) - 0.5
    assert got[0] > min(xs) - 50 and got[3] < max(ys) + 50  # and hardly more
    assert transform_bbox(box, "EPSG:4326", "EPSG:4326") == box


def test_other_crs_without_pyproj(monkeypatch):
    import dezoomify_nb.geo as geo

    real = geo._pyproj_transformer
    monkeypatch.setattr("builtins.__import__", _no_pyproj(__import__))
    with pytest.raises(GeoError, match="needs pyproj") as err:
        real("EPSG:4326", "EPSG:2056")
    assert "pip install pyproj" in err.value.hint
    assert transform_bbox((0, 0, 1, 1), "EPSG:4326", "EPSG:3857")[2] == pytest.approx(111319.49, abs=0.01)


def _no_pyproj(real_import):
    def fake(name, *args, **kwargs):
        if name == "pyproj" or name.startswith("pyproj."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)
    return fake


def test_pixel_boxes():
    t = (1000.0, 2.0, 0.0, 5000.0, 0.0, -2.0)  # 2 units a pixel, 100 x 50 px
    assert pixel_box(t, (1000, 4900, 1200, 5000), 100, 50) == (0, 0, 100, 50)
    assert pixel_box(t, (1010, 4950, 1030, 4990), 100, 50) == (5, 5, 10, 20)
    assert pixel_box(t, (1011, 4950, 1030.0000001, 4990), 100, 50) == (5, 5, 10, 20)  # a hair past an edge: snapped
    assert pixel_box(t, (1011, 4950, 1031, 4990), 100, 50) == (5, 5, 11, 20)  # part of a pixel: all of it
    assert pixel_box(t, (900, 4000, 1100, 6000), 100, 50) == (0, 0, 50, 50)  # clamped to the raster
    assert pixel_box(t, (0, 0, 10, 10), 100, 50) is None
    with pytest.raises(GeoError, match="north-up"):
        pixel_box((0, 1, 0.5, 0, 0, -1), (0, 0, 1, 1), 10, 10)
    assert pixel_box(t, (1000, 4900, 1e300, 5000), 100, 50) == (0, 0, 100, 50)  # a huge box: the whole raster
    assert pixel_box(t, (1000, 4900, math.inf, 5000), 100, 50) is None
