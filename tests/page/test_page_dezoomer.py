"""The page dezoomer offline: requests made, iframes followed, candidates opened, errors explained."""

from __future__ import annotations

import io
import logging

import pytest
from PIL import Image as PILImage

from dezoomify_nb.dezoomers.base import Context
from dezoomify_nb.dezoomers.page import (
    MAX_FRAMES,
    NothingInPage,
    PageCandidateFailed,
    PageDezoomer,
)
from dezoomify_nb.errors import NOTICE, MetadataError, NeedsData, WrongDezoomer
from dezoomify_nb.model import Image, ImageRef

from .page_helpers import SITE, Driver, read

PAGE = PageDezoomer()
DZI = (b'<?xml version="1.0"?><Image xmlns="http://schemas.microsoft.com/deepzoom/2009" Format="png" '
       b'Overlap="1" TileSize="254"><Size Width="1000" Height="700"/></Image>')
INFO = (b'{"@context": "http://iiif.io/api/image/2/context.json", "@id": "http://museum.test/iiif2", '
        b'"protocol": "http://iiif.io/api/image", "width": 1000, "height": 700, '
        b'"tiles": [{"width": 256, "scaleFactors": [1, 2, 4]}], "profile": ["http://iiif.io/api/image/2/level2.json"]}')


def html(body: str, head: str = "") -> bytes:
    return f"<!DOCTYPE html><html><head>{head}</head><body>{body}</body></html>".encode()


def test_not_a_page() -> None:
    with pytest.raises(WrongDezoomer, match="not an HTML page"):
        Driver({"http://h/p": b'{"width": 1}'}).run(PAGE, "http://h/p")
    for url in ("http://h/a.jpg", "http://h/info.json", "http://h/t/{{X}}.png"):
        driver = Driver({})
        with pytest.raises(WrongDezoomer):
            driver.run(PAGE, url)
        assert driver.requests == []  # refused by its name: an image is never downloaded to be sniffed


def test_one_candidate_is_opened_by_its_format_and_titled_from_the_page(caplog) -> None:
    page = html('<script>OpenSeadragon({tileSources: "/tiles/duomo.dzi"})</script>', "<title>Duomo</title>")
    driver = Driver({"http://h/p": page, "http://h/tiles/duomo.dzi": DZI})
    with caplog.at_level(NOTICE, logger="dezoomify_nb"):
        (image,) = driver.run(PAGE, "http://h/p")
    assert isinstance(image, Image)
    assert image.title == "Duomo" and image.dezoomer == "deepzoom" and image.url == "http://h/tiles/duomo.dzi"
    assert image.levels[0].tile_url(0, 0) == "http://h/tiles/duomo_files/10/0_0.png"
    assert ("found_in_page", "http://h/p") in image.metadata
    assert driver.requests == ["http://h/p", "http://h/tiles/duomo.dzi"]
    (found,) = [r for r in caplog.records if r.getMessage().startswith("Found in the page:")]
    assert found.getMessage() == "Found in the page: Deep Zoom http://h/tiles/duomo.dzi"
    assert found.levelno == NOTICE  # news, not a warning


def test_a_manifest_of_one_canvas_gives_that_image() -> None:
    pages = {SITE + "uv.html": read("uv.html"), "http://museum.test/site/single.json": read("single.json"),
             "http://museum.test/iiif3/info.json": INFO}
    driver = Driver(pages)
    (image,) = driver.run(PAGE, SITE + "uv.html")
    assert isinstance(image, Image) and image.title == "Portrait of a Lady - recto"  # the manifest's title
    assert driver.requests == [SITE + "uv.html", "http://museum.test/site/single.json",
                               "http://museum.test/iiif3/info.json"]


def test_a_manifest_of_several_canvases_gives_lazy_references() -> None:
    driver = Driver({SITE + "mirador.html": read("mirador.html"), SITE + "manifest.json": read("manifest.json")})
    refs = driver.run(PAGE, SITE + "mirador.html")
    assert [(r.title, r.url, r.dezoomer) for r in refs if isinstance(r, ImageRef)] == [
        ("Book of Hours - f. 1r", "http://museum.test/iiif2/info.json", "iiif"),
        ("Book of Hours - f. 1v", "http://museum.test/iiif3/info.json", "iiif")]
    assert len(driver.requests) == 2  # the page and the manifest; no info.json yet


def test_several_candidates_are_listed_without_fetching_them() -> None:
    driver = Driver({SITE + "multi.html": read("multi.html")})
    refs = driver.run(PAGE, SITE + "multi.html")
    assert [(r.title, r.url, r.dezoomer, r.found_by) for r in refs if isinstance(r, ImageRef)] == [
        ("IIIF image https://museum.test/iiif3/info.json", "https://museum.test/iiif3/info.json", "iiif", "page"),
        ("Deep Zoom http://museum.test/dzi-jpg/image.dzi", "http://museum.test/dzi-jpg/image.dzi", "deepzoom",
         "page")]
    assert driver.requests == [SITE + "multi.html"]


