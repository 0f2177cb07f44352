"""XLimage: info XML parsing, kbr.be page URLs, z=1 tile URLs, and downloads from the loopback emulation."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import dezoomify_nb as dz
from dezoomify_nb.cli import main
from dezoomify_nb.dezoomers.base import Context
from dezoomify_nb.dezoomers.xlimage import XLimageDezoomer, XLimageLevel, info_url, parse_info
from dezoomify_nb.errors import MetadataError, NeedsData, WrongDezoomer
from dezoomify_nb.resolve import resolve
from dezoomify_nb.testing import make_test_image
from dezoomify_nb.testing.hosts import route_hosts
from dezoomify_nb.testing.xlimage import XLimageSite

from .fmt_helpers import FAST, assert_jpeg_close, load, read, urls

D = XLimageDezoomer()


def test_reference_example():
    url = "https://fixtures.test/xl/sample.imgi?cmd=info"
    (image,) = resolve(url, pages={url: read("xlimage/js_fixture_info.xml")})
    assert image.dezoomer == "xlimage" and image.title == "sample"
    (level,) = image.levels
    assert isinstance(level, XLimageLevel) and (level.width, level.height, level.tile_width) == (512, 512, 256)
    assert urls(level)[0] == "https://fixtures.test/xl/sample.imgi?cmd=tile&x=0&y=0&z=1"
    assert urls(level)[-1] == "https://fixtures.test/xl/sample.imgi?cmd=tile&x=1&y=1&z=1"
    assert pickle.loads(pickle.dumps(level)) == level


def test_centrica_info_with_extra_elements_and_latin1():
    url = "http://uffizicloud.centrica.it/7711/closer/hi-res/A1456.imgf?cmd=info"
    (image,) = resolve(url, pages={url: read("xlimage/centrica_info.xml")})
    level = image.levels[0]
    assert (level.width, level.height, level.tile_width, level.cols, level.rows) == (13460, 9844, 256, 53, 39)
    assert level.tile_url(40, 38) == "http://uffizicloud.centrica.it/7711/closer/hi-res/A1456.imgf?cmd=tile&x=40&y=38&z=1"


@pytest.mark.parametrize(("url", "expected"), [
    ("https://www.kbr.be/multi/15-58-106Viewer", "https://www.kbr.be/multi/15-58-106Viewer/xml.php?/multi/15-58-106/001.imgi?cmd=info"),
    ("https://www.kbr.be/multi/ms_9961Viewer/index.php#page=12",
     "https://www.kbr.be/multi/ms_9961Viewer/xml.php?/multi/ms_9961/012.imgi?cmd=info"),
    ("http://kbr.be/multi/abcViewer?lang=fr&page=3", "http://kbr.be/multi/abcViewer/xml.php?/multi/abc/003.imgi?cmd=info"),
    ("https://h/x/a.imgi?cmd=info&t=1", "https://h/x/a.imgi?cmd=info&t=1"),
])
def test_info_url(url, expected):
    assert info_url(url) == expected


def test_kbr_origin_keeps_the_php_query():
    url = "https://www.kbr.be/multi/abcViewer#page=2"
    meta = "https://www.kbr.be/multi/abcViewer/xml.php?/multi/abc/002.imgi?cmd=info"
    with pytest.raises(NeedsData) as need:
        D.images(Context(url))
    assert need.value.urls == (meta,)
    (image,) = D.images(Context(url, {meta: read("xlimage/js_fixture_info.xml")}))
    assert image.levels[0].tile_url(1, 0) == "https://www.kbr.be/multi/abcViewer/xml.php?/multi/abc/002.imgi?cmd=tile&x=1&y=0&z=1"


@pytest.mark.parametrize(("body", "match"), [
    (b"<image><width>512</width><height>512</height></image>", "tileside"),
    (b"<image><width>x</width><height>512</height><tileside>256</tileside></image>", "invalid <width>"),
    (b"<image><width>0</width><height>512</height><tileside>256</tileside></image>", "geometry"),
    (b"<image><width>99999999999</width><height>1</height><tileside>256</tileside></image>", "geometry"),
    (b"not xml", "not XML"),
])
def test_bad_info(body, match):
    with pytest.raises(MetadataError, match=match):
        parse_info(body)


def test_parse_int_semantics():
    assert parse_info(b"<i><width> 640px</width><height>+480</height><tileside>128.0</tileside></i>") == (640, 480, 128)


def test_not_xlimage():
    for url in ("https://h/a/info.json", "https://h/x.imgi?cmd=tile&x=0&y=0&z=1", "https://kbr.be/other"):
        with pytest.raises(WrongDezoomer):
            D.images(Context(url))
    with pytest.raises(MetadataError, match="page number"):
        info_url("https://www.kbr.be/multi/xViewer#page=0")


# --- end to end -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def site(_server, source):
    s = XLimageSite([source, make_test_image(300, 420, seed=31)])
    s.install(_server, "/xl-t")
    return s


def test_auto_detects_and_downloads(server, site):
    img = dz.open(site.info_url(), **FAST)
    assert img.dezoomer == "xlimage" and img.title == "A1456"
    np.testing.assert_array_equal(img.to_dask().compute(), site.level_image(1))
    assert all("z=1" in p for p in server.requests if "cmd=tile" in p)


def test_kbr_viewer_page_two(server, site):
    with route_hosts(server, {"www.kbr.be": "/xl-t"}):
        img = dz.open(f"https://www.kbr.be/multi/{site.kbr_id}Viewer#page=2", **FAST)
        assert img.dezoomer == "xlimage" and (img.width, img.height) == (300, 420)
        np.testing.assert_array_equal(img.to_dask().compute(), site.level_image(2))
    assert f"/xl-t/multi/{site.kbr_id}Viewer/xml.php?/multi/{site.kbr_id}/002.imgi?cmd=info" in server.requests


def test_cli_jpeg(server, _server, tmp_path, capsys):
    jpeg = XLimageSite([make_test_image(700, 333, seed=32)], lossless=False, tile_size=200, name="B77.imgi")
    url = jpeg.install(_server, "/xl-j")
    code = main(["-i", "0ms", "--dezoomer", "xlimage", url, str(tmp_path / "x.png")])
    assert code == 0, capsys.readouterr().err
    assert_jpeg_close(load(tmp_path / "x.png"), jpeg.level_image())


@pytest.mark.network
def test_live_centrica():
    img = dz.open("http://uffizicloud.centrica.it/7711/closer/hi-res/A1456.imgf?cmd=info")
    assert img.dezoomer == "xlimage" and img.levels[0].width > 1000
