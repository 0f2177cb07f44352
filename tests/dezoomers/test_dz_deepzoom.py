from __future__ import annotations

import pickle

import pytest
from dz_helpers import DATA, Driver, not_found, parse, read, urls

from dezoomify_nb.dezoomers.base import Context
from dezoomify_nb.dezoomers.deepzoom import DeepZoomDezoomer, max_level, metadata_url
from dezoomify_nb.errors import MetadataError, NeedsData, WrongDezoomer

D = DeepZoomDezoomer()


def test_600x300_overlap2() -> None:
    (image,) = parse(D, "http://x.fr/y/test.dzi", read("deepzoom/duomo_2008.dzi"))
    assert len(image.levels) == 11
    assert urls(image.levels[1]) == ["http://x.fr/y/test_files/9/0_0.jpg", "http://x.fr/y/test_files/9/1_0.jpg"]
    top = image.levels[0]
    assert (top.size, top.tile_size, top.overlap) == ((600, 300), (256, 256), 2)
    assert top.tile_url(2, 1) == "http://x.fr/y/test_files/10/2_1.jpg"
    assert image.levels[-1].size == (1, 1) and image.levels[-1].tile_url(0, 0).endswith("/0/0_0.jpg")
    assert [lv.size for lv in image.levels[:4]] == [(600, 300), (300, 150), (150, 75), (75, 38)]
    assert image.title == "test"
    assert top.name == "test (Deep Zoom Image)"
    assert top.headers == (("Referer", "http://x.fr/y/test_files/10/0_0.jpg"),)
    assert pickle.loads(pickle.dumps(image)) == image


def test_overlap_geometry_matches_dzi() -> None:
    """DZI tile (c, r) starts at c*ts - overlap (c > 0): skipping `overlap` px gives the tile's own box."""
    (image,) = parse(D, "http://x.fr/y/test.dzi", read("deepzoom/duomo_2008.dzi"))
    top = image.levels[0]
    assert top.tile_offset(0, 0) == (0, 0)
    assert top.tile_offset(1, 1) == (2, 2)
    assert top.tile_box(1, 0) == (256, 0, 256, 256)
    assert top.tile_box(2, 1) == (512, 256, 88, 44)


def test_2009_namespace_png() -> None:
    (image,) = parse(D, "https://cdn.test/slides/scan.dzi?sig=abc", read("deepzoom/vips_2009.dzi"))
    top = image.levels[0]
    assert (top.size, top.tile_size, top.overlap) == ((5393, 3852), (254, 254), 1)
    assert max_level(5393, 3852) == 13
    # the descriptor's query is repeated on every tile, as OpenSeadragon does (its queryParams)
    assert top.tile_url(0, 0) == "https://cdn.test/slides/scan_files/13/0_0.png?sig=abc"
    assert image.title == "scan"


@pytest.mark.parametrize(("url", "tile", "title"), [
    # the IIPImage server: the descriptor's path is inside the query string (what OpenSeadragon asks for)
    ("http://h/fcgi-bin/iipsrv.fcgi?DeepZoom=/images/a.tif.dzi",
     "http://h/fcgi-bin/iipsrv.fcgi?DeepZoom=/images/a.tif_files/13/0_0.png", "a.tif"),
    ("http://h/iipsrv?DeepZoom=a.tif.dzi", "http://h/iipsrv?DeepZoom=a.tif_files/13/0_0.png", "a.tif"),
    ("http://h/s/scan.xml#frag", "http://h/s/scan_files/13/0_0.png", "scan"),
    # a query holding a '/' after the extension: not OpenSeadragon's form; the query is dropped
    ("http://h/s/scan.dzi?path=/x/y", "http://h/s/scan_files/13/0_0.png", "scan"),
])
def test_descriptor_in_a_query_string(url, tile, title) -> None:
    (image,) = parse(D, url, read("deepzoom/vips_2009.dzi"))
    assert image.levels[0].tile_url(0, 0) == tile
    assert image.levels[-1].tile_url(0, 0) == tile.replace("/13/", "/0/")
    assert image.title == title


def test_tile_url_inside_a_query_string_gives_its_descriptor() -> None:
    tile = "http://h/fcgi-bin/iipsrv.fcgi?DeepZoom=/images/a.tif_files/13/0_0.jpg"
    assert metadata_url(tile) == ("http://h/fcgi-bin/iipsrv.fcgi?DeepZoom=/images/a.tif.dzi", True)


