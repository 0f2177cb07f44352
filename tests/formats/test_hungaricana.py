"""Hungaricana: AES tile names (reference §7 and a real tile URL), page parsing, downloads replayed on loopback."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import dezoomify_nb as dz
from dezoomify_nb.cli import main
from dezoomify_nb.dezoomers.base import Context
from dezoomify_nb.dezoomers.hungaricana import (
    HungaricanaDezoomer,
    HungaricanaLevel,
    build_levels,
    finest_zoom,
    path_salt,
    tile_hash,
)
from dezoomify_nb.errors import MetadataError, NeedsData, WrongDezoomer
from dezoomify_nb.model import ImageRef
from dezoomify_nb.resolve import resolve
from dezoomify_nb.testing import make_test_image
from dezoomify_nb.testing.hosts import route_hosts
from dezoomify_nb.testing.hungaricana import HungaricanaSite

from .fmt_helpers import FAST, Driver, assert_jpeg_close, load, read, serve_dict

D = HungaricanaDezoomer()
CDN = "https://static-cdn.hungaricana.hu/tile/"
SAMPLE = "https://fixtures.test/hungaricana/imagesize/sample.ecw"


# --- the worked examples ---------------------------------------------------------------------------
def test_reference_example_sample_ecw():
    assert path_salt("sample.ecw") == 7
    (image,) = resolve(SAMPLE, pages={SAMPLE: read("hungaricana/imagesize_sample.ecw.json")})
    assert image.dezoomer == "hungaricana" and image.title == "sample"
    (level,) = image.levels
    assert (level.width, level.height, level.tile_width, level.zoom) == (512, 512, 512, 0)
    origin = "https://fixtures.test/hungaricana/image/sample.ecw/"
    assert level.tile_url(0, 0) == origin + "eead7a64b71d28891bac75371a7dac53"  # "7|0|0|0*********"
    assert tile_hash(7, 0, 1, 0) == "98038980cd958252b84782d4054c4e8c"  # "7|0|1|0*********"


def test_hash_matches_a_real_tile_url_from_issue_346():
    # https://static-cdn.hungaricana.hu/tile/image/maps/mol/s012/div13/s12_div_xiii_0031/s12_div_xiii_0031.ecw/
    # 09dab00751b25b57ea4f632908c3f293 (quoted in lovasoa/dezoomify#346) is zoom 3, x 3, y 1
    path = "maps/mol/s012/div13/s12_div_xiii_0031/s12_div_xiii_0031.ecw"
    assert tile_hash(path_salt(path), 3, 3, 1) == "09dab00751b25b57ea4f632908c3f293"
    meta = CDN + "imagesize/" + path
    levels = build_levels(meta, 10992, 7384)  # a plausible size (the real one was not seen): zoom 5 is the finest
    assert finest_zoom(10992, 7384) == 5 and [lv.zoom for lv in levels] == [0, 1, 2, 3, 4, 5]
    z3 = levels[3]
    assert (z3.width, z3.height) == (2748, 1846)  # (10992, 7384) / 2^(5-3)
    assert z3.tile_url(3, 1) == CDN + "image/" + path + "/09dab00751b25b57ea4f632908c3f293"


@pytest.mark.parametrize(("w", "h", "zoom"), [(512, 10, 0), (100, 3, 0), (513, 1, 1), (1024, 1024, 1),
                                              (1025, 7, 2), (512 * 2**9, 1, 9), (512 * 2**9 + 1, 1, 10)])
def test_finest_zoom_is_ceil_log2(w, h, zoom):
    assert finest_zoom(w, h) == zoom  # an image under 256 px gets 0 (the JS would ask for zoom -1)


def test_plaintext_longer_than_one_block_hashes_its_first_16_bytes():
    # "99|12|12345|67890" is 17 characters: WebCrypto's first ciphertext block only depends on the first 16
    assert tile_hash(99, 12, 12345, 67890) == tile_hash(99, 12, 12345, 6789)


def test_levels_halve_rounding_up_and_pickle():
    levels = build_levels(SAMPLE.replace("sample", "big"), 2000, 1100)
    assert [(lv.zoom, lv.width, lv.height) for lv in levels] == [(0, 500, 275), (1, 1000, 550), (2, 2000, 1100)]
    assert isinstance(levels[0], HungaricanaLevel) and pickle.loads(pickle.dumps(levels[2])) == levels[2]


# --- pages ---------------------------------------------------------------------------------------
PAGE = "https://maps.hungaricana.hu/en/MOLTerkeptar/5006/view/?pg=1&bbox=-310%2C-5311%2C10990%2C-18"


def test_page_with_files_array_and_pg():
    folder = CDN + "imagesize/maps/mol/s012/div13/s12_div_xiii_0031/"
    driver = Driver(serve_dict({PAGE: read("hungaricana/maps_view_page.html"),
                                folder + "s12_div_xiii_0031_verso.ecw": b'{"width": 700, "height": 600}'}))
    (image,) = driver.run(D, PAGE)
    assert driver.requests == [PAGE, folder + "s12_div_xiii_0031_verso.ecw"]
    assert image.title == "Hungaricana - MOL Térképtár - S 12 - Div. XIII. - No. 0031 & Pest-Buda"
    assert image.levels[0].size == (700, 600) and image.levels[0].origin.endswith("s12_div_xiii_0031_verso.ecw/")


def test_page_without_pg_lists_every_image():
    url = PAGE.split("?")[0]
    refs = D.images(Context(url, {url: read("hungaricana/maps_view_page.html")}))
    assert [r.url.rsplit("/", 1)[1] for r in refs] == ["s12_div_xiii_0031.ecw", "s12_div_xiii_0031_verso.ecw"]
    assert all(isinstance(r, ImageRef) and r.dezoomer == "hungaricana" for r in refs)
    assert refs[1].title.endswith("Pest-Buda - 2")


def test_page_with_imagepath_and_relative_layer_url():
    url = "https://archives.hungaricana.hu/hu/charters/view/176471/?pg=0"
    meta = "https://static-cdn.hungaricana.hu/tile/imagesize/charters/dl/176471/DL_176471_1.ecw"
    (image,) = Driver(serve_dict({url: read("hungaricana/charters_imagepath_page.html"),
                                  meta: b'{"width": 512, "height": 300}'})).run(D, url)
    assert image.url == meta and image.levels[0].tile_url(0, 0).startswith(
        "https://static-cdn.hungaricana.hu/tile/image/charters/dl/176471/DL_176471_1.ecw/")


def test_page_with_files_url_listing():
    url = "https://archives.hungaricana.hu/en/urbarium/view/?pg=2"
    listing = "https://static.hungaricana.hu/tile/dir/urbarium/fasc168/fasc168no038/*.ecw"
    meta = CDN + "imagesize/urbarium/fasc168/fasc168no038/00000003.ecw"
    driver = Driver(serve_dict({url: read("hungaricana/archives_files_url_page.html"),
                                listing: read("hungaricana/dir_listing.json"), meta: b'{"width":9,"height":9}'}))
    (image,) = driver.run(D, url)
    assert driver.requests == [url, listing, meta] and image.title == "Urbarium fasc. 168 no. 38"


@pytest.mark.parametrize(("page", "match"), [
    (b"<html>imagepath = 'a.ecw'</html>", "layer base url"),
    (b"{layerUrl: 'https://h/tile/imagesize/', path: 'x/'} files and more .ecw", "layer file name"),
    (b"{layerUrl: 'https://h/tile/imagesize/', files: [1, 2]} .ecw", "JSON array"),
    (b"{layerUrl: 'https://h/tile/imagesize/', files: [\"a.ecw\"]}", "does not exist"),
])
def test_broken_pages_say_why(page, match):
    url = "https://maps.hungaricana.hu/en/x/1/view/?pg=3"
    with pytest.raises(MetadataError, match=match) as info:
        D.images(Context(url, {url: page}))
    assert info.value.hint


def test_layer_url_without_imagesize_is_refused_before_fetching():
    url = "https://maps.hungaricana.hu/en/x/1/view/?pg=0"
    with pytest.raises(MetadataError, match="imagesize"):
        D.images(Context(url, {url: b"{layerUrl: 'https://h/tiles/', imagepath = 'a.ecw'}"}))


@pytest.mark.parametrize("body", [b"{}", b"[512, 512]", b'{"width": 0, "height": 5}', b'{"width": 1e99, "height": 5}',
                                  b"<html>", b'{"width": "12x", "height": 1}'])
def test_bad_size_documents(body):
    with pytest.raises(MetadataError):
        D.images(Context(SAMPLE, {SAMPLE: body}))


def test_detection():
    with pytest.raises(NeedsData) as need:  # an .ecw URL is the metadata itself
        D.images(Context(SAMPLE))
    assert need.value.urls == (SAMPLE,)
    for url in ("https://h/a/info.json", "https://h/tiles/{{X}}.jpg", "https://maps.hungaricana.hu/a/tile.jpg"):
        ctx = Context(url, {url: b'{"width": 5, "height": 5}'})
        with pytest.raises(WrongDezoomer):
            D.images(ctx)
    other = "https://example.org/viewer.html"  # the JS contents rule
    page = b"<script>var layerUrl = 'x'; var imagepath = 'a/b.ecw';</script>"
    with pytest.raises(NeedsData):  # recognised: it goes on to fetch the size document
        D.images(Context(other, {other: page.replace(b"= 'x'", b": 'https://h/tile/imagesize/'")}))


def test_auto_detection_is_not_stolen_by_iiif():
    # {"width", "height"} also reads as a minimal IIIF info.json: hungaricana must come first
    (image,) = resolve(SAMPLE, pages={SAMPLE: b'{"width": 600, "height": 400}'})
    assert image.dezoomer == "hungaricana"


# --- end to end -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def site(_server):
    s = HungaricanaSite({"sheet_a.ecw": make_test_image(1300, 900, seed=11), "sheet_b.ecw": make_test_image(600, 520, seed=12)})
    s.install(_server, "/hu-maps-t", "/hu-static-t")
    return s


def test_page_downloads_every_zoom_pixel_exact(server, site):
    with route_hosts(server, site.hosts):
        img = dz.open(site.page_url(pg=0), **FAST)
        assert img.dezoomer == "hungaricana" and img.title == "Test map (Hungaricana) & more"
        assert [lv.size for lv in img.levels] == [(1300, 900), (650, 450), (325, 225)]
        for k in range(3):
            np.testing.assert_array_equal(img.to_dask(level=k).compute(), site.level_image("sheet_a.ecw", k))
    assert any("/tile/image/maps/mol/s012/div13/test_doc/sheet_a.ecw/" in p for p in server.requests)


def test_page_without_pg_is_a_collection(server, site):
    with route_hosts(server, site.hosts):
        book = dz.open(site.page_url(pg=None), **FAST)
        assert len(book) == 2
        second = book[1]
        np.testing.assert_array_equal(second.to_dask().compute(), site.level_image("sheet_b.ecw"))


def test_cli_forced_dezoomer_jpeg_tiles(server, _server, tmp_path, capsys):
    jpeg = HungaricanaSite({"x.ecw": make_test_image(700, 515, seed=13)}, lossless=False, pad=False,
                           folder="urberi/Zempliniensis/Magyar_Isip/", style="imagepath", doc_id=77)
    jpeg.install(_server, "/hu-maps-j", "/hu-static-j")
    out = tmp_path / "h.png"
    with route_hosts(server, jpeg.hosts):
        code = main(["-i", "0ms", "--dezoomer", "hungaricana", "--largest", jpeg.page_url(pg=0), str(out)])
    assert code == 0, capsys.readouterr().err
    assert_jpeg_close(load(out), jpeg.level_image("x.ecw"))


@pytest.mark.network
def test_live_hungaricana_map():
    img = dz.open("https://maps.hungaricana.hu/en/MOLTerkeptar/2274/view/?bbox=-4718%2C-5938%2C8722%2C997")
    assert img.dezoomer == "hungaricana"
    small = img.levels[-1]
    arr = img.to_dask(level=len(img.levels) - 1).compute()
    assert arr.shape[:2] == (small.height, small.width) and arr.std() > 5
