"""Georeferenced outputs of a map source, read back by GDAL (Debian's gdal-bin) and rasterio: GeoTIFF keys
and geotransform, world file + ``.aux.xml`` beside PNG/JPEG, and the pixel colour GDAL finds at the
longitude/latitude of known source pixels (``gdallocationinfo -wgs84``), for Web Mercator, WGS 84, a projected
EPSG CRS, a WKT-only CRS and a rotated geotransform; levels and regions move the geotransform along.

The lon/lat of a source pixel is computed by pyproj from the source's *full-resolution* georeference, so a
wrong scale or origin in what we write shows as wrong colours."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

import dezoomify_nb as dz
from dezoomify_nb.api import ZoomableImage
from dezoomify_nb.model import GeoRef
from dezoomify_nb.testing import make_test_image
from dezoomify_nb.testing.tileserver import Response
from dezoomify_nb.testing.wmts import GOOGLE_TLC, MatrixSetSpec, WmtsSite
from dezoomify_nb.testing.xyz import XyzSite, mercator_lonlat
from dezoomify_nb.writers import cog, writer_named
from dezoomify_nb.writers.base import ArraySource

from .conftest import _missing, require, require_module, run

pytestmark = pytest.mark.conformance

#: a Lambert conformal conic no EPSG code names (the parameters of Lambert-93 on a datum of its own)
LCC_WKT = ('PROJCS["dezoomify test LCC",GEOGCS["test GRS 1980",DATUM["test datum",SPHEROID["GRS 1980",6378137,'
           '298.257222101]],PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]],'
           'PROJECTION["Lambert_Conformal_Conic_2SP"],PARAMETER["latitude_of_origin",46.5],'
           'PARAMETER["central_meridian",3],PARAMETER["standard_parallel_1",44],PARAMETER["standard_parallel_2",49],'
           'PARAMETER["false_easting",700000],PARAMETER["false_northing",6600000],UNIT["metre",1],'
           'AXIS["Easting",EAST],AXIS["Northing",NORTH]]')

CASES = {
    "mercator": GeoRef("EPSG:3857", (1_000_000.0, 10.0, 0.0, 6_000_000.0, 0.0, -10.0)),
    "wgs84": GeoRef("EPSG:4326", (5.0, 0.001, 0.0, 45.0, 0.0, -0.001)),
    "swiss": GeoRef("urn:ogc:def:crs:EPSG::2056", (2_600_000.0, 2.5, 0.0, 1_200_000.0, 0.0, -2.5)),
    "wkt": GeoRef(LCC_WKT, (650_000.0, 4.0, 0.0, 6_860_000.0, 0.0, -4.0)),
    "rotated": GeoRef("EPSG:3857", (1_000_000.0, 8.0, 6.0, 6_000_000.0, 6.0, -8.0)),
}
EPSG = {"mercator": 3857, "wgs84": 4326, "swiss": 2056, "rotated": 3857}
#: source pixels probed (corners, middle, edge tiles)
PIXELS = [(0, 0), (999, 0), (0, 699), (999, 699), (500, 350), (257, 513), (777, 123)]


def lonlat(georef: GeoRef, col: float, row: float) -> tuple[float, float]:
    """WGS 84 longitude/latitude of the full-resolution pixel position ``(col, row)`` (pyproj)."""
    pyproj = require_module("pyproj")
    c, a, b, f, d, e = georef.transform
    x, y = c + a * col + b * row, f + d * col + e * row
    to_wgs84 = pyproj.Transformer.from_crs(pyproj.CRS.from_user_input(georef.crs), "EPSG:4326", always_xy=True)
    return to_wgs84.transform(x, y)


def values_at(path, points: list[tuple[float, float]], bands: int = 3) -> list[tuple[int, ...]]:
    """What ``gdallocationinfo -wgs84`` reads in ``path`` at each lon/lat."""
    exe = require("gdallocationinfo")
    coords = "".join(f"{lon!r} {lat!r}\n" for lon, lat in points)  # read from stdin, one line per point
    out = subprocess.run([exe, "-wgs84", "-valonly", str(path)], input=coords, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    values = [int(v) for v in out.stdout.split()]
    assert len(values) == bands * len(points), out.stdout
    return [tuple(values[i : i + bands]) for i in range(0, len(values), bands)]


def info(path) -> dict:
    return json.loads(run(require("gdalinfo"), "-json", path).stdout)


def mapped(server, georef: GeoRef) -> ZoomableImage:
    im = dz.open(server.url("dzi-png"))
    return ZoomableImage(replace(im.image, georef=georef), im.net)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("ext", [".tif", ".png"])
def test_placed_where_the_source_says(server, source, tmp_path, case, ext):
    georef = CASES[case]
    path = tmp_path / f"map{ext}"
    mapped(server, georef).save(path, progress=False)
    got = info(path)
    assert got["size"] == [1000, 700]
    np.testing.assert_allclose(got["geoTransform"], georef.transform, rtol=1e-12)
    wkt = got["coordinateSystem"]["wkt"]
    if case in EPSG:
        assert wkt.rstrip().endswith(f'ID["EPSG",{EPSG[case]}]]'), wkt[-200:]
    else:
        assert 'PROJCRS["dezoomify test LCC"' in wkt and "Lambert Conic Conformal (2SP)" in wkt, wkt[:300]
        assert 'PARAMETER["Latitude of 1st standard parallel",44' in wkt
    c, a, b, f, d, e = georef.transform
    if case != "rotated":
        corners = got["cornerCoordinates"]
        np.testing.assert_allclose(corners["upperLeft"], [c, f], rtol=1e-12)
        np.testing.assert_allclose(corners["lowerRight"], [c + 1000 * a, f + 700 * e], rtol=1e-12)
    if ext == ".png":
        assert sorted(p.name for p in tmp_path.iterdir()) == ["map.pgw", "map.png", "map.png.aux.xml"]
        assert set(got["files"]) == {str(tmp_path / n) for n in ("map.png", "map.pgw", "map.png.aux.xml")}
    else:
        assert [p.name for p in tmp_path.iterdir()] == ["map.tif"]  # all in the GeoTIFF
    points = [lonlat(georef, col + 0.5, row + 0.5) for col, row in PIXELS]
    assert values_at(path, points) == [tuple(source[row, col]) for col, row in PIXELS]


def test_jpeg_world_file(server, source, tmp_path):
    georef = CASES["mercator"]
    path = tmp_path / "map.jpg"
    mapped(server, georef).save(path, progress=False, compression=0)
    assert (tmp_path / "map.jgw").read_text().split() == ["10.0", "0.0", "0.0", "-10.0", "1000005.0", "5999995.0"]
    got = info(path)
    np.testing.assert_allclose(got["geoTransform"], georef.transform, rtol=1e-12)
    assert got["coordinateSystem"]["wkt"].rstrip().endswith('ID["EPSG",3857]]')
    points = [lonlat(georef, col + 0.5, row + 0.5) for col, row in PIXELS[4:]]
    for got_px, (col, row) in zip(values_at(path, points), PIXELS[4:], strict=True):
        assert np.abs(np.array(got_px, int) - source[row, col]).max() <= 12  # JPEG


@pytest.mark.parametrize("ext", [".tif", ".png"])
def test_level_and_region(server, source, tmp_path, ext):
    """Level 1 has twice the pixel size; a region starts at its own corner; both still land on the map."""
    georef = CASES["swiss"]
    im = mapped(server, georef)
    half = tmp_path / f"half{ext}"
    im.save(half, level=1, progress=False)
    got = info(half)
    assert got["size"] == [500, 350]
    np.testing.assert_allclose(got["geoTransform"], (2_600_000.0, 5.0, 0.0, 1_200_000.0, 0.0, -5.0), rtol=1e-12)
    if ext == ".png":  # pixel (i, j) of level 1 is pixels 2i..2i+1, 2j..2j+1 of the source: its centre is there
        with Image.open(half) as png:
            level1 = np.asarray(png)
        points = [lonlat(georef, 2 * col + 1, 2 * row + 1) for col, row in [(10, 20), (400, 300)]]
        assert values_at(half, points) == [tuple(level1[20, 10]), tuple(level1[300, 400])]
    part = tmp_path / f"part{ext}"
    im.save(part, region=(300, 200, 400, 300), progress=False)
    got = info(part)
    assert got["size"] == [400, 300]
    np.testing.assert_allclose(got["geoTransform"], (2_600_750.0, 2.5, 0.0, 1_199_500.0, 0.0, -2.5), rtol=1e-12)
    inside = [(300, 200), (699, 499), (512, 345)]
    points = [lonlat(georef, col + 0.5, row + 0.5) for col, row in inside]
    assert values_at(part, points) == [tuple(source[row, col]) for col, row in inside]


@pytest.mark.filterwarnings("ignore:angle from rectified to skew grid parameter lost:UserWarning")  # pyproj's CF
def test_rasterio_reads_it_back(server, source, tmp_path):
    """Second readers (rasterio, with the GDAL of its wheel; rioxarray): CRS, transform, bounds, pixels by
    coordinate, the overview."""
    rasterio = require_module("rasterio")
    georef = CASES["swiss"]
    path = tmp_path / "map.tif"
    mapped(server, georef).save(path, progress=False)
    with rasterio.open(path) as ds:
        assert ds.crs.to_epsg() == 2056
        assert tuple(ds.transform.to_gdal()) == georef.transform
        assert tuple(ds.bounds) == (2_600_000.0, 1_198_250.0, 2_602_500.0, 1_200_000.0)
        assert ds.overviews(1) == [2]
        for col, row in PIXELS:
            x, y = 2_600_000.0 + 2.5 * (col + 0.5), 1_200_000.0 - 2.5 * (row + 0.5)
            r, c = ds.index(x, y)
            assert (r, c) == (row, col)
            assert tuple(next(ds.sample([(x, y)]))) == tuple(source[row, col])
    rioxarray = require_module("rioxarray")
    with rioxarray.open_rasterio(path) as arr, rioxarray.open_rasterio(path, overview_level=0) as half:
        assert arr.rio.crs.to_epsg() == 2056 and arr.shape == (3, 700, 1000)
        assert (float(arr.x[0]), float(arr.y[0])) == (2_600_001.25, 1_199_998.75)  # pixel centres
        np.testing.assert_array_equal(arr.values.transpose(1, 2, 0), source)
        assert half.shape == (3, 350, 500) and half.rio.resolution() == (5.0, -5.0)
        assert half.rio.bounds() == arr.rio.bounds() == (2_600_000.0, 1_198_250.0, 2_602_500.0, 1_200_000.0)


def test_plain_image_keeps_its_plain_tiff(server, tmp_path):
    """No georeference: no GeoTIFF keys, no side files."""
    path = tmp_path / "plain.tif"
    dz.open(server.url("dzi-png")).save(path, progress=False)
    got = info(path)
    assert "coordinateSystem" not in got and "geoTransform" not in got
    png = tmp_path / "plain.png"
    dz.open(server.url("dzi-png")).save(png, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.png", "plain.tif"]


# --- Cloud-Optimized GeoTIFF -------------------------------------------------------------------------------
VALIDATOR = "/usr/lib/python3/dist-packages/osgeo_utils/samples/validate_cloud_optimized_geotiff.py"


def validate_cog(path) -> str:
    """GDAL's COG validator (Debian's python3-gdal ships it, for the system Python), full check."""
    if not os.path.exists(VALIDATOR) or not os.path.exists("/usr/bin/python3"):
        _missing("GDAL's validate_cloud_optimized_geotiff.py (Debian python3-gdal) is not installed")
    out = subprocess.run(["/usr/bin/python3", VALIDATOR, "--full-check=yes", str(path)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "is a valid cloud optimized GeoTIFF" in out.stdout, out.stdout
    return out.stdout


def levels_of(path) -> list[np.ndarray]:
    with tifffile.TiffFile(path) as tf:
        return [lv.asarray() for lv in tf.series[0].levels]


@pytest.mark.parametrize(("fmt", "channels", "big"), [("tiff", 3, False), ("tiff", 4, False), ("tiff", 1, True),
                                                      ("tiff-jpeg", 3, False)])
def test_cog_valid_and_same_pixels(tmp_path, monkeypatch, fmt, channels, big):
    """GDAL's validator passes (ghost area, IFDs first, smallest overview's tiles first, leaders and
    trailers); every level has the pixels of the plain pyramid TIFF; GDAL sees the overviews; BigTIFF when
    the file would pass 4 GiB (the limit lowered here to write one)."""
    if big:
        monkeypatch.setattr(cog, "CLASSIC_LIMIT", 0)
    src = make_test_image(1300, 1100, seed=5, channels=channels)
    georef = CASES["mercator"]
    plain, mapped_tif = tmp_path / "plain.tif", tmp_path / "map.tif"
    writer_named(fmt).write(plain, ArraySource(src, strip_height=100))
    writer_named(fmt).write(mapped_tif, ArraySource(src, strip_height=100, georef=georef))
    report = validate_cog(mapped_tif)
    assert "IFD" in report
    with open(mapped_tif, "rb") as f:
        head = f.read(16)
    assert head[:4] == (b"II+\0" if big else b"II*\0")
    with open(mapped_tif, "rb") as f:
        f.seek(16 if big else 8)
        assert f.read(30) == b"GDAL_STRUCTURAL_METADATA_SIZE="
    want, got = levels_of(plain), levels_of(mapped_tif)
    assert [a.shape for a in got] == [a.shape for a in want] == [
        (h, w) + ((channels,) if channels > 1 else ()) for w, h in [(1300, 1100), (650, 550), (325, 275)]]
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)
    gi = info(mapped_tif)
    assert gi["metadata"]["IMAGE_STRUCTURE"]["LAYOUT"] == "COG"
    assert [tuple(o["size"]) for o in gi["bands"][0]["overviews"]] == [(650, 550), (325, 275)]
    np.testing.assert_allclose(gi["geoTransform"], georef.transform, rtol=1e-12)


def test_cog_of_a_download(server, source, tmp_path):
    """The .tif of a map source, downloaded (the lower levels from the server), is a valid COG."""
    path = tmp_path / "map.tif"
    mapped(server, CASES["wgs84"]).save(path, progress=False)
    validate_cog(path)
    assert [p.name for p in tmp_path.iterdir()] == ["map.tif"]  # the temporary is gone
    np.testing.assert_array_equal(levels_of(path)[0], source)


# --- IIIF Georeference Annotation: GCPs that GDAL warps with --------------------------------------------------
GEOREF_DATA = Path(__file__).parents[1] / "data" / "iiif_georef"


def affine_lonlat(x: float, y: float) -> tuple[float, float]:
    """The map the fixture's GCPs follow (real 1000×700 pixels → WGS 84)."""
    return 4.0 + 0.001 * x + 0.0002 * y, 52.0 - 0.0001 * x - 0.0008 * y


