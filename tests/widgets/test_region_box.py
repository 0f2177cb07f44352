"""The picker's Box field: a map's region typed as west, south, east, north (lon/lat), shown back when drawn."""

from __future__ import annotations

import math

import numpy as np
import pytest
from e2e.helpers import read

import dezoomify_nb as dz
from dezoomify_nb.geo import HALF_WORLD, lonlat_to_mercator, mercator_to_lonlat
from dezoomify_nb.testing import make_test_image
from dezoomify_nb.testing.xyz import XyzSite
from dezoomify_nb.widgets.region import RegionFields

FAST = {"min_interval": 0, "retry_delay": 0.01}
RES = 2 * HALF_WORLD / 256 / 2**12  # zoom 12
TRANSFORM = (-HALF_WORLD + 2000 * 256 * RES, RES, 0.0, HALF_WORLD - 1300 * 256 * RES, 0.0, -RES)


def test_box_typed_becomes_the_region_and_back():
    fields = RegionFields()
    fields.reset((1000, 800))
    assert fields.box.layout.display == "none"  # not a map
    fields.reset((1000, 800), crs="EPSG:3857", transform=TRANSFORM)
    assert fields.box.layout.display == "flex" and "Box (lon/lat)" in fields.box_label.value
    west, north = mercator_to_lonlat(TRANSFORM[0], TRANSFORM[3])
    east, south = mercator_to_lonlat(TRANSFORM[0] + 1000 * RES, TRANSFORM[3] - 800 * RES)
    assert [float(v) for v in fields.box.value.split(",")] == pytest.approx([west, south, east, north], abs=1e-5)
    # pixels 100-400 x 50-250, typed as lon/lat: the region is the pixels under the box
    (x0, y1), (x1, y0) = (TRANSFORM[0] + 100 * RES, TRANSFORM[3] - 50 * RES), (TRANSFORM[0] + 400 * RES,
                                                                              TRANSFORM[3] - 250 * RES)
    (lon0, lat0), (lon1, lat1) = mercator_to_lonlat(x0, y0), mercator_to_lonlat(x1, y1)
    fields.box.value = f"{lon0!r}, {lat0!r}, {lon1!r}, {lat1!r}"
    assert fields.value == [100, 50, 300, 200] and [f.value for f in fields.fields] == [100, 50, 300, 200]
    assert fields.box_note.layout.display == "none"
    # a region set in pixels (drawn): the box follows
    fields.value = [0, 0, 500, 400]
    w2, n2 = mercator_to_lonlat(TRANSFORM[0], TRANSFORM[3])
    e2, s2 = mercator_to_lonlat(TRANSFORM[0] + 500 * RES, TRANSFORM[3] - 400 * RES)
    assert [float(v) for v in fields.box.value.split(",")] == pytest.approx([w2, s2, e2, n2], abs=1e-5)
    # nonsense and boxes off the map: said under the field, the region kept
    for text, said in (("1, 2, 3", "Not a box: 4 numbers"), ("-170, -60, -169, -59", "outside the map")):
        fields.box.value = text
        assert fields.value == [0, 0, 500, 400] and said in fields.box_note.value
        assert fields.box_note.layout.display == "flex"
    fields.box.value = ""
    assert fields.value == []


def test_box_in_the_maps_own_crs_without_pyproj(monkeypatch):
    import dezoomify_nb.geo as geo

    def no_pyproj(src, dst):
        raise geo.GeoError("pyproj is not installed")

    monkeypatch.setattr(geo, "_pyproj_transformer", no_pyproj)
    fields = RegionFields()
    transform = (2_600_000.0, 1.0, 0.0, 1_200_000.0, 0.0, -1.0)
    fields.reset((1000, 800), crs="EPSG:2056", transform=transform)
    assert "Box (EPSG:2056)" in fields.box_label.value and fields.box.value == "2600000.0, 1199200.0, 2601000.0, 1200000.0"
    fields.box.value = "2600100, 1199500, 2600300, 1199900"
    assert fields.value == [100, 100, 200, 400]


def test_picker_downloads_the_typed_box(_server, tmp_path):
    site = XyzSite(make_test_image(800, 600, seed=91))
    template = site.install(_server, "/xyz-picker")
    p = dz.widget(template, directory=tmp_path, **FAST).wait(60)
    assert p.state == "ready" and p.region_fields.box.layout.display == "flex"
    lv = p.image.levels[0]
    x, y, w, h = site.pixel_box(3)  # the map in zoom 3's world pixels; the level starts at tile (2, 1)
    res = 2 * HALF_WORLD / 256 / 2**3
    left, top = -HALF_WORLD + (x + 40) * res, HALF_WORLD - (y + 30) * res
    right, bottom = left + 200 * res, top - 100 * res
    (lon0, lat0), (lon1, lat1) = mercator_to_lonlat(left, bottom), mercator_to_lonlat(right, top)
    p.region_fields.box.value = f"{lon0!r},{lat0!r},{lon1!r},{lat1!r}"
    px, py = x - lv.col0 * 256 + 40, y - lv.row0 * 256 + 30
    assert p.region == (px, py, 200, 100)
    p.file_box.value = "box.png"
    p.download().wait(60)
    np.testing.assert_array_equal(read(tmp_path / "box.png"), site.world_image(3, (x + 40, y + 30, x + 240, y + 130)))
    assert math.isclose(lonlat_to_mercator(lon0, lat0)[0], left, abs_tol=1e-6)
