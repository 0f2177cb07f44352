"""TopViewer / Memorix: topviewjson parsing, page discovery (thumbnails, server:), loopback downloads."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

import dezoomify_nb as dz
from dezoomify_nb.cli import main
from dezoomify_nb.dezoomers.base import Context
from dezoomify_nb.dezoomers.topviewer import (
    TopViewerDezoomer,
    TopViewerLevel,
    find_metadata_url,
    parse_topview,
)
from dezoomify_nb.errors import MetadataError, NeedsData, WrongDezoomer
from dezoomify_nb.resolve import resolve
from dezoomify_nb.testing import make_test_image
from dezoomify_nb.testing.hosts import route_hosts
from dezoomify_nb.testing.topviewer import TopViewerSite

from .fmt_helpers import FAST, Driver, assert_jpeg_close, load, read, serve_dict, urls

D = TopViewerDezoomer()
WBA = "https://images.memorix.nl/wba/topviewjson/memorix/6eb5a89b-b76c-5039-3999-aabfd7a0c7c9"


# --- the worked examples ---------------------------------------------------------------------------
def test_reference_example_data_json():
    url = "https://fixtures.test/topviewer/data.json"
    (image,) = resolve(url, pages={url: read("topviewer/js_fixture_data.json")})
    assert image.dezoomer == "topviewer" and image.title == "sample-file"
    (level,) = image.levels
    assert (level.width, level.height, level.tile_width, level.tile_height) == (512, 512, 256, 256)
    assert urls(level) == [f"https://fixtures.test/topviewer/sample-file/{n}.jpg" for n in (10, 11, 12, 13)]


def test_reference_example_thumbnail_page_with_fif_is_not_iipimage():
    page = "https://fixtures.test/topviewer/page?FIF=not-iip"
    meta = "https://images.memorix.nl/demo/topviewjson/memorix/sample-file"
    pages = {page: read("topviewer/js_fixture_page.html"), meta: read("topviewer/js_fixture_data.json")}
    (image,) = resolve(page, pages=pages)
    assert image.dezoomer == "topviewer" and image.url == meta
    assert image.levels[0].tile_url(1, 1) == "https://fixtures.test/topviewer/sample-file/13.jpg"


def test_every_layer_is_a_level():
    image = parse_topview(WBA, read("topviewer/wba_topviewjson.json"))
    sizes = [lv.size for lv in image.levels]
    assert sizes == [(4517, 3120), (2259, 1560), (1130, 780), (565, 390), (283, 195), (142, 98)]
    full, half = image.levels[0], image.levels[1]
    assert isinstance(full, TopViewerLevel) and (full.starttile, full.stride, full.cols, full.rows) == (92, 18, 18, 13)
    base = "https://images.memorix.nl/wba/topview/wba/6e/6eb5a89b-b76c-5039-3999-aabfd7a0c7c9.jp2/"
    assert full.tile_url(0, 0) == base + "92.jpg" and full.tile_url(17, 12) == base + f"{92 + 17 + 12 * 18}.jpg"
    assert half.tile_url(8, 6) == base + f"{29 + 8 + 6 * 9}.jpg"
    assert image.title == "6eb5a89b-b76c-5039-3999-aabfd7a0c7c9"
    assert pickle.loads(pickle.dumps(full)) == full


def test_root_relative_template_of_arch_be():
    url = "https://search.arch.be/imageserver/topview.json.php?FIF=514/514_0549_000/514_0549_000_01097_000/x.jp2"
    (image,) = resolve(url, pages={url: read("topviewer/archbe_topview.json")})  # topview.json: not IIPImage
    assert image.dezoomer == "topviewer" and len(image.levels) == 5
    assert image.levels[0].tile_url(1, 0) == ("https://search.arch.be/imageserver/getpic.php?514/514_0549_000/"
                                              "514_0549_000_01097_000/514_0549_000_01097_000_0_0001.jp2&34&jpg")


def test_widest_layer_takes_the_view_size_even_without_its_own():
    doc = {"topviews": [{"filepath": "f", "width": 600, "height": 300, "tileWidth": 256,
                         "layers": [{"no": 0, "starttile": 0, "cols": 1}, {"no": 1, "width": 600, "starttile": 1,
                                                                          "cols": 3}]}],
           "config": {"tileurl_v2": "https://h/t/{file}/{tile}.{extension}"}}
    image = parse_topview("https://h/topviewjson/memorix/x", json.dumps(doc).encode())
    assert [(lv.size, lv.starttile) for lv in image.levels] == [((600, 300), 1)]  # the size-less layer is left out


@pytest.mark.parametrize(("doc", "match"), [
    ({"topviews": [], "config": {}}, "topviews"),
    ({"topviews": [{"width": 5}], "config": {"tileurl_v2": "x/{tile}"}}, "width, height and tileWidth"),
    ({"topviews": [{"width": 5, "height": 5, "tileWidth": 256, "layers": []}], "config": {"tileurl_v2": "{tile}"}},
     "no layers"),
    ({"topviews": [{"width": 5, "height": 5, "tileWidth": 256, "layers": [{"no": 1}]}], "config": {"tileurl_v2": "{tile}"}},
     "starttile"),
    ({"topviews": [{"width": 5, "height": 5, "tileWidth": 256, "layers": [{"width": 5, "starttile": 0, "cols": 1}]}],
      "config": {"tileurl_v2": "x"}}, "tileurl_v2"),
    ({"topviews": [{"width": 999, "height": 5, "tileWidth": 256, "layers": [{"width": 999, "starttile": 0, "cols": 2}]}],
      "config": {"tileurl_v2": "{tile}"}}, "2 columns for 999"),
    ({"topviews": [{"width": 10**9, "height": 5, "tileWidth": 256, "layers": [{"starttile": 0, "cols": 2}]}],
      "config": {"tileurl_v2": "{tile}"}}, "width"),
])
def test_broken_documents(doc, match):
    with pytest.raises(MetadataError, match=match) as info:
        parse_topview(WBA, json.dumps(doc).encode())
    assert info.value.hint


@pytest.mark.parametrize(("page", "expected"), [
    (b'<img src="https://images.memorix.nl/rhc/thumb/image-250x250crop/0b1c-22.jpg">',
     "https://images.memorix.nl/rhc/topviewjson/memorix/0b1c-22"),
    (b"<img src='//images.rkd.nl/rkd/thumb/detailresult/7f5e.jpg'>", "https://images.rkd.nl/rkd/topviewjson/memorix/7f5e"),
    (b'<a href="https://afbeeldingen.gahetna.nl/naa/thumb/mediabank-horizontal/ab12.jpg">',
     "https://images.memorix.nl/naa/topviewjson/memorix/ab12"),
    (b'viewer.init({"server": "\\/api\\/topviewjson\\/memorix\\/abc", "x": 1})',
     "https://archief.test/api/topviewjson/memorix/abc"),
    (b"var cfg = {server: '/tv/abc.json'};", "https://archief.test/tv/abc.json"),
])
def test_metadata_url_from_pages(page, expected):
    assert find_metadata_url("https://archief.test/detail/1", page) == expected


def test_detection():
    with pytest.raises(NeedsData) as need:
        D.images(Context(WBA))
    assert need.value.urls == (WBA,)
    for url in ("https://h/info.json", "https://images.memorix.nl/wba/thumb/100x100/x.jpg", "https://h/{{X}}.jpg"):
        with pytest.raises(WrongDezoomer):
            D.images(Context(url, {url: b'{"width": 1, "height": 2}'}))
    page = "https://www.memorix.example/detail/7"  # a memorix URL whose page points nowhere
    with pytest.raises(MetadataError, match="no TopViewer metadata"):
        D.images(Context(page, {page: b"<html>nothing</html>"}))


# --- end to end -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def site(_server, source):
    s = TopViewerSite(source, first_tile=3)
    s.install(_server, "/memorix-images-t", "/memorix-page-t")
    return s


def test_archive_page_is_followed_to_the_json_and_every_layer_downloads(server, site):
    with route_hosts(server, site.hosts):
        img = dz.open(site.page_url, **FAST)
        assert img.dezoomer == "topviewer"
        assert [lv.size for lv in img.levels] == [(1000, 700), (500, 350), (250, 175)]
        for k in range(3):
            np.testing.assert_array_equal(img.to_dask(level=k).compute(), site.level_image(k))
    assert f"/memorix-images-t/wba/topviewjson/memorix/{site.uuid}" in server.requests


def test_cli_forced_dezoomer_on_the_metadata_url(server, _server, tmp_path, capsys):
    jpeg = TopViewerSite(make_test_image(640, 830, seed=21), server="rhc", lossless=False, tile_size=200,
                         uuid="8045c7aa-8a2d-f541-f953-a74fdbad0c9e", filepath="rhc/80/8045c7aa.jp2")
    jpeg.install(_server, "/memorix-images-j", "/memorix-page-j")
    out = tmp_path / "tv.png"
    with route_hosts(server, jpeg.hosts):
        code = main(["-i", "0ms", "--dezoomer", "topviewer", "--largest", jpeg.metadata_url, str(out)])
    assert code == 0, capsys.readouterr().err
    assert_jpeg_close(load(out), jpeg.level_image(0))


def test_driver_rounds_for_a_page():
    page = "https://archief.test/detail/1/media/x"
    meta = "https://images.memorix.nl/sra/topviewjson/memorix/x"
    driver = Driver(serve_dict({page: b'<img src="https://images.memorix.nl/sra/thumb/250x250/x.jpg">',
                                meta: read("topviewer/js_fixture_data.json")}))
    (image,) = driver.run(D, page)  # not a TopViewer URL: recognised by the thumbnail in the page
    assert driver.requests == [page, meta] and image.url == meta


@pytest.mark.network
def test_live_memorix():
    img = dz.open(WBA)
    assert img.dezoomer == "topviewer"
    arr = img.to_dask(level=len(img.levels) - 1).compute()
    assert arr.shape[:2] == (img.levels[-1].height, img.levels[-1].width) and arr.std() > 5