def test_bom_xml_variant() -> None:
    (image,) = parse(D, "http://test.com/test.xml", read("deepzoom/bom.xml"))
    assert image.levels[0].size == (6261, 6047)
    assert image.levels[0].tile_url(0, 0) == "http://test.com/test_files/13/0_0.jpg"


def test_openseadragon_inline_html() -> None:
    (image,) = parse(D, "http://test.com/x/test.xml", read("deepzoom/highsmith_inline.html"))
    top = image.levels[0]
    assert top.size == (7026, 9221)
    assert top.overlap == 2
    assert urls(top)[0] == "http://test.com/example-images/highsmith/highsmith_files/14/0_0.jpg"
    assert image.title == "highsmith"


def test_json_dzi() -> None:
    (image,) = parse(D, "http://x/duomo.json", read("deepzoom/duomo.json"))
    top = image.levels[0]
    assert (top.size, top.tile_size, top.overlap) == ((7793, 4409), (254, 254), 1)
    assert max_level(7793, 4409) == 13
    assert top.tile_url(3, 2) == "http://content.example.net/images/13/3_2.jpg"


def test_url_attribute_in_xml_is_relative_to_descriptor() -> None:
    data = b'<Image TileSize="512" Overlap="0" Format="jpeg" Url="../tiles/big/"><Size Width="1024" Height="512"/></Image>'
    (image,) = parse(D, "http://x/meta/big.xml", data)
    assert image.levels[0].tile_url(1, 0) == "http://x/tiles/big/10/1_0.jpeg"


def test_tilesize_zero_is_metadata_error() -> None:
    with pytest.raises(MetadataError):
        parse(D, "http://x/a.dzi", read("deepzoom/tilesize0.dzi"))


@pytest.mark.parametrize(
    "data",
    [b"<html><body>hello</body></html>", b'{"width": 10, "height": 10}', read("iiif/cantaloupe_v3.json"),
     read("zoomify/kitchen/ImageProperties.xml"), b"\x89PNG\r\n\x1a\n garbage"],
)
def test_not_a_dzi_is_wrong_dezoomer(data: bytes) -> None:
    with pytest.raises(WrongDezoomer):
        parse(D, "http://x/page", data)


def test_needs_data_first() -> None:
    with pytest.raises(NeedsData) as err:
        D.images(Context("http://x/y/test.dzi"))
    assert err.value.urls == ("http://x/y/test.dzi",)


def test_tile_url_asks_for_dzi() -> None:
    with pytest.raises(NeedsData) as err:
        D.images(Context("http://x/y/test_files/12/3_4.jpg"))
    assert err.value.urls == ("http://x/y/test.dzi",)
    d = Driver(lambda u: read("deepzoom/duomo_2008.dzi"))
    (image,) = d.run(D, "http://x/y/test_files/12/3_4.jpg")
    assert image.levels[0].tile_url(0, 0) == "http://x/y/test_files/10/0_0.jpg"
    with pytest.raises(WrongDezoomer):
        Driver(not_found).run(D, "http://x/y/test_files/12/3_4.jpg")


def test_image_and_template_urls_are_not_fetched() -> None:
    for url in ("http://x/photo.jpg", "http://x/t_{{X}}_{{Y}}.png"):
        with pytest.raises(WrongDezoomer):
            D.images(Context(url))


def test_xxe_does_not_leak(tmp_path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-42")
    data = read("deepzoom/xxe.dzi").replace(b"file:///etc/passwd", f"file://{secret}".encode())
    try:
        images = parse(D, "http://x/a.dzi", data)
    except (MetadataError, WrongDezoomer) as exc:
        assert "TOP-SECRET" not in str(exc)
    else:  # pragma: no cover - accepted only if nothing leaked
        assert all("TOP-SECRET" not in lv.tile_url(0, 0) for im in images for lv in im.levels)


def test_local_dzi_gives_local_tiles() -> None:
    path = str(DATA / "deepzoom" / "duomo_2008.dzi")
    (image,) = parse(D, path, read("deepzoom/duomo_2008.dzi"))
    assert image.levels[0].tile_url(1, 0) == str(DATA / "deepzoom" / "duomo_2008_files" / "10" / "1_0.jpg")
    assert image.levels[0].headers == ()
