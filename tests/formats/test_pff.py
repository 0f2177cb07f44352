"""Zoomify PFF: header and index replies, tile numbering, and downloads from a loopback servlet."""

from __future__ import annotations

import pickle
import struct
from urllib.parse import parse_qs, urlsplit

import httpx
import numpy as np
import pytest

import dezoomify_nb as dz
from dezoomify_nb.cli import main
from dezoomify_nb.dezoomers.base import Context
from dezoomify_nb.dezoomers.pff import (
    PffDezoomer,
    build_levels,
    indices_url,
    level_sizes,
    parse_header,
    parse_indices,
    reply_data,
    split_servlet_url,
)
from dezoomify_nb.errors import MetadataError, NeedsData, WrongDezoomer
from dezoomify_nb.testing.pff import HEADER_OVERHEAD, PffSite

from .fmt_helpers import assert_jpeg_close, load

FAST = {"min_interval": 0, "retry_delay": 0.01}
CLI_FAST = ["-i", "0ms", "--retry-delay", "10ms"]

HEADER_REPLY = b"""Error=0&newSize=126&reply_data=<PFFHEADER
    WIDTH="38843" HEIGHT="6700"
    NUMTILES="5541"
    NUMIMAGES="1"
    HEADERSIZE="15331"
    VERSION="106"
    ZA="0"
    TILESIZE="256"
/>"""


def test_header_reply_and_index_url():
    header = parse_header(reply_data(HEADER_REPLY, "header"))
    assert (header.width, header.height, header.tile_size) == (38843, 6700, 256)
    assert (header.num_tiles, header.header_size, header.version) == (5541, 15331, 106)
    assert indices_url("http://x.com/", "x", header) == (
        "http://x.com/?file=x&vers=106&head=15331&begin=16391&end=60719&requestType=2"
    )


@pytest.mark.parametrize(("text", "expected"), [("10, 1 2 3", (11, 12, 13)), ("10,        0       20", (10, 30))])
def test_index_parsing(text, expected):
    assert parse_indices(text) == expected


@pytest.mark.parametrize("text", ["10", "x, 1 2", "10, 1 y"])
def test_bad_index_strings(text):
    with pytest.raises(MetadataError):
        parse_indices(text)


def test_index_reply():
    assert parse_indices(reply_data(b"Error=0&newSize=126&reply_data=1,  0  1  2", "index")) == (1, 2, 3)
    with pytest.raises(MetadataError, match="Error=3"):
        reply_data(b"Error=3&newSize=0", "index")


def test_levels_are_largest_first_and_numbered_in_that_order():
    header = parse_header(reply_data(HEADER_REPLY, "header"))
    sizes = level_sizes(header)
    assert sizes[:3] == [(38843, 6700), (19422, 3350), (9711, 1675)]
    assert all(w >= 256 and h >= 256 for w, h in sizes) and sizes[-1] == (2428, 419)
    ends = tuple(range(1, 10_000))
    levels = build_levels("http://x.com/s", "f.pff", header, ends)
    assert [lv.tiles_before for lv in levels[:3]] == [0, 152 * 27, 152 * 27 + 76 * 14]
    first = parse_qs(urlsplit(levels[0].tile_url(0, 0)).query)
    assert first["begin"] == [str(HEADER_OVERHEAD + 15331 + 8 * 5541)] and first["end"] == ["1"]
    assert first["requestType"] == ["0"] and first["file"] == ["f.pff"]
    # tile (1, 1) of the second level: number 152*27 + 1 + 76
    q = parse_qs(urlsplit(levels[1].tile_url(1, 1)).query)
    n = 152 * 27 + 77
    assert (q["begin"], q["end"]) == ([str(ends[n - 1])], [str(ends[n])])
    assert pickle.loads(pickle.dumps(levels[1])) == levels[1]


def test_too_short_index_drops_uncovered_levels():
    header = parse_header('<PFFHEADER WIDTH="600" HEIGHT="600" TILESIZE="256" NUMTILES="13" HEADERSIZE="0"/>')
    assert len(build_levels("b", "f", header, tuple(range(1, 14)))) == 2  # 9 + 4 tiles
    assert len(build_levels("b", "f", header, tuple(range(1, 12)))) == 1
    with pytest.raises(MetadataError):
        build_levels("b", "f", header, (1, 2))


