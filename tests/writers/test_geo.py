"""The georeference writers without GDAL: CRS spellings, GeoKeys, world files, PAM documents, cropping.
(GDAL reads them back in tests/conformance/test_geotiff.py.)"""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pytest
import tifffile

from dezoomify_nb.model import GeoRef, Image, TemplateLevel
from dezoomify_nb.writers.base import ArraySource
from dezoomify_nb.writers.geo import (
    GEOGRAPHIC_2D,
    aux_xml,
    crs_info,
    georef_for,
    geotiff_tags,
    usable,
    world_file,
    world_file_path,
    write_sidecars,
)
from dezoomify_nb.writers.tiff import TIFFWriter

WKT_3857_TOP = 'PROJCS["WGS 84 / Pseudo-Mercator",GEOGCS["WGS 84",AUTHORITY["EPSG","4326"]],AUTHORITY["EPSG","3857"]]'


@pytest.mark.parametrize(("crs", "epsg", "geographic"), [
    ("EPSG:3857", 3857, False),
    ("epsg:4326", 4326, True),
    ("urn:ogc:def:crs:EPSG::2056", 2056, False),
    ("urn:ogc:def:crs:EPSG:6.18.3:3857", 3857, False),
    ("http://www.opengis.net/def/crs/EPSG/0/4258", 4258, True),
    ("EPSG:900913", 3857, False),
    ("ESRI:102100", 3857, False),
    ("urn:ogc:def:crs:OGC:1.3:CRS84", 4326, True),
    ("EPSG:4087", 4087, False),  # a projected CRS among the 4000s
    ("EPSG:7844", 7844, True),  # a geographic one outside them (GDA2020)
    (WKT_3857_TOP, 3857, False),  # the outermost AUTHORITY, not the nested GEOGCS's
    ('GEOGCS["x",DATUM["d",SPHEROID["s",6378137,298.25]],UNIT["degree",0.0174532925199433]]', None, True),
    ('PROJCRS["y",BASEGEOGCRS["g",ID["EPSG",4326]],CONVERSION["c"],ID["EPSG",32632]]', 32632, False),
])
def test_crs_spellings(crs, epsg, geographic):
    info = crs_info(crs)
    assert (info.epsg, info.geographic) == (epsg, geographic)
    assert (info.wkt is not None) == crs.lstrip().upper().startswith(("GEOG", "PROJ"))


def test_geographic_table():
    assert {4326, 4258, 4269, 4283, 4490, 4617, 6318, 7844} <= GEOGRAPHIC_2D
    assert not {3857, 2056, 2154, 27700, 32632, 4087, 4978, 5514} & GEOGRAPHIC_2D
    assert len(GEOGRAPHIC_2D) == 585


def test_unknown_crs_is_left_out(caplog):
    info = crs_info("not a crs at all")
    assert info.epsg is None and info.wkt is None
    directory = dict_of(geotiff_tags(GeoRef("not a crs at all", (0, 1, 0, 0, 0, -1))))[34735]
    assert directory == (1, 1, 0, 1, 1025, 0, 1, 1)  # raster type only: no CRS claimed


def dict_of(tags):
    return {code: value for code, _, _, value, _ in tags}


def test_geotiff_tags_north_up_projected():
    tags = dict_of(geotiff_tags(GeoRef("EPSG:2056", (2_600_000.0, 2.5, 0.0, 1_200_000.0, 0.0, -2.5))))
    assert tags[33550] == (2.5, 2.5, 0.0)
    assert tags[33922] == (0.0, 0.0, 0.0, 2_600_000.0, 1_200_000.0, 0.0)
    assert 34264 not in tags and 34737 not in tags
    # version 1.1.0, 3 keys: model type projected, raster type area, ProjectedCSTypeGeoKey 2056
    assert tags[34735] == (1, 1, 0, 3, 1024, 0, 1, 1, 1025, 0, 1, 1, 3072, 0, 1, 2056)


def test_geotiff_tags_geographic_rotated_and_gcps():
    tags = dict_of(geotiff_tags(GeoRef("EPSG:4326", (5.0, 0.001, 0.0005, 45.0, 0.0005, -0.001))))
    assert tags[34264] == (0.001, 0.0005, 0.0, 5.0, 0.0005, -0.001, 0.0, 45.0, 0, 0, 0, 0, 0, 0, 0, 1)
    assert 33550 not in tags and 33922 not in tags
    assert tags[34735][4:] == (1024, 0, 1, 2, 1025, 0, 1, 1, 2048, 0, 1, 4326)
    gcps = ((0, 0, 4.0, 50.0), (100, 0, 5.0, 50.0), (0, 80, 4.0, 49.0))
    tags = dict_of(geotiff_tags(GeoRef("EPSG:4326", None, gcps)))
    assert tags[33922] == (0, 0, 0, 4.0, 50.0, 0, 100, 0, 0, 5.0, 50.0, 0, 0, 80, 0, 4.0, 49.0, 0)
    assert 33550 not in tags


