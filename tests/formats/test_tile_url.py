"""Any tile URL → its image (dezoomers/tile_url.py): URL shapes, then downloads from a tile alone, pixels
compared, for every tile-addressed format (metadata found beside the tile, or the grid probed)."""

from __future__ import annotations

import numpy as np
import pytest

import dezoomify_nb as dz
from dezoomify_nb.dezoomers.base import Context
from dezoomify_nb.dezoomers.tile_url import TileUrlDezoomer, match
from dezoomify_nb.errors import MetadataError, WrongDezoomer
from dezoomify_nb.testing import Response, TileServer, make_test_image
from dezoomify_nb.testing.iip import iip_level_image, install_iip
from dezoomify_nb.testing.tilesites import install_grid

from .fmt_helpers import FAST, load


@pytest.mark.parametrize(("url", "kind", "meta", "template"), [
    ("https://h/img/TileGroup3/5-12-7.jpg", "zoomify", ["https://h/img/ImageProperties.xml"], ""),
    ("https://h/a/pic_files/12/3_4.jpeg?v=2", "deepzoom", ["https://h/a/pic.dzi", "https://h/a/pic.xml"],
     "https://h/a/pic_files/{z}/{x}_{y}.jpeg?v=2"),
    ("https://h/iiif/abc%2F1/0,512,512,512/512,/0/default.jpg", "iiif", ["https://h/iiif/abc%2F1/info.json"], ""),
    ("https://h/iiif/x/full/max/0/color.png", "iiif", ["https://h/iiif/x/info.json"], ""),
    ("https://h/fcgi/iipsrv.fcgi?FIF=a/b.tif&JTL=3,7", "IIPImage",
     ["https://h/fcgi/iipsrv.fcgi?FIF=a/b.tif&OBJ=Max-size&OBJ=Tile-size&OBJ=Resolution-number"], ""),
    ("https://h/pano/l3/02/l3_02_15.jpg", "krpano", [], "https://h/pano/l{z}/{y:02d}/l{z}_{y:02d}_{x}.jpg"),
    ("https://h/tiles/map{1}/5/12/7.png", "xyz", [], "https://h/tiles/map{{1}}/{z}/{x}/{y}.png"),
])
def test_match(url, kind, meta, template):
    found = match(url)
    assert found is not None and found.kind == kind
    assert [u for u, _ in found.metadata] == meta
    assert found.template == template
    if template:
        assert found.template.format(z=found.z, x=found.x, y=found.y) == url


@pytest.mark.parametrize("url", [
    "https://h/objects/2020/5/12",  # a page with numbers in its path, not an image
    "https://h/tiles/tile_{{X}}_{{Y}}.png", "https://h/img/photo.jpg", "file:///tmp/TileGroup0/0-0-0.jpg",
    "https://h/a/info.json",
])
def test_not_a_tile(url):
    assert match(url) is None
    with pytest.raises(WrongDezoomer):
        TileUrlDezoomer().images(Context(url))


@pytest.fixture(scope="module")
def srv():
    with TileServer(make_test_image(700, 500, seed=11), lossless=True) as s:
        # Deep Zoom served under .xml only, and with no descriptor at all (tiles of dzi-jpg: overlap 0)
        def proxy(kind: str, meta: bool):
            def handler(server, raw_path, headers):
                name = raw_path.split("/", 2)[2]
                if name == "image.xml" and meta:
                    return server._route(f"/{kind}/image.dzi")
                if name.startswith("image_files/"):
                    return server._route(f"/{kind}/{name}")
                return Response(404, b"not found\n")
            return handler

        s.add_route("/dzi-xml/", proxy("dzi-png", True))
        s.add_route("/dzi-bare/", proxy("dzi-jpg", False))
        yield s


def _save(url, tmp_path, name="out.png", **kw):
    img = dz.open(url, **FAST, **kw)
    return img, load(img.save(tmp_path / name, progress=False).path)


@pytest.mark.parametrize(("kind", "k"), [("zoomify", 1), ("dzi-png", 1), ("iiif2", 1), ("iiif3", 0)])
def test_tile_of_a_format_gives_its_image(srv, tmp_path, kind, k):
    img, got = _save(srv.tile_url(kind, k, 0, 0), tmp_path)
    assert img.dezoomer in ("zoomify", "deepzoom", "iiif")
    assert np.array_equal(got, srv.level_image(kind, 0))


def test_deep_zoom_descriptor_named_xml(srv, tmp_path):
    tile = srv.tile_url("dzi-png", 2, 0, 0).replace("/dzi-png/", "/dzi-xml/")
    img, got = _save(tile, tmp_path)
    assert img.url.endswith("/dzi-xml/image.xml") and img.dezoomer == "deepzoom"
    assert np.array_equal(got, srv.level_image("dzi-png", 0))


def test_deep_zoom_without_descriptor_probes_the_grid(srv, tmp_path):
    tile = srv.tile_url("dzi-jpg", 3, 0, 0).replace("/dzi-jpg/", "/dzi-bare/")  # a low level: z is probed up
    img, got = _save(tile, tmp_path)
    assert img.dezoomer == "tile_url" and (img.width, img.height) == (700, 500)
    assert np.array_equal(got, srv.level_image("dzi-jpg", 0))


def test_iipimage_tile(srv, tmp_path):
    base = install_iip(srv)
    img, got = _save(base + "&JTL=1,0", tmp_path)
    assert img.dezoomer == "IIPImage"
    assert np.array_equal(got, iip_level_image(srv, 0))


@pytest.mark.parametrize("kind", ["krpano", "xyz"])
def test_grid_without_metadata_is_probed(srv, tmp_path, kind):
    grid = install_grid(srv, kind)
    low = grid.top - 1
    img, got = _save(grid.tile_url(low, 1, 0), tmp_path)  # any tile of a lower level
    assert img.dezoomer == "tile_url" and (img.width, img.height) == (700, 500)
    assert img.levels[0].tile_url(0, 0) == grid.tile_url(grid.top, 0, 0)
    assert np.array_equal(got, grid.level_image(grid.top))


def test_tile_whose_metadata_and_grid_are_gone(srv):
    with pytest.raises(MetadataError, match="ImageProperties.xml") as info:
        dz.open(srv.base_url + "/nothing/TileGroup0/0-0-0.jpg", dezoomer="tile_url", **FAST)
    assert "--browser" in info.value.hint
    with pytest.raises(MetadataError, match="first tile"):
        dz.open(srv.base_url + "/nothing/4/0/0.png", dezoomer="tile_url", **FAST)
