"""Mnesys (naoned): p.xml layers, playlists (one image per page), viewer pages, downloads replayed."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import dezoomify_nb as dz
from dezoomify_nb.cli import main
from dezoomify_nb.dezoomers.base import Context
from dezoomify_nb.dezoomers.mnesys import MnesysDezoomer, p_xml_of, parse_layers, title_of_folder
from dezoomify_nb.errors import MetadataError, NeedsData, WrongDezoomer
from dezoomify_nb.model import ImageRef
from dezoomify_nb.testing import make_test_image
from dezoomify_nb.testing.hosts import route_hosts
from dezoomify_nb.testing.web_formats_a import MnesysSite

from .fmt_helpers import FAST, Driver, assert_jpeg_close, load, read, serve_dict, urls

D = MnesysDezoomer()
BESANCON = "http://memoirevive.besancon.fr/accounts/mnesys_besancon/datas/medias/Musees/M0333/1694-1-3_01_jpg_/p.xml"
AIN = "http://www.archives-ain.fr/accounts/mnesys_ad01/datas"


def test_js_fixture_worked_example_with_the_layer_prefix():
    p_xml = "https://fixtures.test/mnesys/p.xml"
    (image,) = Driver(serve_dict({p_xml: read("mnesys/p.xml")})).run(D, p_xml)
    (level,) = image.levels
    assert (level.width, level.height, level.tile_width, level.z) == (512, 512, 256, 0)
    # The JS asks for 1_0.jpg … 1_3.jpg here: its best-layer index 0 is falsy, so its engine falls back to
    # ceil(log2(512/256)) = 1. The prefix is the layer number (issue #360: 3_{n}.jpg for layer 3 of 4).
    assert urls(level) == [f"https://fixtures.test/mnesys/0_{n}.jpg" for n in range(4)]
    assert image.dezoomer == "mnesys" and level.name == "Mnesys"
    assert pickle.loads(pickle.dumps(level)) == level


def test_besancon_layers_match_the_tiles_of_issue_360():
    levels = parse_layers(read("mnesys/besancon_p.xml"), BESANCON)
    assert [(lv.z, lv.width, lv.height) for lv in levels] == [
        (0, 467, 550), (1, 933, 1100), (2, 1866, 2199), (3, 3732, 4397)]
    full = levels[-1]
    assert (full.cols, full.rows) == (8, 9)
    # issue #360's tiles.yaml: 3_{x/512 + y/512 * (1 + 3732/512)}.jpg
    assert full.tile_url(1, 2) == BESANCON.replace("p.xml", "3_17.jpg")
    assert levels[0].tile_url(0, 1) == BESANCON.replace("p.xml", "0_1.jpg")
    assert title_of_folder(BESANCON) == "1694-1-3_01"


def test_p_xml_names_from_playlist_pages():
    assert p_xml_of("FRAD001_0001.jpg") == "FRAD001_0001_jpg_/p.xml"
    assert p_xml_of("1694-1-3_01.jpg") == "1694-1-3_01_jpg_/p.xml"
    assert p_xml_of("a.b.jpg") == "a_b.jpg_/p.xml"  # only the first dot, as the JS


def test_playlist_gives_one_image_per_page():
    playlist = f"{AIN}/playlists/FRAD001_EC_001.xml"
    (first, second, third) = D.images(Context(playlist, {playlist: read("mnesys/playlist.xml")}))
    assert all(isinstance(r, ImageRef) and r.dezoomer == "mnesys" for r in (first, second, third))
    assert second.url == f"{AIN}/medias/etat_civil/FRAD001_EC_001/FRAD001_EC_001_0002_jpg_/p.xml"
    assert (first.title, third.title) == ("FRAD001_EC_001_0001", "FRAD001_EC_001_0003")


def test_img_num_picks_one_page():
    playlist = f"{AIN}/playlists/FRAD001_EC_001.xml?img_num=2"
    p_xml = f"{AIN}/medias/etat_civil/FRAD001_EC_001/FRAD001_EC_001_0003_jpg_/p.xml"
    drv = Driver(serve_dict({playlist: read("mnesys/playlist.xml"), p_xml: read("mnesys/besancon_p.xml")}))
    (image,) = drv.run(D, playlist)
    assert drv.requests == [playlist, p_xml] and image.title == "FRAD001_EC_001_0003"
    with pytest.raises(MetadataError, match="page 7 asked"):
        seven = playlist.replace("=2", "=7")
        Driver(serve_dict({seven: read("mnesys/playlist.xml")})).run(D, seven)


def test_viewer_page_flashvars_cur_item():
    page = "http://www.archives-ain.fr/?id=viewer&doc=accounts/mnesys_ad01/datas/ir/FRAD001.xml&img_num=0"
    playlist = "http://www.archives-ain.fr/accounts/mnesys_ad01/datas/playlists/FRAD001_EC_001.xml"
    p_xml = f"{AIN}/medias/etat_civil/FRAD001_EC_001/FRAD001_EC_001_0003_jpg_/p.xml"  # cur_item=2 wins
    drv = Driver(serve_dict({page: read("mnesys/viewer.html"), playlist: read("mnesys/playlist.xml"),
                             p_xml: read("mnesys/besancon_p.xml")}))
    (image,) = drv.run(D, page)
    assert drv.requests == [page, playlist, p_xml]


@pytest.mark.parametrize(("body", "message"), [
    (b"<html><div id='naoned_viewer'></div></html>", "Unable to find a mnesys viewer"),
    (b'<div id="naoned_viewer"></div><script>flashVars = "cur_item=1&lang=fr"</script>', "no playlist"),
])
def test_viewer_pages_without_a_playlist(body, message):
    with pytest.raises(MetadataError, match=message):
        D.images(Context("https://h/viewer", {"https://h/viewer": body}))


@pytest.mark.parametrize("body", [
    b"<root/>", b"<root><layer z='a' w='1' h='1' t='1'/></root>", b"not xml",
    b"<root><layer z='0' w='99999999999' h='1' t='256'/></root>", b"<root><layer z='0' w='10' h='10' t='0'/></root>",
])
def test_broken_p_xml(body):
    with pytest.raises(MetadataError):
        parse_layers(body, "https://h/x_jpg_/p.xml")


@pytest.mark.parametrize("body", [b"<html/>", b"<playlist host='h'/>", b"<playlist><b>x.jpg</b></playlist>", b"{"])
def test_broken_playlists(body):
    url = "https://h/datas/playlists/x.xml"
    with pytest.raises(MetadataError):
        D.images(Context(url, {url: body}))


def test_playlist_pointing_outside_the_web_is_refused():
    url = "https://h/datas/playlists/x.xml"
    with pytest.raises(MetadataError, match="only http"):
        D.images(Context(url, {url: b'<playlist host="file:///etc/" basepath=""><a>x.jpg</a></playlist>'}))


def test_detection():
    with pytest.raises(NeedsData) as need:
        D.images(Context(BESANCON))
    assert need.value.urls == (BESANCON,)
    with pytest.raises(WrongDezoomer):
        D.images(Context("https://h/page.html", {"https://h/page.html": b"<html>nothing</html>"}))
    with pytest.raises(WrongDezoomer):
        D.images(Context("https://h/{{x}}.jpg"))


# -------------------------------------------------------------------- replayed on the loopback server
@pytest.fixture(scope="module")
def site(_server):
    s = MnesysSite(make_test_image(1200, 900, seed=51), origin="https://archives.example.fr")
    s.install(_server, "/mnesys-t")
    return s


def test_viewer_page_auto_detected_gives_cur_item_pixel_exact(server, site):
    with route_hosts(server, site.hosts):
        img = dz.open(site.viewer_url, **FAST)
        assert img.dezoomer == "mnesys" and img.title == "FRAD001_0002"
        top = len(site.sizes) - 1
        assert [lv.size for lv in img.levels] == site.sizes[::-1]
        for k in range(len(img.levels)):
            np.testing.assert_array_equal(img.to_dask(level=k).compute(), site.page_image(1, top - k))


def test_playlist_is_a_collection_and_p_xml_an_image(server, site):
    with route_hosts(server, site.hosts):
        book = dz.open(site.playlist_url, **FAST)
        assert len(book) == 2 and book.titles == ["FRAD001_0001", "FRAD001_0002"]
        assert server.count("p.xml") == 0  # pages are resolved when used
        np.testing.assert_array_equal(book[0].to_dask().compute(), site.page_image(0, len(site.sizes) - 1))
        one = dz.open(site.p_xml_url(1), **FAST)
        assert one.dezoomer == "mnesys" and one.title == "FRAD001_0002"


def test_cli_forced_dezoomer_picks_img_num(server, _server, tmp_path, capsys):
    jpeg = MnesysSite(make_test_image(700, 500, seed=6), tile=200, lossless=False)
    jpeg.install(_server, "/mnesys-j")
    out = tmp_path / "mnesys.png"
    code = main(["-i", "0ms", "--retry-delay", "10ms", "--dezoomer", "mnesys", "--largest",
                 jpeg.playlist_url + "?img_num=0", str(out)])
    assert code == 0, capsys.readouterr().err
    assert_jpeg_close(load(out), jpeg.page_image(0, len(jpeg.sizes) - 1))


@pytest.mark.network
def test_live_besancon_p_xml():
    img = dz.open(BESANCON)
    assert img.dezoomer == "mnesys"
    arr = img.to_dask(level=len(img.levels) - 1).compute()
    assert arr.shape[:2] == (img.levels[-1].height, img.levels[-1].width)
