"""A ZIF served by a script (``…/DisplayImage?id=42``, no ``.zif`` anywhere) is recognised by its bytes — the
first byte range the ZIF reader reads anyway — and read piece by piece as before; a script serving anything
else costs that one ranged request and goes on to the other dezoomers."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Mapping

import pytest

import dezoomify_nb as dz
from dezoomify_nb.dezoomers import zif
from dezoomify_nb.dezoomers.base import Context
from dezoomify_nb.dezoomers.zif import ZifDezoomer, may_be_script
from dezoomify_nb.errors import FetchError, WrongDezoomer
from dezoomify_nb.net.fetch import split_range, with_range
from dezoomify_nb.testing import make_test_image
from dezoomify_nb.testing._http import Response
from dezoomify_nb.testing.zif import make_zif

from .fmt_helpers import FAST, Driver, assert_jpeg_close

Z = ZifDezoomer()
TRANSPORTS = ["aiohttp", "httpx"]
IMAGE = make_test_image(700, 500, seed=9)


@pytest.fixture(scope="module")
def zoomify_zif():
    return make_zif(IMAGE)


@pytest.mark.parametrize(("url", "probed"), [
    ("https://h/cgi/DisplayImage?id=42", True),
    ("https://h/getimage.php?f=7", True),
    ("https://h/Handler.ashx?img=1&w=full", True),
    ("https://h/object?id=42&lang=en", True),  # a web page, perhaps: one ranged request tells
    ("https://h/DisplayImage", False),  # no query: a folder, or a Zoomify/IIIF base — not probed
    ("https://h/a/iipsrv.fcgi?FIF=/a.tif", False),
    ("https://h/a/iipsrv.fcgi?IIIF=/a.tif/info.json", False),
    ("https://h/a/iipsrv.fcgi?DeepZoom=/a.tif.dzi", False),
    ("https://h/x.dzi?sig=abc", False),
    ("https://h/page.html?x=1", False),
    ("https://h/viewer?file=a%2Ejson", False),
    ("https://h/p?url=https://x/y.xml", False),
    ("/local/DisplayImage?id=1", False),
    ("https://h/{{z}}?id=1", False),
])
def test_which_urls_are_probed(url: str, probed: bool) -> None:
    assert may_be_script(url) is probed
    if probed:  # the probe is the ZIF reader's own first read: the same key, fetched once
        driver = Driver({})
        with pytest.raises(WrongDezoomer):
            driver.run(Z, url)
        assert driver.requests == [with_range(url, 0, zif.HEAD_BYTES - 1)]
    else:
        with pytest.raises(WrongDezoomer):
            Z.images(Context(url))


def _ranged(files: Mapping[str, bytes], *, ignore_range: bool = False):
    def serve(key: str) -> bytes | FetchError:
        target, rng = split_range(key)
        data = files.get(target)
        if data is None:
            return FetchError(key, "404 Not Found", status=404)
        if ignore_range and rng is not None:
            return FetchError(key, "the server ignores HTTP Range requests", status=200)
        return data if rng is None else data[rng[0] : rng[1] + 1]
    return serve


def test_a_zif_behind_a_script_is_read_by_ranges(zoomify_zif) -> None:
    url = "https://maps.example.org/cgi-bin/DisplayImage?id=42"
    driver = Driver(_ranged({url: zoomify_zif.data}))
    (img,) = driver.run(Z, url)
    assert driver.requests == [with_range(url, 0, zif.HEAD_BYTES - 1)]  # the header: the only request
    assert [lv.size for lv in img.levels] == zoomify_zif.sizes
    assert img.title == "DisplayImage"
    p, n = zoomify_zif.tiles[0][3]
    assert img.levels[0].tile_url(3, 0) == with_range(url, p, p + n - 1)


@pytest.mark.parametrize(("body", "ignore_range", "why"), [
    (b"<!doctype html><html><body>an object page</body></html>", False, "not a TIFF header"),
    (b"GIF89a....", False, "not a TIFF header"),
    (b"II*\x00" + bytes(100), True, "ignores HTTP Range"),  # not read whole on a guess
])
def test_anything_else_behind_a_script_is_not_a_zif(body: bytes, ignore_range: bool, why: str) -> None:
    url = "https://h/show?id=1"
    driver = Driver(_ranged({url: body}, ignore_range=ignore_range))
    with pytest.raises(WrongDezoomer, match=why):
        driver.run(Z, url)
    assert len(driver.requests) == 1


# --- end to end on the loopback server, both transports ------------------------------------------------
def _script(server, prefix: str, body: bytes, kind: str, *, ranges: bool = True) -> str:
    """Serve ``body`` at ``<prefix>?id=42`` (any query), honouring ``Range`` when ``ranges``."""

    def handler(_server, raw_path: str, headers: Mapping[str, str]) -> Response:
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", headers.get("Range") or "")
        if not ranges or m is None:
            return Response(200, body, kind)
        start, end = int(m.group(1)), min(int(m.group(2) or len(body) - 1), len(body) - 1)
        if start >= len(body):
            return Response(416, b"", kind, {"Content-Range": f"bytes */{len(body)}"})
        return Response(206, body[start : end + 1], kind, {"Content-Range": f"bytes {start}-{end}/{len(body)}"})

    server.add_route(prefix, handler)
    return f"{server.base_url}{prefix}?id=42"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_e2e_zif_behind_a_script(server, zoomify_zif, transport) -> None:
    url = _script(server, f"/cgi-{transport}/DisplayImage", zoomify_zif.data, "application/octet-stream")
    server.reset_requests()
    img = dz.open(url, transport=transport, **FAST)
    assert img.dezoomer == "zif" and img.title == "DisplayImage"
    assert server.count("/DisplayImage") == 1  # the header read, nothing else
    heads = [h.get("range") for h in server.headers_seen]
    assert heads == [f"bytes=0-{zif.HEAD_BYTES - 1}"]
    for k in range(len(zoomify_zif.sizes)):
        assert_jpeg_close(img.to_dask(level=k).compute(), zoomify_zif.level_image(k))
    tiles = sum(len(t) for t in zoomify_zif.tiles)
    assert server.count("/DisplayImage") == 1 + tiles  # one ranged request per tile
    assert all(h.get("range", "").startswith("bytes=") for h in server.headers_seen)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("ranges", [True, False])
def test_e2e_other_documents_behind_a_script_cost_one_ranged_request(server, source, transport, ranges) -> None:
    """An IIIF info.json served by a script is still opened by the IIIF dezoomer; the probe is one request
    (a 206 with the first bytes, or a 200 whose body is not read on a Range request)."""
    with urllib.request.urlopen(server.url("iiif2"), timeout=10) as r:  # the loopback IIIF service's own
        info = json.loads(r.read())
    url = _script(server, f"/info-{transport}-{ranges}/getinfo", json.dumps(info).encode(), "application/json",
                  ranges=ranges)
    server.reset_requests()
    img = dz.open(url, transport=transport, **FAST)
    assert img.dezoomer == "iiif" and (img.height, img.width) == source.shape[:2]
    assert server.count("/getinfo") == 2
    assert [h.get("range") for h in server.headers_seen] == [f"bytes=0-{zif.HEAD_BYTES - 1}", None]
    assert_jpeg_close(img.to_dask(level=0)[0:300, 0:300].compute(), source[0:300, 0:300])