def test_several_inline_descriptions_are_referred_to_by_index() -> None:
    obj = ("{{Image: {{Url: '/t{n}_files/', Format: 'png', Overlap: '0', TileSize: '256', "
           "Size: {{Width: '{w}', Height: '300'}}}}}}")
    page = html("<script>OpenSeadragon({tileSources: [" + obj.format(n=1, w=400) + ", " + obj.format(n=2, w=500)
                + "]})</script>")
    refs = Driver({"http://h/p": page}).run(PAGE, "http://h/p")
    assert [(r.url, r.dezoomer) for r in refs if isinstance(r, ImageRef)] == [
        ("http://h/p#dezoomify-nb-inline=0", "page"), ("http://h/p#dezoomify-nb-inline=1", "page")]
    assert [r.title for r in refs] == ["Deep Zoom (inline) http://h/p"] * 2
    driver = Driver({"http://h/p": page})
    (second,) = driver.run(PAGE, "http://h/p#dezoomify-nb-inline=1")
    assert isinstance(second, Image) and second.levels[0].size == (500, 300)
    assert second.levels[0].tile_url(0, 0).startswith("http://h/t2_files/")
    assert driver.requests == ["http://h/p"]  # the fragment is ours, never sent
    with pytest.raises(MetadataError, match="no inline image #5"):
        Driver({"http://h/p": page}).run(PAGE, "http://h/p#dezoomify-nb-inline=5")


def test_same_site_iframes_are_followed_once_and_bounded() -> None:
    frames = "".join(f'<iframe src="/embed/{i}.html"></iframe>' for i in range(10))
    page = html(frames + '<iframe src="https://video.test/e/1"></iframe>')
    inner = html('<script>OpenSeadragon({tileSources: "../iiif2/info.json"})</script>')
    served = {"http://h/p": page, "http://h/embed/2.html": inner, "http://h/iiif2/info.json": INFO}
    driver = Driver(served)
    (image,) = driver.run(PAGE, "http://h/p")
    assert isinstance(image, Image) and image.levels[0].size == (1000, 700)
    frames_fetched = [u for u in driver.requests if "/embed/" in u]
    assert frames_fetched == [f"http://h/embed/{i}.html" for i in range(MAX_FRAMES)]  # in one round
    assert not any("video.test" in u for u in driver.requests)
    assert driver.requests[-1] == "http://h/iiif2/info.json"


def test_iframes_are_not_fetched_when_the_page_itself_has_a_source() -> None:
    page = html('<iframe src="/embed/1.html"></iframe><a href="/tiles/a.dzi">a</a>')
    driver = Driver({"http://h/p": page, "http://h/tiles/a.dzi": DZI})
    driver.run(PAGE, "http://h/p")
    assert driver.requests == ["http://h/p", "http://h/tiles/a.dzi"]


def png(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", (w, h), (10, 20, 30)).save(buf, format="PNG")
    return buf.getvalue()


def test_og_image_is_a_low_resolution_one_tile_image(caplog) -> None:
    driver = Driver({SITE + "og_image.html": read("og_image.html"),
                     "http://museum.test/site/media/still_life_preview.png": png(320, 200)})
    with caplog.at_level(logging.WARNING, logger="dezoomify_nb"):
        (image,) = driver.run(PAGE, SITE + "og_image.html")
    assert isinstance(image, Image) and len(image.levels) == 1
    lv = image.levels[0]
    assert lv.size == (320, 200) and lv.tile_size == (320, 200) and lv.n_tiles == 1
    assert lv.tile_url(0, 0) == "http://museum.test/site/media/still_life_preview.png"
    assert "low-resolution" in lv.describe()
    assert image.title == "Still life with fruit (preview)"
    assert "LOW-RESOLUTION preview (320x200)" in caplog.text


def test_og_image_that_is_not_an_image() -> None:
    driver = Driver({SITE + "og_image.html": read("og_image.html"),
                     "http://museum.test/site/media/still_life_preview.png": b"<html>nope</html>"})
    with pytest.raises(MetadataError, match="not a readable image"):
        driver.run(PAGE, SITE + "og_image.html")
    driver = Driver({SITE + "og_image.html": read("og_image.html")})
    with pytest.raises(NothingInPage, match="could not be fetched"):
        driver.run(PAGE, SITE + "og_image.html")


def test_nothing_found_says_what_was_looked_for() -> None:
    with pytest.raises(NothingInPage) as info:
        Driver({SITE + "nothing.html": read("nothing.html")}).run(PAGE, SITE + "nothing.html")
    msg = str(info.value)
    for what in ("IIIF manifest", "info.json", "OpenSeadragon tileSources", "Zoomify", "krpano", "FIF=",
                 "iframes", "og:image", "https://player.vimeo.com/video/12345"):
        assert what in msg
    assert "developer tools" in info.value.hint and "info.json" in info.value.hint
    assert info.value.explains_input


def test_the_one_candidate_failing_is_explained() -> None:
    page = html('<a href="/tiles/gone.dzi">zoom</a>')
    with pytest.raises(PageCandidateFailed, match=r"Deep Zoom http://h/tiles/gone.dzi, which could not be opened"):
        Driver({"http://h/p": page}).run(PAGE, "http://h/p")


def test_needs_the_page_first() -> None:
    with pytest.raises(NeedsData) as need:
        PAGE.images(Context("http://h/p"))
    assert need.value.urls == ("http://h/p",)