def annotated(server):
    body = (GEOREF_DATA / "annotation_page.json").read_text().replace(
        "{{SERVICE}}", server.base_url + "/iiif3").replace("{{BASE}}", server.base_url + "/georef").encode()
    server.add_route("/georef/page.json", lambda srv, path, headers: Response(200, body, "application/json"))
    return dz.open(f"{server.base_url}/georef/page.json")[0]


@pytest.mark.parametrize("ext", [".tif", ".png"])
def test_iiif_georeference_gcps_warped_by_gdal(server, source, tmp_path, ext):
    """The .tif carries the annotation's GCPs (ModelTiepoints, EPSG:4326) and its transformation as metadata
    (a PNG: in its .aux.xml); gdalwarp -order 1 puts each source pixel at the longitude/latitude the GCPs say."""
    path = tmp_path / f"sheet{ext}"
    result = annotated(server).save(path, progress=False)
    where = "in the file (a Cloud-Optimized GeoTIFF)" if ext == ".tif" else "in sheet.png.aux.xml beside it"
    assert result.georeference == f"5 GCPs in EPSG:4326 (polynomial1), {where}: warp it with gdalwarp -order 1"
    got = info(path)
    assert "geoTransform" not in got
    gcps = got["gcps"]
    assert gcps["coordinateSystem"]["wkt"].rstrip().endswith('ID["EPSG",4326]]')
    assert [(g["pixel"], g["line"], g["x"], g["y"]) for g in gcps["gcpList"]] == [
        (0.0, 0.0, 4.0, 52.0), (1000.0, 0.0, 5.0, 51.9), (0.0, 700.0, 4.14, 51.44), (1000.0, 700.0, 5.14, 51.34),
        (500.0, 350.0, 4.57, 51.67)]
    assert got["metadata"][""]["GEOREF_TRANSFORMATION"] == "polynomial1"
    if ext == ".png":
        assert sorted(p.name for p in tmp_path.iterdir()) == ["sheet.png", "sheet.png.aux.xml"]  # no world file
    warped = tmp_path / "warped.tif"
    run(require("gdalwarp"), "-q", "-order", "1", "-r", "near", "-dstalpha", "-t_srs", "EPSG:4326", path, warped)
    wi = info(warped)
    assert wi["coordinateSystem"]["wkt"].rstrip().endswith('ID["EPSG",4326]]')
    west, north = wi["cornerCoordinates"]["upperLeft"]
    east, south = wi["cornerCoordinates"]["lowerRight"]
    assert (west, east) == pytest.approx((4.0, 5.14), abs=2e-3)  # the bounding box of the warped corners
    assert (south, north) == pytest.approx((51.34, 52.0), abs=2e-3)
    inside = [(100, 100), (500, 350), (900, 600), (250, 555), (777, 123)]
    values = values_at(warped, [affine_lonlat(x + 0.5, y + 0.5) for x, y in inside], bands=4)  # + alpha
    for (x, y), px in zip(inside, values, strict=True):
        assert px[3] == 255
        near = {tuple(source[j, i]) for j in range(y - 1, y + 2) for i in range(x - 1, x + 2)}
        assert px[:3] in near, (x, y, px[:3])  # nearest-neighbour resampling: the pixel or a neighbour


