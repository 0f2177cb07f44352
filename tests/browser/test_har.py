"""HAR files written by the test browser itself (Playwright's ``record_har_path``, bodies embedded) for the
viewer pages of testing/viewers.py: each opened as a source, the image downloaded and compared with the
source pixels; recorded bodies used instead of a second fetch; cookies and Referer carried."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image as PILImage

import dezoomify_nb as dz
from dezoomify_nb.testing import TileServer, make_test_image
from dezoomify_nb.testing.viewers import install_viewers

FAST = {"min_interval": 0, "retry_delay": 0.01}


@pytest.fixture(scope="module")
def site():
    with TileServer(make_test_image(640, 480, seed=8), lossless=True) as s:
        yield s, install_viewers(s)


def record_har(browser, url, path, *, click: bool = False, content: str = "embed"):
    context = browser.new_context(viewport={"width": 1000, "height": 800}, record_har_path=str(path),
                                  record_har_content=content)
    try:
        page = context.new_page()
        tiles: list[str] = []
        page.on("response", lambda r: tiles.append(r.url) if r.request.resource_type == "image" else None)
        page.goto(url)
        page.wait_for_load_state("networkidle")
        if click:
            page.click("#viewer")
            page.wait_for_load_state("networkidle")
            page.wait_for_timeout(300)
            page.wait_for_load_state("networkidle")
        for _ in range(150):  # a busy machine: the viewer's script may start later than "network idle"
            if tiles:
                break
            page.wait_for_timeout(100)
        page.wait_for_load_state("networkidle")
    finally:
        context.close()  # writes the HAR
    return path


def load(path) -> np.ndarray:
    with PILImage.open(path) as im:
        return np.asarray(im.convert("RGB"))


@pytest.mark.parametrize("name", ["fetch", "obfuscated", "click", "cookie", "referer", "frame", "tiles"])
def test_har_of_a_viewer_gives_its_image(browser, site, tmp_path, name):
    server, pages = site
    url, expected = pages[name]
    har = record_har(browser, url, tmp_path / f"{name}.har", click=name == "click")
    server.reset_requests()
    img = dz.open(har, **FAST)
    if name in ("fetch", "obfuscated", "cookie", "referer", "frame"):
        assert not [r for r in server.requests if r.endswith((".dzi", "/info.json"))], "fetched again"
    result = img.save(tmp_path / f"{name}.png", progress=False)
    assert np.array_equal(load(result.path), expected)


def test_har_without_bodies_fetches_what_it_needs(browser, site, tmp_path):
    server, pages = site
    url, expected = pages["cookie"]  # the metadata too needs the cookie the page's script set
    har = record_har(browser, url, tmp_path / "omit.har", content="omit")
    server.reset_requests()
    img = dz.open(har, **FAST)
    assert [r for r in server.requests if r.endswith(".dzi")] == ["/guarded/image.dzi"]
    assert np.array_equal(load(img.save(tmp_path / "omit.png", progress=False).path), expected)


def test_har_served_over_http(browser, site, tmp_path):
    server, pages = site
    url, expected = pages["referer"]
    har = record_har(browser, url, tmp_path / "r.har")
    har_url = server.serve_files("/hars/", {"capture.har": har.read_bytes()}, "application/json") + "/capture.har"
    img = dz.open(har_url, **FAST)
    assert np.array_equal(load(img.save(tmp_path / "r.png", progress=False).path), expected)