def test_geotiff_tags_wkt_only():
    wkt = 'PROJCS["local",GEOGCS["g",DATUM["d",SPHEROID["s",6378137,298.257]]],PROJECTION["Mercator_1SP"]]'
    tags = dict_of(geotiff_tags(GeoRef(wkt, (0.0, 1.0, 0.0, 0.0, 0.0, -1.0))))
    citation = f"ESRI PE String = {wkt}|"
    assert tags[34737] == citation
    assert tags[34735] == (1, 1, 0, 3, 1024, 0, 1, 32767, 1025, 0, 1, 1, 3073, 34737, len(citation), 0)


def test_usable():
    assert usable(GeoRef("EPSG:3857", (0, 1, 0, 0, 0, -1)))
    assert not usable(GeoRef("EPSG:3857", (0, 0, 0, 0, 0, -1)))  # singular
    assert not usable(GeoRef("EPSG:3857", (float("nan"), 1, 0, 0, 0, -1)))
    assert not usable(GeoRef("EPSG:4326", None, ((0, 0, 1, 1), (1, 0, 2, 1))))  # two GCPs
    assert not usable(None)


def test_world_file_is_pixel_centred():
    assert world_file((1000.0, 10.0, 0.0, 6000.0, 0.0, -10.0)).split() == [
        "10.0", "0.0", "0.0", "-10.0", "1005.0", "5995.0"]
    assert world_file((0.0, 2.0, 1.0, 0.0, 1.0, -2.0)).split() == ["2.0", "1.0", "1.0", "-2.0", "1.5", "-0.5"]
    assert world_file_path(Path("a/map.png")) == Path("a/map.pgw")
    assert world_file_path(Path("map.jpeg")) == Path("map.jgw")
    assert world_file_path(Path("map.webp")) == Path("map.wpw")


def test_aux_xml():
    doc = ElementTree.fromstring(aux_xml(GeoRef("EPSG:3857", (1.0, 2.0, 0.0, 3.0, 0.0, -2.0))))
    assert doc.findtext("SRS").startswith('PROJCS["WGS 84 / Pseudo-Mercator"')
    assert doc.findtext("SRS").endswith('AUTHORITY["EPSG","3857"]]')
    assert doc.findtext("GeoTransform") == "1.0, 2.0, 0.0, 3.0, 0.0, -2.0"
    doc = ElementTree.fromstring(aux_xml(GeoRef("EPSG:4326", None, ((0.5, 1.5, 4.0, 50.0),)),
                                         {"TRANSFORMATION": "polynomial"}))
    assert doc.find("GeoTransform") is None and doc.find("SRS") is None
    assert doc.find("GCPList").get("Projection").startswith('GEOGCS["WGS 84"')
    assert doc.find("GCPList/GCP").attrib == {"Id": "1", "Pixel": "0.5", "Line": "1.5", "X": "4.0", "Y": "50.0",
                                               "Z": "0"}
    assert doc.find("Metadata/MDI").attrib == {"key": "TRANSFORMATION"}
    assert doc.findtext("Metadata/MDI") == "polynomial"


def test_write_sidecars(tmp_path):
    png = tmp_path / "m.png"
    png.write_bytes(b"")
    paths = write_sidecars(png, GeoRef("EPSG:3857", (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)))
    assert [p.name for p in paths] == ["m.pgw", "m.png.aux.xml"]
    paths = write_sidecars(png, GeoRef("EPSG:4326", None, ((0, 0, 1, 1),) * 3))
    assert [p.name for p in paths] == ["m.png.aux.xml"]  # GCPs: no world file


def test_georef_for_level_and_region():
    full = TemplateLevel(1000, 700, 256, 256, template="x")
    half = TemplateLevel(500, 350, 256, 256, template="x")
    image = Image((full, half), georef=GeoRef("EPSG:3857", (100.0, 2.0, 0.0, 900.0, 0.0, -2.0),
                                              ((10.0, 20.0, 1.0, 2.0),)))
    assert georef_for(image, 1).transform == (100.0, 4.0, 0.0, 900.0, 0.0, -4.0)
    cut = georef_for(image, 1, (50, 30, 100, 100))
    assert cut.transform == (300.0, 4.0, 0.0, 780.0, 0.0, -4.0)
    assert cut.gcps == ((5.0 - 50, 10.0 - 30, 1.0, 2.0),)
    assert georef_for(Image((full,)), 0) is None


