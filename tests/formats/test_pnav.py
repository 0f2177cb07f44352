"""pnav: og:image discovery, probe-tile scale, crop URLs (reference §11), downloads from the loopback emulation."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pytest
from PIL import Image as PILImage

import dezoomify_nb as dz
from dezoomify_nb.cli import main
from dezoomify_nb.dezoomers.base import Context
from dezoomify_nb.dezoomers.pnav import PnavDezoomer, PnavLevel, build_level, og_image, probe_url
from dezoomify_nb.errors import MetadataError, WrongDezoomer
from dezoomify_nb.testing import make_test_image
from dezoomify_nb.testing.hosts import route_hosts
from dezoomify_nb.testing.pnav import PnavSite

from .fmt_helpers import FAST, Driver, load, read, serve_dict, urls

D = PnavDezoomer()


def png(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", (w, h), "grey").save(buf, "PNG")
    return buf.getvalue()


def test_reference_example():
    page, img = "https://fixtures.test/entity/OBJECT/1", "https://fixtures.test/fixtures/pnav/image.jpg"
    driver = Driver(serve_dict({page: read("pnav/js_fixture_page.html"), img.replace(".jpg", ".json"):
                                read("pnav/js_fixture_image.json"), probe_url(img): png(512, 512)}))
    (image,) = driver.run(D, page)
    (level,) = image.levels
    assert (level.width, level.height, level.tile_width, level.tile_height) == (512, 512, 512, 512)
    assert urls(level) == [img + "?w=2000&h=2000&cl=0&ct=0&cw=512&ch=512"]
    assert driver.rounds == 2  # the page, then the JSON and the probe tile together


def test_realistic_page_geometry():
    page = "https://catalog.shm.ru/entity/OBJECT/2117418"
    img = "https://catalog.shm.ru/files/pnav/2117418/main.jpg"
    files = {page: read("pnav/object_page.html"), img[:-4] + ".json": read("pnav/main.json"),
             probe_url(img): png(1000, 1000)}
    (image,) = Driver(serve_dict(files)).run(D, page)
    assert image.title == "Портрет дамы" and image.dezoomer == "pnav"
    level = image.levels[0]
    assert isinstance(level, PnavLevel)
    # W0×H0 = 1300×2049: 2 whole columns + 276, 4 whole rows + 1; r = 1000/512 = 1.953125
    assert (level.width, level.height, level.cols, level.rows) == (round(2000 + 276 * 1.953125), 4002, 3, 5)
    assert level.tile_url(1, 1) == img + "?w=2000&h=2000&cl=512&ct=512&cw=512&ch=512"
    assert level.tile_url(2, 0) == img + "?w=2000&h=2000&cl=1024&ct=0&cw=276&ch=512"
    assert level.tile_url(0, 4) == img + "?w=2000&h=2000&cl=0&ct=2048&cw=512&ch=1"
    assert level.tile_url(2, 4) == img + "?w=540&h=2&cl=1024&ct=2048&cw=276&ch=1"  # ceil(276·r), ceil(1·r)
    assert pickle.loads(pickle.dumps(level)) == level


@pytest.mark.parametrize(("w0", "h0", "probe", "size", "tile"), [
    (5000, 3000, (2000, 2000), (round(2000 * 9 + 392 * 3.90625), round(2000 * 5 + 440 * 3.90625)), (2000, 2000)),
    (300, 700, (600, 1024), (600, 1400), (1024, 1024)),  # narrow: the scale comes from the height
    (300, 200, (450, 300), (450, 300), (768, 768)),  # both sides under 512: the whole image
    (1024, 1024, (512, 512), (1024, 1024), (512, 512)),  # wMod = hMod = 0: no empty column or row
])
def test_geometry(w0, h0, probe, size, tile):
    level = build_level("https://h/i.jpg", w0, h0, *probe)
    assert (level.width, level.height) == size and level.tile_size == tile
    assert all("cw=0" not in u and "ch=0" not in u for u in urls(level))


def test_og_image_variants():
    assert og_image("https://m.ru/entity/OBJECT/3", '<meta property="og:image" content="/img/a.JPEG?w=1&amp;h=2">'
                    .replace("&amp;", "&")) == "https://m.ru/img/a.JPEG"
    assert og_image("https://m.ru/e", "<META CONTENT='https://x/b.jpg' PROPERTY='og:image'>") == "https://x/b.jpg"
    with pytest.raises(MetadataError, match="og:image"):
        og_image("https://m.ru/e", '<meta property="og:title" content="x">')


@pytest.mark.parametrize(("files", "match"), [
    ({"p": b'<meta property="og:image" content="https://h/i.png">'}, "not a .jpg"),
    ({"p": b"<html></html>"}, "og:image"),
    ({"p": b'<meta property="og:image" content="https://h/i.jpg">', "json": b"[1]", "probe": png(5, 5)}, "JSON object"),
    ({"p": b'<meta property="og:image" content="https://h/i.jpg">', "json": b'{"width": 0, "height": 1}',
      "probe": png(5, 5)}, "size"),
    ({"p": b'<meta property="og:image" content="https://h/i.jpg">', "json": b'{"width": 600, "height": 600}',
      "probe": b"<html>error</html>"}, "not an image"),
    ({"p": b'<meta property="og:image" content="https://h/i.jpg">', "json": b'{"width": 600, "height": 600}',
      "probe": png(9000, 2)}, "unreasonable"),
])
def test_errors(files, match):
    page = "https://h/entity/OBJECT/9"
    names = {"p": page, "json": "https://h/i.json", "probe": probe_url("https://h/i.jpg")}
    with pytest.raises(MetadataError, match=match):
        D.images(Context(page, {names[k]: v for k, v in files.items()}))


def test_only_object_pages():
    for url in ("https://catalog.shm.ru/entity/PERSON/5", "https://h/info.json", "https://h/entity/OBJECT/x"):
        with pytest.raises(WrongDezoomer):
            D.images(Context(url))


# --- end to end -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("w", "h", "prefix"), [(1200, 900, "/pnav-a"), (450, 1200, "/pnav-b")])
def test_downloads_the_real_resolution_pixel_exact(server, _server, w, h, prefix):
    source = make_test_image(w, h, seed=w)
    site = PnavSite(source, scale=1.5)
    site.install(_server, prefix)
    with route_hosts(server, site.hosts):
        img = dz.open(site.page_url, **FAST)
        assert img.dezoomer == "pnav" and img.title == "Portrait of a lady" and (img.width, img.height) == (w, h)
        np.testing.assert_array_equal(img.to_dask().compute(), source)
    crops = [p for p in server.requests if "cw=" in p]
    tiles = {u.replace("https://catalog.shm.ru", prefix) for u in urls(img.levels[0])}
    probe = probe_url(site.image_url).replace("https://catalog.shm.ru", prefix)
    assert len(crops) == len(tiles) + 1 and set(crops) == tiles | {probe}  # every tile once, plus the probe


def test_cli_forced(server, _server, tmp_path, capsys):
    source = make_test_image(1000, 640, seed=41)
    site = PnavSite(source, scale=1.25, object_id=77606, name="cat/77606")
    site.install(_server, "/pnav-c")
    with route_hosts(server, site.hosts):
        code = main(["-i", "0ms", "--dezoomer", "pnav", site.page_url, str(tmp_path / "p.png")])
    assert code == 0, capsys.readouterr().err
    np.testing.assert_array_equal(load(tmp_path / "p.png"), source)


@pytest.mark.network
@pytest.mark.parametrize("url", ["https://catalog.shm.ru/entity/OBJECT/2117418",
                                 "https://collection.pushkinmuseum.art/entity/OBJECT/77606",
                                 "https://collection.ethnomuseum.ru/entity/OBJECT/32945"])
def test_live(url):
    img = dz.open(url)
    assert img.dezoomer == "pnav" and img.width > 500
