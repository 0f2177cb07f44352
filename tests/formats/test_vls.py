"""Visual Library Server: URL rule, zoom page (XHTML and tag soup), 1024 px square tiles, replayed."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import dezoomify_nb as dz
from dezoomify_nb.cli import main
from dezoomify_nb.dezoomers.base import Context
from dezoomify_nb.dezoomers.vls import VlsDezoomer, parse_zoom_page, zoom_url
from dezoomify_nb.errors import MetadataError, NeedsData, WrongDezoomer
from dezoomify_nb.testing import make_test_image
from dezoomify_nb.testing.hosts import route_hosts
from dezoomify_nb.testing.web_formats_a import VlsSite

from .fmt_helpers import FAST, Driver, assert_jpeg_close, load, read, serve_dict, urls

D = VlsDezoomer()


def test_js_fixture_worked_example():
    zoom = "https://fixtures.test/vls/zoom/1"
    drv = Driver(serve_dict({zoom: read("vls/zoom_1.xml")}))
    (image,) = drv.run(D, zoom)
    (level,) = image.levels
    assert (level.width, level.height, level.tile_width) == (512, 512, 1024)
    assert urls(level) == ["https://fixtures.test/image/tiler/square/fixture/0/0/0"]
    assert image.dezoomer == "vls" and level.name == "VLS" and drv.requests == [zoom]
    assert pickle.loads(pickle.dumps(level)) == level


@pytest.mark.parametrize(("url", "expected"), [
    ("https://www.e-rara.ch/bau_1/ch17/content/pageview/4243948", "https://www.e-rara.ch/bau_1/ch17/content/zoom/4243948"),
    ("https://h/content/thumbview/12", "https://h/content/zoom/12"),
    ("http://digital.blb-karlsruhe.de/blbhs/content/zoom/2410801", "http://digital.blb-karlsruhe.de/blbhs/content/zoom/2410801"),
])
def test_zoom_url(url, expected):
    assert zoom_url(url) == expected
    with pytest.raises(NeedsData) as need:
        D.images(Context(url))
    assert need.value.urls == (expected,)


@pytest.mark.parametrize("url", ["https://h/content/pageview/12?x=1", "https://h/content/pageview/abc",
                                 "https://h/image.dzi", "/local/content/zoom/12"])
def test_not_vls(url):
    with pytest.raises(WrongDezoomer):
        D.images(Context(url))


def test_xhtml_zoom_page_rounds_the_height_up():
    page = "https://www.e-rara.ch/bau_1/ch17/content/zoom/4243948"
    assert parse_zoom_page(read("vls/e-rara_zoom.xhtml")) == ("4243948", 3912, 5030, 512)
    (image,) = Driver(serve_dict({page: read("vls/e-rara_zoom.xhtml")})).run(D, page)
    level = image.levels[0]
    assert (level.width, level.height) == (3912, 5120)  # 5030 rounded up to a multiple of 512
    assert (level.cols, level.rows) == (4, 5)
    assert level.tile_url(3, 4) == "https://www.e-rara.ch/image/tiler/square/4243948/0/3/4"


def test_tag_soup_page_is_read_as_html():
    assert parse_zoom_page(read("vls/blb_zoom_tagsoup.html")) == ("2410801", 2848, 4221, 256)


@pytest.mark.parametrize("body", [
    b"<html><body><div id='map'></div></body></html>",
    b'<div id="map" vls:ot_id="1" vls:width="x" vls:height="3"/>',
    b'<div id="map" vls:ot_id="1" vls:width="100"/>',
    b"<html>Not found</html>",
])
def test_broken_pages(body):
    with pytest.raises(MetadataError):
        parse_zoom_page(body)


def test_without_zoom_tile_size_the_height_is_kept_and_ids_are_escaped():
    ot_id, w, h, zts = parse_zoom_page(b'<div id="map" vls:ot_id="a/b c" vls:width="2000" vls:height="999"></div>')
    assert (ot_id, w, h, zts) == ("a/b c", 2000, 999, None)
    page = "https://h/content/zoom/1"
    body = b'<div id="map" vls:ot_id="a/b c" vls:width="2000" vls:height="999"></div>'
    (image,) = Driver(serve_dict({page: body})).run(D, page)
    assert image.levels[0].height == 999 and image.levels[0].tile_url(1, 0) == "https://h/image/tiler/square/a%2Fb%20c/0/1/0"


def test_absurd_size_is_capped():
    page = "https://h/content/zoom/1"
    body = b'<div id="map" vls:ot_id="1" vls:width="999999999" vls:height="999999999"></div>'
    with pytest.raises(MetadataError, match="sanity cap"):
        D.images(Context(page, {page: body}))


# -------------------------------------------------------------------- replayed on the loopback server
@pytest.fixture(scope="module")
def site(_server):
    s = VlsSite(make_test_image(2300, 1300, seed=31))
    s.install(_server, "/vls-t")
    return s


def test_pageview_url_auto_detected_and_downloaded(server, site):
    with route_hosts(server, site.hosts):
        img = dz.open(site.pageview_url, **FAST)
        assert img.dezoomer == "vls" and (img.width, img.height) == (2300, 1536) == (2300, site.declared_height)
        got = img.to_dask().compute()
    np.testing.assert_array_equal(got[:1300], site.level_image((2300, 1300)))
    assert not got[1300:].any()  # the JS's rounded-up height: an empty strip at the bottom
    assert server.count("/image/tiler/square/") == 3 * 2
    assert not any("ImageProperties.xml" in p for p in server.requests)  # recognised before zoomify


def test_tag_soup_site_with_cli_forced_dezoomer(server, _server, tmp_path, capsys):
    soup = VlsSite(make_test_image(1500, 1000, seed=4), well_formed=False, lossless=False, zoom_tile=256,
                   origin="http://digital.blb-karlsruhe.de", section="/blbhs/content", page_id=2410801)
    soup.install(_server, "/vls-j")
    out = tmp_path / "vls.png"
    with route_hosts(server, soup.hosts):
        code = main(["-i", "0ms", "--retry-delay", "10ms", "--dezoomer", "vls", "--largest",
                     soup.pageview_url.replace("/pageview/", "/zoom/"), str(out)])
    assert code == 0, capsys.readouterr().err
    assert_jpeg_close(load(out)[:1000], soup.level_image((1500, 1000)))


@pytest.mark.network
def test_live_e_rara():
    img = dz.open("https://www.e-rara.ch/bau_1/ch17/content/pageview/4243948")
    assert img.dezoomer == "vls"
    arr = img.to_dask()[:512, :512].compute()
    assert arr.shape == (512, 512, 3)