@pytest.mark.parametrize(
    "xml",
    ['<PFFHEADER WIDTH="0" HEIGHT="10" TILESIZE="256"/>', '<PFFHEADER WIDTH="10" HEIGHT="10" TILESIZE="-1"/>',
     "<OTHER/>", "not xml", '<PFFHEADER WIDTH="10" HEIGHT="10" TILESIZE="256" NUMTILES="999999999999"/>'],
)
def test_bad_headers(xml):
    with pytest.raises(MetadataError):
        parse_header(xml)


@pytest.mark.parametrize(
    "url", ["https://h/x.pff", "https://h/servlet?file=x.pff", "https://h/servlet?requestType=1", "https://h/s?file=a&requestType=z"]
)
def test_not_a_servlet_url(url):
    with pytest.raises(WrongDezoomer):
        split_servlet_url(url)


def test_rounds_from_a_tile_url():
    url = "https://h/zoomify/servlet?file=/img/a%20b.pff&vers=106&head=5&begin=1&end=2&requestType=0"
    with pytest.raises(NeedsData) as need:
        PffDezoomer().images(Context(url))
    assert need.value.urls == ("https://h/zoomify/servlet?file=/img/a%20b.pff&requestType=1",)
    pages = {need.value.urls[0]: HEADER_REPLY}
    with pytest.raises(NeedsData) as need:
        PffDezoomer().images(Context(url, pages))
    assert need.value.urls == (
        "https://h/zoomify/servlet?file=%2Fimg%2Fa+b.pff&vers=106&head=15331&begin=16391&end=60719&requestType=2",
    )


# ----------------------------------------------------------------------------- end to end (loopback)
@pytest.fixture(scope="module")
def site(_server, source):
    s = PffSite(source, tile_size=256)
    s.url = s.install(_server, "/pff-t")
    return s


def test_the_emulated_file_follows_the_documented_layout(site):
    data = site.data
    assert struct.unpack_from(">I", data, 0x8)[0] == 106
    assert struct.unpack_from(">II", data, 0x41C) == (1000, 700)
    n = struct.unpack_from(">I", data, 0x7C)[0]
    assert n == 12 + 4  # 4x3 tiles at 1000x700, 2x2 at 500x350 (250x175 is under one tile)
    table = HEADER_OVERHEAD + struct.unpack_from(">I", data, 0x74)[0]
    last_end = struct.unpack_from(">Q", data, table + 8 * (n - 1))[0]
    assert last_end == len(data)


def test_auto_detection_and_pixel_exact_download(server, site):
    img = dz.open(site.url, **FAST)
    assert img.dezoomer == "pff"
    assert [(lv.width, lv.height) for lv in img.levels] == list(site.sizes)
    for k in range(len(img.levels)):
        np.testing.assert_array_equal(img.to_dask(level=k).compute(), site.level_image(k))
    tiles = [p for p in server.requests if "requestType=0" in p]
    assert len(tiles) == 16


def test_tile_url_input_and_servlet_checks(server, site):
    img = dz.open(site.url, **FAST)
    tile = img.levels[1].tile_url(1, 1)
    assert httpx.get(tile).status_code == 200
    assert httpx.get(tile.replace("requestType=0", "requestType=0&x=1").replace("&end=", "&end=1")).status_code == 400
    again = dz.open(tile, dezoomer="pff", **FAST)  # a tile URL leads back to the header
    np.testing.assert_array_equal(again.to_dask(level=1).compute(), site.level_image(1))


def test_cli_forced_dezoomer_jpeg(server, _server, source, capsys, tmp_path):
    jpeg = PffSite(source, tile_size=300, lossless=False, file="/other.pff")
    url = jpeg.install(_server, "/pff-j")
    out = tmp_path / "pff.png"
    code = main([*CLI_FAST, "--dezoomer", "pff", "--largest", url, str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert_jpeg_close(load(out), jpeg.level_image(0))
