"""Paste the page URL: captured-style viewer pages served by the loopback server, downloaded end to end."""

from __future__ import annotations

import io

import numpy as np
import pytest
from e2e.helpers import assert_same_pixels, read

import dezoomify_nb as dz
from dezoomify_nb.cli import main
from dezoomify_nb.testing import TileServer
from dezoomify_nb.testing.iip import iip_level_image, install_iip

from .page_helpers import FAST, serve_site


@pytest.fixture(scope="module")
def site_server(source):
    """A server of our own: the captured pages under /site/, an IIP route, and the usual kinds."""
    with TileServer(source) as server:
        serve_site(server)
        install_iip(server)
        yield server


@pytest.fixture
def site(site_server):
    site_server.reset_requests()
    return site_server


def url(server: TileServer, name: str) -> str:
    return f"{server.base_url}/site/{name}"


def cli(capsys, *args) -> tuple[int, str]:
    code = main(["--largest", *FAST, *map(str, args)])
    return code, capsys.readouterr().err


@pytest.fixture
def not_a_terminal(monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: False, raising=False)


@pytest.mark.parametrize(("name", "kind", "found"), [
    ("osd_inline_dzi.html", "dzi-png", None),  # deepzoom itself reads OpenSeadragon's inline object
    ("osd_inline_xml.html", "dzi-png", "Deep Zoom (inline)"),
    ("uv.html", "iiif3", "IIIF manifest"),
    ("iframe.html", "iiif2", "IIIF image"),
    ("zoomify.html", "zoomify", "Zoomify"),
])
def test_cli_downloads_the_image_behind_the_page(site, capsys, caplog, tmp_path, not_a_terminal, name, kind,
                                                 found):
    code, err = cli(capsys, url(site, name), tmp_path / "out.png")
    assert code == 0, err
    assert_same_pixels(read(tmp_path / "out.png"), site.level_image(kind, 0), kind)
    if found:  # says which (a warning: shown by the CLI's default logging)
        assert f"Found in the page: {found}" in caplog.text


def test_cli_iipmooviewer_page(site, capsys, tmp_path, not_a_terminal):
    code, err = cli(capsys, url(site, "iipmooviewer.html"), tmp_path / "out.png")
    assert code == 0, err
    assert_same_pixels(read(tmp_path / "out.png"), iip_level_image(site, 0), "zoomify")  # JPEG tiles


def test_cli_mirador_page_lists_the_manifest_images(site, capsys, tmp_path, not_a_terminal):
    code, err = cli(capsys, url(site, "mirador.html"), tmp_path / "first.png")
    assert code == 0, err
    assert "Found 2 images" in err and "--image-index" in err
    assert "[0] Book of Hours - f. 1r (1000 x 700 pixels)" in err  # listed, so --image-index can pick
    assert "[1] Book of Hours - f. 1v (1000 x 700 pixels)" in err
    assert_same_pixels(read(tmp_path / "first.png"), site.level_image("iiif2", 0), "iiif2")
    code, err = cli(capsys, "--image-index", 1, url(site, "mirador.html"), tmp_path / "second.png")
    assert code == 0, err
    assert_same_pixels(read(tmp_path / "second.png"), site.level_image("iiif3", 0), "iiif3")
    assert site.count("/iiif2/info.json") == 1  # only the chosen canvas was opened, each time


def test_cli_og_image_only_says_it_is_a_preview(site, capsys, caplog, tmp_path, not_a_terminal):
    code, err = cli(capsys, url(site, "og_image.html"), tmp_path / "out.png")
    assert code == 0, err
    assert "LOW-RESOLUTION preview (500x350)" in caplog.text
    np.testing.assert_array_equal(read(tmp_path / "out.png"), site.level_image("dzi-png", 1))


def test_cli_several_candidates_interactive_picker(site, capsys, tmp_path, monkeypatch):
    answers = io.StringIO("1\n")
    answers.isatty = lambda: True
    monkeypatch.setattr("sys.stdin", answers)
    code, err = cli(capsys, url(site, "multi.html"), tmp_path / "out.png")
    assert code == 0, err
    base = site.base_url
    assert f"[0] IIIF image {base}/iiif3/info.json (? x ? pixels)" in err
    assert f"[1] Deep Zoom {base}/dzi-jpg/image.dzi (? x ? pixels)" in err
    assert_same_pixels(read(tmp_path / "out.png"), site.level_image("dzi-jpg", 0), "dzi-jpg")
    assert site.count("/iiif3/info.json") == 0  # the other candidate was never opened


def test_cli_several_candidates_image_index(site, capsys, tmp_path, not_a_terminal):
    code, err = cli(capsys, "--image-index", 0, url(site, "multi.html"), tmp_path / "out.png")
    assert code == 0, err
    assert_same_pixels(read(tmp_path / "out.png"), site.level_image("iiif3", 0), "iiif3")


def test_cli_nothing_found_explains_and_hints(site, capsys, tmp_path, not_a_terminal):
    code, err = cli(capsys, url(site, "nothing.html"), tmp_path / "out.png")
    assert code == 1
    lines = err.splitlines()
    assert lines[0].startswith("error: No dezoomer could open")
    assert lines[1].startswith(" - page: no zoomable image found in this web page")  # first of the reasons
    assert "https://player.vimeo.com/video/12345" in lines[1]
    hint = next(line for line in lines if line.startswith("hint:"))
    if _browser_installed():  # the page scan found nothing: a headless browser may, and the hint says so
        assert "try --browser" in hint and "browser=True" in hint
    else:
        assert "developer tools" in hint and "info.json" in hint
    assert not (tmp_path / "out.png").exists()


