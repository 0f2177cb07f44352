"""LizardTech ImageServer: calcrgn XML, level geometry and centre-point tile URLs, downloads replayed."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import dezoomify_nb as dz
from dezoomify_nb.cli import main
from dezoomify_nb.dezoomers._jsweb import encode_uri_component
from dezoomify_nb.dezoomers.base import Context
from dezoomify_nb.dezoomers.lizardtech import LizardTechDezoomer, level_geometry, parse_calcrgn
from dezoomify_nb.errors import MetadataError, NeedsData, WrongDezoomer
from dezoomify_nb.testing import make_test_image
from dezoomify_nb.testing.hosts import route_hosts
from dezoomify_nb.testing.web_formats_a import LizardTechSite

from .fmt_helpers import FAST, Driver, assert_jpeg_close, load, read, serve_dict

D = LizardTechDezoomer()
#: the real Alabama Maps URL of the JS live test
ALABAMA = ("http://cartweb.geography.ua.edu/lizardtech/iserv/calcrgn?cat=North%20America%20and%20United%20States"
           "&item=NorthAmerica/US1566a.sid&wid=500&hei=400&props=item(Name,Description),cat(Name,Description)"
           "&style=default/view.xsl&plugin=true")
GETIMAGE = ("/lizardtech/iserv/getimage?cat=North%20America%20and%20United%20States&item=NorthAmerica%2FUS1566a.sid"
            "&wid=512&hei=512&oif=jpeg")


def test_js_fixture_worked_example():
    (image,) = Driver(serve_dict({ALABAMA: read("lizardtech/calcrgn.xml")})).run(D, ALABAMA)
    full = image.levels[0]
    assert [(lv.width, lv.lev, lv.dx, lv.dy) for lv in image.levels] == [(1024, 0, 0, 0), (512, 1, 0, 0)]
    # the fixture's host (fixtures.test) and path, with the input's scheme
    assert full.tile_url(0, 0) == f"http://fixtures.test{GETIMAGE}&lev=0&cp=0.25,0.25"
    assert full.tile_url(1, 1) == f"http://fixtures.test{GETIMAGE}&lev=0&cp=0.75,0.75"
    assert image.levels[1].tile_url(0, 0) == f"http://fixtures.test{GETIMAGE}&lev=1&cp=0.5,0.5"
    assert image.dezoomer == "lizardtech" and image.title == "US1566a" and full.name == "LizardTech ImageServer"
    assert pickle.loads(pickle.dumps(full)) == full


def test_levels_and_centre_corrections_of_an_uneven_image():
    geo = level_geometry(7000, 5400)
    assert [(w, h, lev) for w, h, lev, _, _ in geo] == [
        (7000, 5400, 0), (3500, 2700, 1), (1750, 1350, 2), (875, 675, 3), (438, 338, 4)]
    w, h, _, dx, dy = geo[0]  # square of 512·2^4 = 8192 at full size
    assert (dx, dy) == ((8192 - 7000) / 14000, (8192 - 5400) / 10800)
    assert geo[-1][3:] == ((512 - 438) / 876, (512 - 338) / 676)
    assert [g[:3] for g in level_geometry(300, 200)] == [(300, 200, 0)]  # one level when it fits
    assert [g[:3] for g in level_geometry(513, 10)] == [(513, 10, 0), (257, 5, 1)]


def test_real_style_reply_full_and_edge_tiles():
    (image,) = Driver(serve_dict({ALABAMA: read("lizardtech/alabama_calcrgn.xml")})).run(D, ALABAMA)
    full = image.levels[0]
    assert (full.width, full.height, full.cols, full.rows) == (7000, 5400, 14, 11)
    base = f"http://cartweb.geography.ua.edu{GETIMAGE[:-len('&wid=512&hei=512&oif=jpeg')]}"
    # a full tile: the JS's URL exactly, cp = (x + 0.5)·512 / W − dx
    assert full.tile_url(0, 0) == f"{base}&wid=512&hei=512&oif=jpeg&lev=0&cp=-0.04857142857142857,-0.21111111111111114"
    # the last column is 7000 − 13·512 = 344 px: a window of exactly that, centred on it
    cx = (13 * 512 + 172) / 7000 - (8192 - 7000) / 14000
    cy = (10 * 512 + 140) / 5400 - (8192 - 5400) / 10800
    assert full.tile_url(13, 10) == f"{base}&wid=344&hei=280&oif=jpeg&lev=0&cp={cx!r},{cy!r}"


def test_item_from_name_and_parent_and_catalog_from_parameter():
    xml = (b'<ImageServer><Request><Parameter name="cat">Maps &amp; Plans</Parameter></Request><Catalog>'
           b'<Image width="600" height="500" name="a b.sid" parent="Old/Maps"/></Catalog></ImageServer>')
    info = parse_calcrgn(xml, "https://maps.example.org:8080/lizardtech/iserv/calcrgn?cat=x&item=y")
    assert (info.origin, info.catalog, info.item) == (
        "https://maps.example.org:8080/lizardtech/iserv/calcrgn", "Maps & Plans", "Old/Maps/a b.sid")
    assert encode_uri_component(info.item) == "Old%2FMaps%2Fa%20b.sid"
    assert encode_uri_component("é'()*!~ +&=") == "%C3%A9'()*!~%20%2B%26%3D"


@pytest.mark.parametrize("xml", [
    b"<ImageServer><Catalog/></ImageServer>",
    b'<ImageServer><Catalog name="c"><Image width="0" height="5" name="n"/></Catalog></ImageServer>',
    b'<ImageServer><Catalog name="c"><Image width="x" height="5" name="n"/></Catalog></ImageServer>',
    b'<ImageServer><Catalog name="c"><Image width="10" height="5"/></Catalog></ImageServer>',
    b'<ImageServer host="evil.org/x?" ><Catalog name="c"><Image width="10" height="5" name="n"/></Catalog></ImageServer>',
    b'<ImageServer path="a/../../b"><Catalog name="c"><Image width="10" height="5" name="n"/></Catalog></ImageServer>',
    b"<html>Server error</html",
])
def test_broken_replies(xml):
    with pytest.raises(MetadataError):
        parse_calcrgn(xml, ALABAMA)


def test_size_over_the_cap():
    xml = b'<ImageServer><Catalog name="c"><Image width="20000000" height="5" name="n"/></Catalog></ImageServer>'
    with pytest.raises(MetadataError):
        D.images(Context(ALABAMA, {ALABAMA: xml}))


def test_only_calcrgn_urls():
    with pytest.raises(NeedsData):
        D.images(Context(ALABAMA.replace("/lizardtech/", "/LizardTech/")))  # the JS rule ignores case
    for url in ("https://h/lizardtech/iserv/getimage?cat=a", "https://h/image.dzi", "lizardtech/iserv/calcrgn?x"):
        with pytest.raises(WrongDezoomer):
            D.images(Context(url))


# -------------------------------------------------------------------- replayed on the loopback server
@pytest.fixture(scope="module")
def site(_server):
    s = LizardTechSite(make_test_image(1300, 1100, seed=21), origin="http://cartweb.geography.ua.edu")
    s.install(_server, "/lizardtech-t")
    return s


def test_the_alabama_url_auto_detected_and_every_level_pixel_exact(server, site):
    assert site.calcrgn_url == ALABAMA
    with route_hosts(server, site.hosts):
        img = dz.open(ALABAMA, **FAST)
        sizes = [(1300, 1100), (650, 550), (325, 275)]
        assert img.dezoomer == "lizardtech" and [lv.size for lv in img.levels] == sizes
        for k, size in enumerate(sizes):
            np.testing.assert_array_equal(img.to_dask(level=k).compute(), site.level_image(size))
    assert server.count("/calcrgn?") == 1 and server.count("/getimage?") == 3 * 3 + 2 * 2 + 1
    assert not any("/ImageProperties.xml" in p for p in server.requests)  # recognised before zoomify


def test_on_bare_loopback_without_host_attribute(server, _server):
    s = LizardTechSite(make_test_image(900, 700, seed=2), declare_host=False, catalog="Maps", item="x/y z.sid")
    url = s.install(_server, "/lizardtech-b")
    img = dz.open(url, **FAST)
    np.testing.assert_array_equal(img.to_dask(level=0).compute(), s.level_image((900, 700)))
    assert any("item=x%2Fy%20z.sid" in p for p in server.requests)


def test_cli_forced_dezoomer_jpeg(server, _server, tmp_path, capsys):
    jpeg = LizardTechSite(make_test_image(1100, 600, seed=9), lossless=False, origin="http://maps.example.edu")
    jpeg.install(_server, "/lizardtech-j")
    out = tmp_path / "lt.png"
    with route_hosts(server, jpeg.hosts):
        code = main(["-i", "0ms", "--retry-delay", "10ms", "--dezoomer", "lizardtech", "--largest",
                     jpeg.calcrgn_url, str(out)])
    assert code == 0, capsys.readouterr().err
    assert_jpeg_close(load(out), jpeg.level_image((1100, 600)))


@pytest.mark.network
def test_live_alabama_maps():
    img = dz.open(ALABAMA)
    assert img.dezoomer == "lizardtech"
    arr = img.to_dask(level=len(img.levels) - 1).compute()
    assert arr.shape[:2] == (img.levels[-1].height, img.levels[-1].width)
