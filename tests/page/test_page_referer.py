"""A source found in a web page is fetched with that page as Referer (what the viewer's browser sends),
unless the user set one (``-H 'Referer: …'``, ``--referer URL``); both transports."""

from __future__ import annotations

import pytest

import dezoomify_nb as dz
from dezoomify_nb.cli import main
from dezoomify_nb.testing import TileServer

from .page_helpers import FAST, serve_site

TRANSPORTS = ["aiohttp", "httpx"]


@pytest.fixture(scope="module")
def site_server(source):
    with TileServer(source) as server:
        serve_site(server)
        yield server


@pytest.fixture
def site(site_server):
    site_server.reset_requests()
    return site_server


def _referers(server: TileServer, part: str) -> set[str | None]:
    return {h.get("Referer") for p, h in zip(server.requests, server.headers_seen, strict=True) if part in p}


@pytest.mark.parametrize(("name", "tiles"), [("zoomify.html", "TileGroup"), ("iframe.html", "/default.")])
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_tiles_found_in_a_page_carry_the_page_as_referer(site, tmp_path, transport, name, tiles):
    page = f"{site.base_url}/site/{name}"
    image = dz.open(page, transport=transport, min_interval=0.0, retry_delay=0.01)
    image.save(tmp_path / "o.png", progress=False)
    refs = _referers(site, tiles)
    if name == "iframe.html":  # the viewer runs in the frame: that document is the Referer
        assert len(refs) == 1 and next(iter(refs)).startswith(site.base_url + "/site/")
        assert next(iter(refs)) != page
    else:
        assert refs == {page}
    site.reset_requests()
    image = dz.open(page, transport=transport, headers={"Referer": "https://mine.example/"}, min_interval=0.0)
    image.save(tmp_path / "p.png", progress=False)
    assert _referers(site, tiles) == {"https://mine.example/"}


def test_cli_referer_option(site, capsys, tmp_path, monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: False, raising=False)
    page = f"{site.base_url}/site/zoomify.html"
    assert main(["--largest", *FAST, page, str(tmp_path / "o.png")]) == 0
    assert _referers(site, "TileGroup") == {page}
    site.reset_requests()
    code = main(["--largest", *FAST, "--referer", "https://museum.example/item/1", page, str(tmp_path / "p.png")])
    assert code == 0, capsys.readouterr().err
    assert _referers(site, "TileGroup") == {"https://museum.example/item/1"}
    assert _referers(site, "zoomify.html") == {"https://museum.example/item/1"}


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_images_listed_by_a_page_carry_it_as_referer(site, transport):
    """A page with several candidates, or a manifest of several canvases: each item, resolved later, too."""
    for name, index, tiles in (("multi.html", 1, "dzi-jpg/"), ("mirador.html", 1, "/default.")):
        site.reset_requests()
        page = f"{site.base_url}/site/{name}"
        items = dz.open(page, transport=transport, min_interval=0.0, retry_delay=0.01)
        assert isinstance(items, dz.ImageCollection)
        items[index].to_dask(items[index].levels.__len__() - 1).compute()
        assert _referers(site, tiles) == {page}, (name, _referers(site, tiles))