def test_api_open_single_image_is_titled_from_the_page(site):
    image = dz.open(url(site, "zoomify.html"), retry_delay=0.01)
    assert isinstance(image, dz.ZoomableImage) and not isinstance(image, dz.ImageCollection)
    assert image.title == "Kitchen interior, 1890" and image.dezoomer == "zoomify"
    assert_same_pixels(image.to_dask(0)[100:600, 200:900].compute(), site.level_image("zoomify", 0)[100:600, 200:900],
                       "zoomify")


def test_api_open_mirador_page_is_a_lazy_collection(site):
    book = dz.open(url(site, "mirador.html"), retry_delay=0.01)
    assert isinstance(book, dz.ImageCollection)
    assert book.titles == ["Book of Hours - f. 1r", "Book of Hours - f. 1v"]
    assert site.count("info.json") == 0
    np.testing.assert_array_equal(book[1].to_dask(1).compute(), site.level_image("iiif3", 1))


def test_api_open_several_candidates_and_inline_ones(site):
    both = dz.open(url(site, "multi.html"), retry_delay=0.01)
    assert isinstance(both, dz.ImageCollection) and len(both) == 2
    assert_same_pixels(both[1].to_dask(0).compute(), site.level_image("dzi-jpg", 0), "dzi-jpg")
    inline = dz.open(url(site, "osd_inline_xml.html"), retry_delay=0.01)
    assert inline.title == "Cartographie & plans \u2013 Plan de Paris"
    np.testing.assert_array_equal(inline.to_dask(0).compute(), site.level_image("dzi-png", 0))


def test_forced_page_dezoomer_and_few_requests(site):
    image = dz.open(url(site, "iframe.html"), dezoomer="page", retry_delay=0.01)
    assert image.levels[0].size == (1000, 700)
    # the page, its same-site frame, the info.json: nothing else before the tiles
    assert site.requests == ["/site/iframe.html", "/site/viewer/embed.html?id=1872&lang=en", "/iiif2/info.json"]
    with pytest.raises(dz.NoDezoomerFound) as info:
        dz.open(url(site, "nothing.html"), dezoomer="page")
    assert info.value.reasons[0][0] == "page" and "developer tools" in info.value.hint


def test_a_real_metadata_url_is_still_handled_by_its_own_dezoomer(site):
    image = dz.open(site.url("dzi-png"))
    assert image.dezoomer == "deepzoom" and ("found_in_page", site.url("dzi-png")) not in image.image.metadata


#: the picker passes Layout(gap=...), which this ipywidgets does not know (a widgets issue, not a page one)
WIDGET_LAYOUT_GAP = pytest.mark.filterwarnings(r"ignore:Passing unrecognized arguments to super\(Layout\)")


@WIDGET_LAYOUT_GAP
def test_widget_shows_the_page_candidates_in_its_image_dropdown(site, tmp_path):
    picker = dz.widget(url(site, "multi.html"), viewer=False, directory=tmp_path, retry_delay=0.01).wait(30)
    base = site.base_url
    assert [label for label, _ in picker.image_select.options] == [
        f"1. IIIF image {base}/iiif3/info.json", f"2. Deep Zoom {base}/dzi-jpg/image.dzi"]
    assert picker.image_select.layout.display == "flex"
    picker.image_select.value = 1
    picker.wait(30)
    assert picker.image is not None and picker.image.dezoomer == "deepzoom"
    assert_same_pixels(picker.image.to_dask(0).compute(), site.level_image("dzi-jpg", 0), "dzi-jpg")


@WIDGET_LAYOUT_GAP
def test_widget_status_explains_a_page_without_image(site, tmp_path):
    picker = dz.widget(url(site, "nothing.html"), viewer=False, directory=tmp_path).wait(30)
    assert picker.state == "failed"
    card = picker.placeholder.value  # no image: the error card takes the image's place
    assert "no zoomable image found in this web page" in card
    if _browser_installed():
        assert "Look with a browser" in card and picker.browser_button.layout.display == "flex"
    else:
        assert "developer tools" in card and picker.browser_button.layout.display == "none"


def _browser_installed() -> bool:
    from dezoomify_nb.browser import unavailable

    return unavailable(None) is None


def test_cli_as_a_program(site, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "kitchen.png"
    proc = subprocess.run([sys.executable, "-m", "dezoomify_nb", "--largest", "-i", "0ms", url(site, "zoomify.html"),
                           str(out)], capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
    assert proc.returncode == 0, proc.stderr
    # news on a line of its own, not a warning (no "WARNING dezoomify_nb.dezoomers.page:")
    assert f"Found in the page: Zoomify {site.base_url}/zoomify/ImageProperties.xml" in proc.stderr.splitlines()
    assert "WARNING" not in proc.stderr and "warning:" not in proc.stderr
    assert_same_pixels(read(out), site.level_image("zoomify", 0), "zoomify")
