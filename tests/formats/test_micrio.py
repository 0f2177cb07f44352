"""Micrio legacy getTilesInfo: tile lists, page discovery (data-id, dataSourcePath sets), downloads."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

import dezoomify_nb as dz
from dezoomify_nb.cli import main
from dezoomify_nb.dezoomers.base import Context
from dezoomify_nb.dezoomers.micrio import MicrioDezoomer, parse_tiles_info
from dezoomify_nb.errors import MetadataError, NeedsData, WrongDezoomer
from dezoomify_nb.testing import make_test_image
from dezoomify_nb.testing.hosts import route_hosts
from dezoomify_nb.testing.web_formats_a import MicrioSite

from .fmt_helpers import FAST, Driver, assert_jpeg_close, load, read, serve_dict, urls

D = MicrioDezoomer()
FIXTURE = "https://fixtures.test/micrio/api/getTilesInfo?object_id=1"
RIJKS = "https://www.rijksmuseum.nl"


def test_js_fixture_worked_example():
    drv = Driver(serve_dict({FIXTURE: read("micrio/getTilesInfo.json")}))
    (image,) = drv.run(D, FIXTURE)
    (level,) = image.levels
    assert (level.width, level.height, level.tile_width) == (512, 512, 512)
    assert urls(level) == ["https://fixtures.test/fixtures/tile.jpg"] and drv.requests == [FIXTURE]
    assert image.dezoomer == "micrio" and level.name == "Micrio"
    assert pickle.loads(pickle.dumps(level)) == level


def test_every_level_with_its_listed_urls():
    levels = parse_tiles_info(read("micrio/rijksmuseum_tiles.json"), f"{RIJKS}/api/getTilesInfo?object_id=SK-C-5")
    assert [lv.size for lv in levels] == [(1800, 1300), (900, 650), (450, 325)]
    full = levels[0]
    assert (full.cols, full.rows) == (4, 3)
    assert full.tile_url(3, 2) == "https://lh3.ggpht.com/fGmX0x7Kq032AbC=s0"
    assert levels[2].tile_url(0, 0) == "https://lh3.ggpht.com/fGmX0x7Kq200AbC=s0"


def _doc(*levels) -> bytes:
    return json.dumps({"levels": list(levels)}).encode()


def _lvl(w, h, tiles) -> dict:
    return {"width": w, "height": h, "tiles": [{"x": x, "y": y, "url": u} for x, y, u in tiles]}


def test_relative_urls_incomplete_levels_and_junk():
    meta = "https://h/api/getTilesInfo?object_id=1"
    complete = _lvl(600, 100, [(1, 0, "t/1_0.jpg"), (0, 0, "/t/0_0.jpg"), (5, 5, "outside.jpg"), (True, 0, "bool.jpg")])
    incomplete = _lvl(2000, 1000, [(0, 0, "big.jpg")])
    levels = parse_tiles_info(_doc(incomplete, complete, "junk", {"width": "x"}, _lvl(-1, 5, [])), meta)
    assert [lv.size for lv in levels] == [(600, 100)]
    assert urls(levels[0]) == ["https://h/t/0_0.jpg", "https://h/api/t/1_0.jpg"]


@pytest.mark.parametrize("doc", [
    b"{}", b"[]", b'{"levels": []}', b"<html>", _doc(_lvl(600, 100, [(0, 0, "a.jpg")])),
    _doc(_lvl(10**8, 10**8, [(0, 0, "a.jpg")])),
])
def test_unusable_documents(doc):
    with pytest.raises(MetadataError):
        parse_tiles_info(doc, FIXTURE)


def test_tile_urls_must_stay_on_the_web():
    with pytest.raises(MetadataError, match="only http"):
        parse_tiles_info(_doc(_lvl(10, 10, [(0, 0, "file:///etc/passwd")])), FIXTURE)


def test_rijksstudio_page_with_data_id():
    page = f"{RIJKS}/en/rijksstudio/artists/rembrandt-van-rijn/objects#/SK-C-5,0"
    meta = f"{RIJKS}/api/getTilesInfo?lang=en&object_id=SK-C-5"
    drv = Driver(serve_dict({page: read("micrio/rijksstudio.html"), meta: read("micrio/rijksmuseum_tiles.json")}))
    (image,) = drv.run(D, page)
    assert drv.requests == [page, meta] and image.url == meta


def test_set_page_picks_the_hashed_object_and_offset():
    page = f"{RIJKS}/nl/rijksstudio/1234-favourites#/SK-C-5,1"
    set_url = f"{RIJKS}/api/nl/rijksstudio/sets/1234-favourites?offset=1&count=10&format=json"
    meta = f"{RIJKS}/api/getTilesInfo?lang=en&object_id=SK-C-5"
    drv = Driver(serve_dict({page: read("micrio/set_page.html"), set_url: read("micrio/set.json"),
                             meta: read("micrio/getTilesInfo.json")}))
    (image,) = drv.run(D, page)
    assert drv.requests == [page, set_url, meta]
    # without a hash: the first item of the set, offset as written
    first = f"{RIJKS}/api/getTilesInfo?lang=en&object_id=SK-A-2344"
    drv = Driver(serve_dict({f"{RIJKS}/set": read("micrio/set_page.html"), set_url.replace("offset=1", "offset=0"):
                             read("micrio/set.json"), first: read("micrio/getTilesInfo.json")}))
    (image,) = drv.run(D, f"{RIJKS}/set")
    assert drv.requests[-1] == first


def test_detection():
    with pytest.raises(NeedsData) as need:
        D.images(Context(FIXTURE))
    assert need.value.urls == (FIXTURE,)
    for body in (b"<html>plain page</html>", b"\x00\x01"):
        with pytest.raises(WrongDezoomer):
            D.images(Context("https://h/page.html", {"https://h/page.html": body}))
    with pytest.raises(WrongDezoomer):
        D.images(Context("https://h/{{x}}.jpg"))
    page = "https://h/micrio.html"  # recognised by its contents, but nothing to follow: the page is no JSON
    with pytest.raises(MetadataError, match="not a Micrio getTilesInfo"):
        D.images(Context(page, {page: b'<div data-role="micrio"></div>'}))


# -------------------------------------------------------------------- replayed on the loopback server
@pytest.fixture(scope="module")
def site(_server):
    s = MicrioSite(make_test_image(1500, 1100, seed=41), origin=RIJKS)
    s.install(_server, "/micrio-t")
    return s


def test_tiles_info_url_auto_detected_every_level_exact(server, site):
    with route_hosts(server, site.hosts):
        img = dz.open(site.tiles_info_url("SK-C-5"), **FAST)
        assert img.dezoomer == "micrio" and [lv.size for lv in img.levels] == site.sizes
        for k, size in enumerate(site.sizes):
            np.testing.assert_array_equal(img.to_dask(level=k).compute(), site.level_image(size))
    assert server.count("/tiles/SK-C-5/") == 3 * 3 + 2 * 2 + 1


def test_pages_auto_detected(server, site):
    with route_hosts(server, site.hosts):
        assert dz.open(f"{RIJKS}/en/rijksstudio/SK-C-5", **FAST).url == site.tiles_info_url("SK-C-5")
        assert dz.open(f"{RIJKS}/set.html#/SK-C-5,1", **FAST).url == site.tiles_info_url("SK-C-5")
        assert dz.open(f"{RIJKS}/set.html", **FAST).url == site.tiles_info_url("SK-A-1")
    assert any("/api/set?offset=1&count=1" in p for p in server.requests)


def test_cli_forced_dezoomer_on_bare_loopback(server, _server, tmp_path, capsys):
    jpeg = MicrioSite(make_test_image(800, 600, seed=8), lossless=False)
    url = jpeg.install(_server, "/micrio-j")
    out = tmp_path / "micrio.png"
    code = main(["-i", "0ms", "--retry-delay", "10ms", "--dezoomer", "micrio", "--largest", url, str(out)])
    assert code == 0, capsys.readouterr().err
    assert_jpeg_close(load(out), jpeg.level_image((800, 600)))