def test_tiff_writer_writes_geokeys_on_the_main_image_only(tmp_path):
    src = np.zeros((600, 700, 3), np.uint8)
    path = tmp_path / "g.tif"
    georef = GeoRef("EPSG:3857", (1.0, 2.0, 0.0, 3.0, 0.0, -2.0))
    TIFFWriter().write(path, ArraySource(src, georef=georef))
    with tifffile.TiffFile(path) as tf:
        main = tf.pages[0]
        assert main.tags["ModelPixelScaleTag"].value == (2.0, 2.0, 0.0)
        assert main.tags["GeoKeyDirectoryTag"].value[-1] == 3857
        assert "GeoKeyDirectoryTag" not in tf.pages[1].tags
    plain = tmp_path / "p.tif"
    TIFFWriter().write(plain, ArraySource(src))
    with tifffile.TiffFile(plain) as tf:
        assert "GeoKeyDirectoryTag" not in tf.pages[0].tags


def test_cog_layout_without_gdal(tmp_path):
    """A georeferenced TIFF is laid out as a COG (GDAL's validator checks it in tests/conformance): ghost area
    after the header, every IFD before any tile, the smallest level's tiles first, each tile between its size
    and a copy of its last 4 bytes; the pixels are those of the plain pyramid."""
    src = np.random.default_rng(1).integers(0, 255, (1100, 1300, 3), dtype=np.uint8)
    path, plain = tmp_path / "g.tif", tmp_path / "p.tif"
    TIFFWriter().write(path, ArraySource(src, georef=GeoRef("EPSG:3857", (0.0, 1.0, 0.0, 0.0, 0.0, -1.0))))
    TIFFWriter().write(plain, ArraySource(src))
    data = path.read_bytes()
    assert data[:4] == b"II*\0" and data[8:38] == b"GDAL_STRUCTURAL_METADATA_SIZE="
    with tifffile.TiffFile(path) as tf, tifffile.TiffFile(plain) as tp:
        assert not tf.is_bigtiff and tp.is_bigtiff
        ifds = [p.offset for p in tf.pages]
        firsts = [p.dataoffsets[0] for p in tf.pages]
        assert ifds == sorted(ifds) and max(ifds) < min(firsts)
        assert firsts == sorted(firsts, reverse=True)  # smallest level first, full resolution last
        for page in tf.pages:
            assert list(page.dataoffsets) == sorted(page.dataoffsets)
            for off, n in zip(page.dataoffsets, page.databytecounts, strict=True):
                assert int.from_bytes(data[off - 4 : off], "little") == n
                assert data[off + n - 4 : off + n] == data[off + n : off + n + 4]
        assert len(tf.pages) == len(tp.pages) == 3
        for a, b in zip(tf.series[0].levels, tp.series[0].levels, strict=True):
            np.testing.assert_array_equal(a.asarray(), b.asarray())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.tif", "p.tif"]


def test_hostile_wkt_stays_one_ascii_geokey():
    wkt = 'PROJCS["Carte de l’État|x",GEOGCS["g",DATUM["d",SPHEROID["s",6378137,298.257]]],PROJECTION["Mercator_1SP"]]'
    tags = dict_of(geotiff_tags(GeoRef(wkt, (0.0, 1.0, 0.0, 0.0, 0.0, -1.0))))
    citation = tags[34737]
    assert citation.isascii() and citation.count("|") == 1 and citation.endswith("|")
    assert citation.startswith('ESRI PE String = PROJCS["Carte de l??tat x",')


def test_unusable_georeference_is_not_written(server, tmp_path, caplog):
    from dataclasses import replace

    import dezoomify_nb as dz
    from dezoomify_nb.api import ZoomableImage

    im = dz.open(server.url("dzi-png"))
    bad = ZoomableImage(replace(im.image, georef=GeoRef("EPSG:3857", (float("inf"), 1, 0, 0, 0, -1))), im.net)
    result = bad.save(tmp_path / "m.png", progress=False)
    assert result.georeference is None
    assert [p.name for p in tmp_path.iterdir()] == ["m.png"]
    assert "georeference is unusable" in caplog.text