# --- a real map source: the XYZ layer of the loopback server ---------------------------------------------------
@pytest.fixture(scope="module")
def xyz_map(_server):
    site = XyzSite(make_test_image(1000, 720, seed=63), zooms=(13, 16), origin_px=(33_000 * 256 + 96, 22_000 * 256 + 48))
    return site, site.install(_server, "/xyz-geotiff")


@pytest.mark.parametrize("ext", [".tif", ".png", ".jpg"])
def test_xyz_layer_lands_on_its_extent(xyz_map, tmp_path, ext):
    """An XYZ layer opened with its box: gdalinfo gives EPSG:3857 and the corners of the source's extent, GDAL
    finds the source's pixels at their longitude/latitude, and the .tif is a valid COG."""
    site, template = xyz_map
    img = dz.open(template, bbox=site.lonlat_bounds(), min_interval=0)
    path = tmp_path / f"map{ext}"
    result = img.save(path, progress=False, compression=0)
    world = {".png": "map.pgw", ".jpg": "map.jgw"}.get(ext)
    assert result.georeference == (f"EPSG:3857, in {world} and map{ext}.aux.xml beside it" if world else
                                   "EPSG:3857, in the file (a Cloud-Optimized GeoTIFF)")
    got = info(path)
    assert got["size"] == [1000, 720]
    assert got["coordinateSystem"]["wkt"].rstrip().endswith('ID["EPSG",3857]]')
    west, south, east, north = site.mercator_bounds()
    corners = got["cornerCoordinates"]  # gdalinfo -json rounds them to the millimetre
    np.testing.assert_allclose(corners["upperLeft"], [west, north], rtol=0, atol=1e-3)
    np.testing.assert_allclose(corners["lowerRight"], [east, south], rtol=0, atol=1e-3)
    res = (east - west) / 1000
    np.testing.assert_allclose(got["geoTransform"], [west, res, 0, north, 0, -res], rtol=1e-11)
    points = [(col, row) for col in (0, 333, 999) for row in (0, 400, 719)]
    lonlats = [mercator_lonlat(west + (c + 0.5) * res, north - (r + 0.5) * res) for c, r in points]
    for (c, r), px in zip(points, values_at(path, lonlats), strict=True):
        want = site.image[r, c].astype(int)
        assert np.abs(np.array(px) - want).max() <= (0 if ext != ".jpg" else 16), (c, r, px, want)
    if ext == ".tif":
        validate_cog(path)


