from __future__ import annotations

import pickle

import pytest
from dz_helpers import DATA, Driver, not_found, parse, read, urls

from dezoomify_nb.dezoomers.base import Context
from dezoomify_nb.dezoomers.zoomify import ZoomifyDezoomer, ZoomifyLevel, level_sizes
from dezoomify_nb.errors import MetadataError, NeedsData, WrongDezoomer

Z = ZoomifyDezoomer()


def smallest_first(url: str, data: bytes) -> list[ZoomifyLevel]:
    """Levels of the properties ``data`` at ``url``; every other URL (the one-tile probe) answers 404."""
    (image,) = Driver({url: data}).run(Z, url)
    return list(reversed(image.levels))


def test_panorama_174550x16991() -> None:
    levels = smallest_first("http://x.fr/y/ImageProperties.xml?t", read("zoomify/panorama_ImageProperties.xml"))
    assert len(levels) == 11
    assert levels[-1].size == (174550, 16991)
    assert urls(levels[3]) == [f"http://x.fr/y/TileGroup0/3-{x}-0.jpg" for x in range(6)]
    assert levels[3].headers == (("Referer", "http://x.fr/y/TileGroup0/3-0-0.jpg"),)


def test_tilegroups_12000x9788() -> None:
    levels = smallest_first("http://x.fr/y/ImageProperties.xml?t", read("zoomify/kitchen/ImageProperties.xml"))
    tiles = set(urls(levels[5]))
    assert "http://x.fr/y/TileGroup1/5-0-14.jpg" in tiles
    assert "http://x.fr/y/TileGroup2/5-0-15.jpg" in tiles
    assert sum(lv.n_tiles for lv in levels) == 2477  # methods 2 and 3 match NUMTILES; the probe 404s: 2
    # every tile index maps to exactly one group number: index // 256
    index = 0
    for lv in levels:
        for c, r in lv.tile_positions():
            assert lv.tile_url(c, r).split("/")[-2] == f"TileGroup{index // 256}"
            index += 1


def test_level_sizes_2052x3185() -> None:
    assert level_sizes(2052, 3185, 256, 167)[::-1] == [(128, 200), (256, 398), (514, 796), (1026, 1592), (2052, 3185)]
    levels = smallest_first("http://x/ImageProperties.xml", read("zoomify/portrait_ImageProperties.xml"))
    assert [lv.size for lv in levels] == [(128, 200), (256, 398), (514, 796), (1026, 1592), (2052, 3185)]
    assert [lv.z for lv in levels] == [0, 1, 2, 3, 4]


def test_tiny_10x5_ts3() -> None:
    data = b'<IMAGE_PROPERTIES WIDTH="10" HEIGHT="5" NUMTILES="8" NUMIMAGES="1" VERSION="1.8" TILESIZE="3" />'
    levels = smallest_first("http://x/ImageProperties.xml", data)
    assert [lv.size for lv in levels] == [(2, 2), (6, 2), (10, 5)]
    assert all(lv.tile_size == (3, 3) and lv.overlap == 0 for lv in levels)
    assert urls(levels[2])[:5] == [
        "http://x/TileGroup0/2-0-0.jpg", "http://x/TileGroup0/2-1-0.jpg", "http://x/TileGroup0/2-2-0.jpg",
        "http://x/TileGroup0/2-3-0.jpg", "http://x/TileGroup0/2-0-1.jpg",
    ]


def test_image_fields_and_pickle() -> None:
    (image,) = Driver({"http://x/a/ImageProperties.xml": read("zoomify/kitchen/ImageProperties.xml")}).run(
        Z, "http://x/a/ImageProperties.xml")
    assert image.title is None
    assert image.dezoomer == "zoomify"
    assert image.levels[0].name == "Zoomify Image"
    assert image.levels[0].describe().startswith("Zoomify Image (12000 x  9788 pixels")
    assert pickle.loads(pickle.dumps(image)) == image


def test_needs_data_first() -> None:
    with pytest.raises(NeedsData) as err:
        Z.images(Context("http://x/y/ImageProperties.xml"))
    assert err.value.urls == ("http://x/y/ImageProperties.xml",)


@pytest.mark.parametrize(
    "url",
    ["http://x/y/TileGroup3/5-0-14.jpg", "http://x/y/", "http://x/y", "http://x/y/TileGroup0/0-0-0.jpg?v=1"],
)
def test_tile_and_folder_urls_ask_for_properties(url: str) -> None:
    with pytest.raises(NeedsData) as err:
        Z.images(Context(url))
    assert err.value.urls == ("http://x/y/ImageProperties.xml",)


def test_folder_without_properties_is_wrong_dezoomer() -> None:
    d = Driver(not_found)
    with pytest.raises(WrongDezoomer):
        d.run(Z, "http://x/y/")


@pytest.mark.parametrize(
    "url", ["http://x/y/image.dzi", "http://x/y/info.json", "http://x/tile_{{X}}_{{Y}}.jpg", "http://x/p?id=3"]
)
def test_other_urls_are_wrong_dezoomer_without_fetching(url: str) -> None:
    with pytest.raises(WrongDezoomer):
        Z.images(Context(url))


def test_folder_with_other_content_is_wrong_dezoomer() -> None:
    d = Driver(lambda u: b"<html><body>not here</body></html>")
    with pytest.raises(WrongDezoomer):
        d.run(Z, "http://x/y/")


