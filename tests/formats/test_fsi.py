"""FSI Server: detection, the info reply, rect tile URLs (JS numbers), and downloads from fsi emulation."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import dezoomify_nb as dz
from dezoomify_nb.cli import main
from dezoomify_nb.dezoomers._jsweb import js_number, page_text
from dezoomify_nb.dezoomers.base import Context
from dezoomify_nb.dezoomers.fsi import FsiDezoomer, info_url, info_url_in_page, parse_info, url_matches
from dezoomify_nb.errors import MetadataError, NeedsData, WrongDezoomer
from dezoomify_nb.resolve import resolve
from dezoomify_nb.testing import make_test_image
from dezoomify_nb.testing.web_formats_a import FsiSite

from .fmt_helpers import FAST, Driver, assert_jpeg_close, load, read, serve_dict, urls

D = FsiDezoomer()
FIXTURE_INPUT = "https://fixtures.test/fsi/server?type=info&source=image&image=image"
FIXTURE_INFO = "https://fixtures.test/fsi/server?type=info&source=image"


def test_js_fixture_worked_example():
    drv = Driver(serve_dict({FIXTURE_INFO: read("fsi/server-info.txt")}))
    (image,) = drv.run(D, FIXTURE_INPUT)
    assert drv.requests == [FIXTURE_INFO]
    full = image.levels[0]
    assert (full.width, full.height, full.tile_width) == (512, 512, 512) and len(image.levels) == 1
    assert full.tile_url(0, 0) == "https://fixtures.test/fsi/server?type=image&source=image&width=512&height=512&rect=0,0,1,1"
    assert image.dezoomer == "fsi" and full.name == "FSI" and full.headers == ()
    assert pickle.loads(pickle.dumps(full)) == full


def test_real_style_info_and_rect_fractions():
    meta = "https://www.neptunelabs.com/fsi/server?type=info&source=images%2Fsamples%2Fchair.tif"
    (image,) = Driver(serve_dict({meta: read("fsi/fsi_image_info.xml")})).run(D, meta)
    full = image.levels[0]
    assert (full.width, full.height) == (6048, 4032) and image.title == "chair"
    base = "https://www.neptunelabs.com/fsi/server?type=image&source=images%2Fsamples%2Fchair.tif"
    # JS numbers: 512/6048 prints its 16-17 shortest digits, integral fractions print without ".0"
    assert full.tile_url(0, 0) == f"{base}&width=512&height=512&rect=0,0,0.08465608465608465,0.12698412698412698"
    # last column is 6048 - 11*512 = 416 wide, last row 4032 - 7*512 = 448 high
    assert full.tile_url(11, 7) == (f"{base}&width=416&height=448&rect=0.9312169312169312,0.8888888888888888,"
                                    "0.06878306878306878,0.1111111111111111")
    # smaller renditions (an addition): halved sizes down to one tile, fractions of the level
    assert [lv.size for lv in image.levels] == [(6048, 4032), (3024, 2016), (1512, 1008), (756, 504), (378, 252)]
    assert image.levels[-1].tile_url(0, 0) == f"{base}&width=378&height=252&rect=0,0,1,1"


@pytest.mark.parametrize(("url", "expected"), [
    (FIXTURE_INPUT, FIXTURE_INFO),
    ("https://h/fsi/server?type=image&source=a%2Fb.tif&width=400", "https://h/fsi/server?type=info&source=a%2Fb.tif"),
    ("https://h/fsi/server?source=x.jpg&type=image&height=300", "https://h/fsi/server?type=info&source=x.jpg"),
    ("https://h/server?type=info&source=x.tif#frag", "https://h/server?type=info&source=x.tif"),
])
def test_info_url(url, expected):
    assert url_matches(url)
    assert info_url(url) == expected


@pytest.mark.parametrize("url", ["https://h/server?type=image", "https://h/server?image=1&width=3",
                                 "https://h/image.dzi", "https://h/fsi/servlet?type=a&image=b"])
def test_urls_without_a_source_are_not_metadata(url):
    assert info_url(url) is None


def test_page_with_a_viewer_gives_the_first_server_url():
    page = "https://www.neptunelabs.com/fsi-viewer/"
    text = page_text(read("fsi/viewer.html"))
    assert info_url_in_page(text, page) == (
        "https://www.neptunelabs.com/fsi/server?type=info&source=images%2Fsamples%2Fssi%2Ffurniture%2Fchair.tif")
    info = "https://www.neptunelabs.com/fsi/server?type=info&source=images%2Fsamples%2Fssi%2Ffurniture%2Fchair.tif"
    drv = Driver(serve_dict({page: read("fsi/viewer.html"), info: read("fsi/fsi_image_info.xml")}))
    (image,) = drv.run(D, page)
    assert drv.requests == [page, info] and image.url == info


def test_viewer_without_server_url_says_how_to_find_it():
    page = "https://h/bare.html"
    ctx = Context(page, {page: b'<html><fsi-viewer src="images/a.tif"></fsi-viewer></html>'})
    with pytest.raises(MetadataError, match="No FSI URL found") as exc:
        D.images(ctx)
    assert "network inspector" in exc.value.hint


@pytest.mark.parametrize("body", [b"<html><body>nothing here</body></html>", b"\x89PNG\r\n", b""])
def test_other_pages_are_not_fsi(body):
    with pytest.raises(WrongDezoomer):
        D.images(Context("https://h/page.html", {"https://h/page.html": body}))
    with pytest.raises(WrongDezoomer):
        D.images(Context("https://h/tiles/{{x}}_{{y}}.jpg"))


def test_url_rule_asks_only_for_the_info_reply():
    with pytest.raises(NeedsData) as need:
        D.images(Context(FIXTURE_INPUT))
    assert need.value.urls == (FIXTURE_INFO,)


@pytest.mark.parametrize("body", [b"<fsi_image_info/>", b"<Width value='12'/>", b"width value=" + b"9" * 40 +
                                  b" height value=2", b"<html>error</html>"])
def test_broken_info_reply(body):
    with pytest.raises(MetadataError):
        parse_info(body)


def test_absurd_size_is_capped():
    ctx = Context(FIXTURE_INFO, {FIXTURE_INFO: b'<Width value="99999999999"/><Height value="5"/>'})
    with pytest.raises(MetadataError, match="sanity cap"):
        D.images(ctx)


# ------------------------------------------------------------------------------- loopback emulation
@pytest.fixture(scope="module")
def site(_server):
    s = FsiSite(make_test_image(1300, 900, seed=11), source="images/samples/sea.tif")
    s.install(_server, "/fsi-t")
    return s


def test_auto_detects_an_image_request_and_downloads_pixel_exact(server, site):
    img = dz.open(site.image_url, **FAST)
    assert img.dezoomer == "fsi" and img.title == "sea" and (img.width, img.height) == (1300, 900)
    np.testing.assert_array_equal(img.to_dask(level=0).compute(), site.level_image((1300, 900)))
    assert server.count("type=info") == 1 and server.count("&rect=") == 3 * 2
    # smaller levels are rendered by the server from the full image: close to a BOX resize
    small = img.to_dask(level=1).compute().astype(np.int16)
    expected = site.level_image((650, 450)).astype(np.int16)
    assert small.shape == expected.shape and np.abs(small - expected).mean() < 2


def test_viewer_page_is_found_by_its_contents(server, site):
    img = dz.open(site.base + "/viewer.html", **FAST)
    assert img.dezoomer == "fsi" and img.url.endswith("server?type=info&source=images%2Fsamples%2Fsea.tif")
    with pytest.raises(dz.DezoomifyError, match="No FSI URL found"):
        dz.open(site.base + "/bare.html", dezoomer="fsi", **FAST)
    with pytest.raises(dz.NoDezoomerFound):  # auto mode: listed among the reasons
        dz.open(site.base + "/bare.html", **FAST)


def test_cli_forced_dezoomer_jpeg(server, _server, tmp_path, capsys):
    jpeg = FsiSite(make_test_image(700, 600, seed=5), source="b.jpg", lossless=False)
    jpeg.install(_server, "/fsi-j")
    out = tmp_path / "fsi.png"
    code = main(["-i", "0ms", "--retry-delay", "10ms", "--dezoomer", "fsi", "--largest", jpeg.image_url, str(out)])
    assert code == 0, capsys.readouterr().err
    assert_jpeg_close(load(out), jpeg.level_image((700, 600)))


def test_resolve_names_every_tile_of_the_grid():
    (image,) = resolve(FIXTURE_INPUT, dezoomer="FSI", pages={FIXTURE_INFO: b'<a width value="1025"/><a height value=3>'})
    assert urls(image.levels[0])[-1].endswith("width=1&height=3&rect=0.9990243902439024,0,0.000975609756097561,1")


@pytest.mark.network
def test_live_neptunelabs_viewer_page():
    img = dz.open("https://www.neptunelabs.com/fsi-viewer/")
    assert img.dezoomer == "fsi"
    arr = img.to_dask(level=len(img.levels) - 1).compute()
    assert arr.shape[:2] == (img.levels[-1].height, img.levels[-1].width)


@pytest.mark.parametrize(("value", "js"), [
    (1.0, "1"), (0.0, "0"), (-0.0, "0"), (0.5, "0.5"), (1 / 3, "0.3333333333333333"), (0.1 + 0.2, "0.30000000000000004"),
    (0.00005, "0.00005"), (5.12e-05, "0.0000512"), (1e-7, "1e-7"), (2.5e-7, "2.5e-7"), (1e20, "100000000000000000000"),
    (1e21, "1e+21"), (1.5e22, "1.5e+22"), (-0.012, "-0.012"), (123.456, "123.456"),
])
def test_numbers_print_as_javascript_does(value, js):
    assert js_number(value) == js