# --- WMTS: a latitude-first geographic grid and a national projected grid --------------------------------------
@pytest.fixture(scope="module")
def wmts_maps(_server):
    geographic = MatrixSetSpec("WorldCRS84", "urn:ogc:def:crs:EPSG::4326", (-180.0, 90.0), (0.01, 0.005, 0.0025),
                               (52_000 + 4 * 33, 12_000 + 4 * 21), geographic=True, lat_first=True)
    swiss = MatrixSetSpec("LocalGrid", "urn:ogc:def:crs:EPSG::2056", (2_420_000.0, 1_350_000.0), (2.0, 1.0),
                          (380, 260), names=("2m", "1m"))
    sites = {}
    for spec in (geographic, swiss):  # one site each: a layer's extent is given in one set's CRS
        site = WmtsSite(make_test_image(1000, 720, seed=64), sets=[spec])
        sites[spec.ident] = site, site.install(_server, f"/wmts-geotiff-{spec.ident}")
    return sites


@pytest.mark.parametrize(("matrix_set", "crs", "corner", "res"), [
    ("WorldCRS84", "EPSG:4326", (-180.0 + 52_132 * 0.0025, 90.0 - 12_084 * 0.0025), 0.0025),
    ("LocalGrid", "EPSG:2056", (2_420_380.0, 1_349_740.0), 1.0),
])
def test_wmts_layer_lands_on_its_extent(wmts_maps, tmp_path, matrix_set, crs, corner, res):
    """GDAL reads the CRS of the matrix set (longitude first for EPSG:4326 as GeoTIFF wants, whatever the
    capabilities' axis order) and finds every probed source pixel at its coordinates; the .tif is a COG."""
    site, url = wmts_maps[matrix_set]
    img = dz.open(f"{url}#layer=plan", min_interval=0)
    assert img.levels[0].width < 1300  # the layer's extent, not its whole matrix
    path = tmp_path / "wmts.tif"
    img.save(path, level=0, progress=False)
    got = info(path)
    assert got["coordinateSystem"]["wkt"].rstrip().endswith(f'ID["EPSG",{crs[5:]}]]')
    c, a, b, f, d, e = got["geoTransform"]
    assert (a, b, d, e) == pytest.approx((res, 0, 0, -res), rel=1e-12)
    x0, y0 = corner
    pyproj = require_module("pyproj")
    to_wgs84 = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    points = [(col, row) for col in (0, 444, 999) for row in (0, 321, 719)]
    lonlats = [to_wgs84.transform(x0 + (col + 0.5) * res, y0 - (row + 0.5) * res) for col, row in points]
    assert values_at(path, lonlats) == [tuple(site.image[row, col]) for col, row in points]
    validate_cog(path)


def test_xyz_lower_zoom_lands_on_its_extent(xyz_map, tmp_path):
    """A lower zoom (its own geotransform: its tiles start elsewhere) cut to the box: GDAL finds that zoom's
    pixels at their coordinates."""
    site, template = xyz_map
    img = dz.open(template, bbox=site.lonlat_bounds(), min_interval=0)
    assert img.levels[2].zoom == 14
    path = tmp_path / "z14.tif"
    img.save(path, level=2, progress=False)
    x, y, w, h = site.pixel_box(14)
    want = site.world_image(14, (x, y, x + w, y + h))
    got = info(path)
    assert got["size"] == [w, h]
    (x0, y0), res = GOOGLE_TLC, 2 * GOOGLE_TLC[1] / 256 / 2**14
    np.testing.assert_allclose(got["geoTransform"], [x0 + x * res, res, 0, y0 - y * res, 0, -res], rtol=1e-9)
    points = [(0, 0), (w - 1, h - 1), (w // 2, h // 3)]
    lonlats = [mercator_lonlat(x0 + (x + i + 0.5) * res, y0 - (y + j + 0.5) * res) for i, j in points]
    assert values_at(path, lonlats) == [tuple(want[j, i]) for i, j in points]
    validate_cog(path)