def test_explicit_properties_broken_is_metadata_error() -> None:
    with pytest.raises(MetadataError):
        parse(Z, "http://x/ImageProperties.xml", b"<html>nope</html>")
    with pytest.raises(MetadataError):
        parse(Z, "http://x/ImageProperties.xml", b'<IMAGE_PROPERTIES WIDTH="100" HEIGHT="100" TILESIZE="0"/>')
    with pytest.raises(MetadataError):
        parse(Z, "http://x/ImageProperties.xml", b'<IMAGE_PROPERTIES WIDTH="-5" HEIGHT="100" TILESIZE="256"/>')
    with pytest.raises(MetadataError):
        parse(Z, "http://x/ImageProperties.xml", b'<IMAGE_PROPERTIES WIDTH="99999999999" HEIGHT="1" TILESIZE="1"/>')


def test_missing_numtiles_still_works() -> None:
    levels = smallest_first("http://x/ImageProperties.xml", b'<IMAGE_PROPERTIES WIDTH="1000" HEIGHT="600" TILESIZE="256"/>')
    assert levels[-1].size == (1000, 600)
    assert levels[0].width <= 256 and levels[0].height <= 256


def test_xxe_does_not_leak() -> None:
    data = read("zoomify/xxe_ImageProperties.xml")
    with pytest.raises((MetadataError, WrongDezoomer)) as err:
        parse(Z, "http://x/ImageProperties.xml", data)
    assert "root:" not in str(err.value)


def test_local_path_gives_local_tiles() -> None:
    path = str(DATA / "zoomify" / "kitchen" / "ImageProperties.xml")
    levels = smallest_first(path, read("zoomify/kitchen/ImageProperties.xml"))
    assert levels[0].tile_url(0, 0) == str(DATA / "zoomify" / "kitchen" / "TileGroup0" / "0-0-0.jpg")
    assert levels[0].headers == ()
    # a local folder works too
    with pytest.raises(NeedsData) as err:
        Z.images(Context(str(DATA / "zoomify" / "kitchen")))
    assert err.value.urls == (path,)


def _jpeg(w: int, h: int) -> bytes:
    import io

    from PIL import Image as PILImage

    buf = io.BytesIO()
    PILImage.new("RGB", (w, h), (90, 120, 30)).save(buf, format="JPEG")
    return buf.getvalue()


def _bomb_header() -> bytes:
    data = bytearray(_jpeg(8, 8))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = (60000).to_bytes(2, "big") * 2  # height, width
    return bytes(data)


VIPS_1500 = b'<IMAGE_PROPERTIES WIDTH="1500" HEIGHT="1000" NUMTILES="33" NUMIMAGES="1" VERSION="1.8" TILESIZE="256" />'


@pytest.mark.parametrize(("tile", "want"), [
    # libvips dzsave --layout zoomify: ceil(W / 2**k) — its one-tile level is 188×125
    (_jpeg(188, 125), [(188, 125), (375, 250), (750, 500), (1500, 1000)]),
    # the Zoomify converter: odd sides rounded up to even — 188×126
    (_jpeg(188, 126), [(188, 126), (376, 250), (750, 500), (1500, 1000)]),
    # no tile (404), or not an image: the converter's rule, as before
    (None, [(188, 126), (376, 250), (750, 500), (1500, 1000)]),
    (b"<html>no</html>", [(188, 126), (376, 250), (750, 500), (1500, 1000)]),
    # a JPEG header declaring 60000×60000 px: only the header is read, it matches nothing
    (_bomb_header(), [(188, 126), (376, 250), (750, 500), (1500, 1000)]),
])
def test_ambiguous_sizes_are_told_by_the_one_tile_level(tile, want) -> None:
    url = "http://x/v/ImageProperties.xml"
    pages = {url: VIPS_1500} | ({"http://x/v/TileGroup0/0-0-0.jpg": tile} if tile is not None else {})
    drv = Driver(pages)
    (image,) = drv.run(Z, url)
    assert [lv.size for lv in reversed(image.levels)] == want
    assert drv.requests == [url, "http://x/v/TileGroup0/0-0-0.jpg"]


def test_unambiguous_sizes_fetch_no_tile() -> None:
    url = "http://x/p/ImageProperties.xml"  # zoomify.js' rule (method 1) alone gives NUMTILES=16
    drv = Driver({url: b'<IMAGE_PROPERTIES WIDTH="1000" HEIGHT="700" NUMTILES="16" TILESIZE="256"/>'})
    (image,) = drv.run(Z, url)
    assert [lv.size for lv in image.levels] == [(1000, 700), (500, 350)]
    assert drv.requests == [url]


def test_iipimage_numtiles_of_the_full_level_only() -> None:
    # the IIPImage server (1.1) declares the full level's tiles only (24, not 33): every rule is a
    # candidate and the one-tile level's tile, 187×125 (its TIFF pyramid floors), tells which
    url = "http://x/iipsrv.fcgi?Zoomify=a.tif/ImageProperties.xml"
    props = b'<IMAGE_PROPERTIES WIDTH="1500" HEIGHT="1000" NUMTILES="24" NUMIMAGES="1" VERSION="1.8" TILESIZE="256" />'
    drv = Driver({url: props, "http://x/iipsrv.fcgi?Zoomify=a.tif/TileGroup0/0-0-0.jpg": _jpeg(187, 125)})
    (image,) = drv.run(Z, url)
    assert [lv.size for lv in image.levels] == [(1500, 1000), (750, 500), (375, 250), (187, 125)]
    assert image.levels[0].tile_url(5, 3) == "http://x/iipsrv.fcgi?Zoomify=a.tif/TileGroup0/3-5-3.jpg"
