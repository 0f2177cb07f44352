"""IIPImage: metadata URL rewriting, OBJ reply parsing, JTL tile URLs, and end to end against iip.py."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import dezoomify_nb as dz
from dezoomify_nb.cli import main
from dezoomify_nb.dezoomers.base import Context
from dezoomify_nb.dezoomers.iipimage import (
    IIPImageDezoomer,
    IIPLevel,
    build_levels,
    metadata_url,
    parse_metadata,
)
from dezoomify_nb.errors import MetadataError, NeedsData, WrongDezoomer
from dezoomify_nb.testing import TileServer, make_test_image
from dezoomify_nb.testing.iip import iip_level_image, iip_sizes, install_iip

from .fmt_helpers import FAST, Driver, load, read, serve_dict, urls

D = IIPImageDezoomer()
SUFFIX = "&OBJ=Max-size&OBJ=Tile-size&OBJ=Resolution-number"


def test_lowercase_fif_tile_url_is_rewritten() -> None:
    uri = ("https://publications-images.artic.edu/fcgi-bin/iipsrv.fcgi?"
           "fif=osci/Renoir_11/Color_Corrected/G39094sm2.ptif&jtl=4,11")
    with pytest.raises(NeedsData) as info:
        D.images(Context(uri))
    assert info.value.urls == (
        "https://publications-images.artic.edu/fcgi-bin/iipsrv.fcgi?"
        "fif=osci/Renoir_11/Color_Corrected/G39094sm2.ptif" + SUFFIX,
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://h/iipsrv.fcgi?FIF=a/b.tif", "http://h/iipsrv.fcgi?FIF=a/b.tif" + SUFFIX),
        ("http://h/iipsrv.fcgi?FIF=a/b.tif&WID=800&CVT=jpeg", "http://h/iipsrv.fcgi?FIF=a/b.tif" + SUFFIX),
        # better than dezoomify-rs: FIF need not come first
        ("http://h/iipsrv.fcgi?WID=800&FIF=a/b.tif&CVT=jpeg", "http://h/iipsrv.fcgi?FIF=a/b.tif" + SUFFIX),
        ("http://h/iipsrv.fcgi?FIF=x.tif" + SUFFIX, "http://h/iipsrv.fcgi?FIF=x.tif" + SUFFIX),
    ],
)
def test_metadata_url(url: str, expected: str) -> None:
    assert metadata_url(url) == expected


@pytest.mark.parametrize("url", ["http://h/image.dzi", "http://h/x?QFIF=1", "http://h/FIF=a.tif", "tiles.yaml"])
def test_not_iip(url: str) -> None:
    with pytest.raises(WrongDezoomer):
        D.images(Context(url))


def test_parse_512_two_resolutions() -> None:
    levels = build_levels("http://test.com/" + SUFFIX, read("iipimage/metadata_512.txt"))
    assert [(lv.size, lv.tile_size, lv.resolution) for lv in levels] == [
        ((256, 256), (256, 256), 0), ((512, 512), (256, 256), 1)]
    assert levels[0].tile_url(0, 0) == "http://test.com/&JTL=0,0"
    assert levels[1].tile_url(0, 1) == "http://test.com/&JTL=1,2"
    assert levels[1].headers == (("Referer", "http://test.com/&JTL=1,0"),)


def test_parse_iipsrv_reply_with_crlf_and_iip_line() -> None:
    assert parse_metadata(read("iipimage/artic_G39094sm2.txt")) == (23235, 23968, 256, 256, 9)
    base = "https://publications-images.artic.edu/fcgi-bin/iipsrv.fcgi?fif=osci/G39094sm2.ptif"
    (image,) = Driver(serve_dict({base + SUFFIX: read("iipimage/artic_G39094sm2.txt")})).run(D, base + "&jtl=4,11")
    sizes = [lv.size for lv in image.levels]
    assert sizes[0] == (23235, 23968) and sizes[-1] == (23235 >> 8, 23968 >> 8) and len(sizes) == 9
    full = image.levels[0]
    assert isinstance(full, IIPLevel) and full.resolution == 8
    assert urls(full)[full.cols + 1] == base + f"&JTL=8,{full.cols + 1}"
    assert image.dezoomer == "IIPImage" and pickle.loads(pickle.dumps(image)) == image


@pytest.mark.parametrize(
    ("reply", "match"),
    [
        (read("iipimage/missing_tile_size.txt"), "Tile-size"),
        (read("iipimage/error_reply.txt"), "Max-size"),
        (b"Max-size:0 10\nTile-size:256 256\nResolution-number:3", "Max-size"),
        (b"Max-size:10 10\nTile-size:256 256\nResolution-number:9999", "Resolution-number"),
        (b"Max-size:10 10\nTile-size:99999999 1\nResolution-number:1", "Tile-size"),
        (b"\xff\xfe", "invalid"),
    ],
)
def test_bad_metadata(reply: bytes, match: str) -> None:
    with pytest.raises(MetadataError, match=match):
        build_levels("http://h/x?FIF=a" + SUFFIX, reply)


def test_resolutions_that_would_be_empty_are_dropped() -> None:
    levels = build_levels("http://h/x?FIF=a" + SUFFIX, b"Max-size:300 3\nTile-size:256 256\nResolution-number:4")
    assert [(lv.size, lv.resolution) for lv in levels] == [((150, 1), 2), ((300, 3), 3)]


def test_server_sizes_floor_like_iipsrv() -> None:
    assert iip_sizes(1000, 700, 256) == [(1000, 700), (500, 350), (250, 175)]
    assert iip_sizes(1001, 3, 256) == [(1001, 3), (500, 1)]


# --- end to end ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def iip():
    """A lossless loopback server (PNG bytes for JTL) with an IIP route; odd size for floor rounding."""
    with TileServer(make_test_image(1001, 703, seed=5), lossless=True) as server:
        url = install_iip(server, "images/painting.tif")
        yield server, url


def test_auto_detects_and_downloads_every_level(iip, tmp_path) -> None:
    server, url = iip
    img = dz.open(url + "&CVT=jpeg", **FAST)
    assert img.dezoomer == "IIPImage"
    assert [(lv.width, lv.height) for lv in img.levels] == [(1001, 703), (500, 351), (250, 175)]
    for k in range(3):
        out = img.save(tmp_path / f"l{k}.png", level=k, progress=False).path
        np.testing.assert_array_equal(load(out), iip_level_image(server, k))
    tiles = sorted({p.split("JTL=")[1] for p in server.requests if "JTL=" in p})
    expected = [f"2,{i}" for i in range(12)] + [f"1,{i}" for i in range(4)] + ["0,0"]
    assert tiles == sorted(expected)


def test_lazy_window_and_forced_dezoomer(iip) -> None:
    server, url = iip
    img = dz.open(url, dezoomer="iipimage", **FAST)  # names are matched ignoring case
    server.reset_requests()
    crop = img.to_dask()[300:320, 600:620].compute()
    np.testing.assert_array_equal(crop, iip_level_image(server, 0)[300:320, 600:620])
    assert [p for p in server.requests if "JTL=" in p] == [
        "/fcgi-bin/iipsrv.fcgi?FIF=images/painting.tif&JTL=2,6"]  # row 1 × 4 cols + col 2


def test_cli_forced_iipimage(iip, capsys, tmp_path) -> None:
    server, url = iip
    code = main(["-i", "0ms", "--dezoomer", "IIPImage", "--zoom-level", "1", url, str(tmp_path / "o.png")])
    err = capsys.readouterr().err
    assert code == 0, err
    np.testing.assert_array_equal(load(tmp_path / "o.png"), iip_level_image(server, 1))


def test_jpeg_tiles_from_a_real_like_server(tmp_path) -> None:
    source = make_test_image(600, 300, seed=9)
    with TileServer(source) as server:
        url = install_iip(server)
        img = dz.open(url, dezoomer="IIPImage", **FAST)
        img.save(tmp_path / "j.png", progress=False)
        got = load(tmp_path / "j.png").astype(np.int16)
        err = np.abs(got - source.astype(np.int16))
        assert got.shape == (300, 600, 3) and err.mean() < 6


def test_unknown_image_is_a_clear_error(iip) -> None:
    server, _ = iip
    with pytest.raises(dz.DezoomifyError):
        dz.open(f"{server.base_url}/fcgi-bin/iipsrv.fcgi?FIF=nope.tif", dezoomer="IIPImage", retries=0, **FAST)
