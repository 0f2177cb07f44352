"""Google Arts & Culture: page scraping, signed URLs, tile decryption, and downloads replayed on loopback."""

from __future__ import annotations

import io
import pickle
import re
import struct
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image as PILImage

import dezoomify_nb as dz
from dezoomify_nb.cli import main
from dezoomify_nb.dezoomers.base import Context
from dezoomify_nb.dezoomers.google_arts import (
    GoogleArtsDezoomer,
    GoogleArtsLevel,
    PageInfo,
    decrypt_tile,
    parse_page,
    parse_tile_info,
    tile_url,
)
from dezoomify_nb.errors import MetadataError, NeedsData, WrongDezoomer
from dezoomify_nb.lazy.decode import decode_tile
from dezoomify_nb.resolve import resolve
from dezoomify_nb.testing.gap import GapSite, encrypt
from dezoomify_nb.testing.hosts import route_hosts

from .fmt_helpers import assert_jpeg_close, load

DATA = Path(__file__).resolve().parent.parent / "data" / "google_arts_and_culture"
FAST = {"min_interval": 0, "retry_delay": 0.01}
CLI_FAST = ["-i", "0ms", "--retry-delay", "10ms"]

TILE_INFO = b"""<?xml version="1.0" encoding="UTF-8"?>
<TileInfo tile_width="512" tile_height="512" full_pyramid_depth="5" origin="TOP_LEFT" timestamp="1564671682"
          tiler_version_number="2" image_width="5436" image_height="4080">
  <pyramid_level num_tiles_x="1" num_tiles_y="1" inverse_scale="16" empty_pels_x="173" empty_pels_y="257"/>
  <pyramid_level num_tiles_x="2" num_tiles_y="1" inverse_scale="8" empty_pels_x="345" empty_pels_y="2"/>
  <pyramid_level num_tiles_x="3" num_tiles_y="2" inverse_scale="4" empty_pels_x="177" empty_pels_y="4"/>
  <pyramid_level num_tiles_x="6" num_tiles_y="4" inverse_scale="2" empty_pels_x="354" empty_pels_y="8"/>
  <pyramid_level num_tiles_x="11" num_tiles_y="8" inverse_scale="1" empty_pels_x="196" empty_pels_y="16"/>
</TileInfo>
"""


# ----------------------------------------------------------------------------- signed URLs
@pytest.mark.parametrize(
    ("base_url", "token", "expected"),
    [
        ("https://lh3.googleusercontent.com/wGcDNN8L-2COcm9toX5BTp6HPxpMPPPuxrMU-ZL-W-nDHW8I_L4R5vlBJ6ITtlmONQ",
         "KwCgJ1QIfgprHn0a93x7Q-HhJ04", "HeJ3xylnSyyHPGwMZimI4EV3JP8"),
        ("https://lh5.ggpht.com/D0sqZ0sJbzoQeYFoySoXLJqgLMfXhi8-gGVGRqD_UEYUqkqk9Eqdxx5NNaw",
         "mcOPEQJmk1514hP_dJkpwVwIhPU", "BJ_NeDnzAKjz3ZbOzN_uFRRIbS0"),
    ],
)
def test_signed_tile_url_vectors(base_url, token, expected):
    assert tile_url(PageInfo(base_url, token, ""), 0, 0, 7) == f"{base_url}=x0-y0-z7-t{expected}"


def test_path_is_what_follows_the_host():
    assert PageInfo("https://lh3.googleusercontent.com/ci/AbC", "", "").path == "ci/AbC"


# ----------------------------------------------------------------------------- page scraping
@pytest.mark.parametrize(
    ("name", "base_url", "token"),
    [
        ("page_source.html", "https://lh5.ggpht.com/4AX4ua174encReZyEE7dTu0_RgBrBi79iqHamKQJtZnIBA5xqKBQib8DNvnq",
         "RQhR1krE-uvCYNXm5CmP6k2MuPY"),
        ("page_source_wildflower.html",
         "https://lh5.ggpht.com/D0sqZ0sJbzoQeYFoySoXLJqgLMfXhi8-gGVGRqD_UEYUqkqk9Eqdxx5NNaw",
         "mcOPEQJmk1514hP_dJkpwVwIhPU"),
        ("page_source_newformat.html",
         "https://lh6.ggpht.com/V4etPVsk7ooKgotTWex4Cat1uaXYEYV9yaan76p1PMZTikOxZvc6QRAArifFStw",
         "K7E6UJlQsaoENCVi1uyxnnkiB4s"),
        ("page_source_2021-06-30.html",
         "https://lh3.googleusercontent.com/uHsSuY7ZkqoUY5xOkiRO2THfT7i9yLT9TXjlxr4IufwA3eO33QvjWDmWkldtINkh",
         "7jSbhbZBiRhB4YLYrYIMQJQ6uxE"),
        ("page_source_null.html", "https://lh6.ggpht.com/lzVeTLZkOLzaRoI6WjNRYfNhu4I20a7L_Eko7DBb1iHR8YjzErIGRTmt6A", ""),
    ],
)
def test_captured_pages(name, base_url, token):
    info = parse_page((DATA / name).read_bytes())
    assert (info.base_url, info.token) == (base_url, token)
    assert info.tile_info_url == base_url + "=g"


@pytest.mark.parametrize(
    ("name", "title"),
    [
        ("page_source_2021-06-30.html", "Reiss, Winold; Langston Hughes; c. 1925"),  # header markup
        ("page_source_wildflower.html", "Wildflower painting of Red Grevillea - Ellis Rowan"),  # first "name"
        ("page_source_null.html", "Google Arts and Culture Image"),  # neither
    ],
)
def test_titles(name, title):
    assert parse_page((DATA / name).read_bytes()).name == title


def test_name_json_escapes_are_decoded():
    page = b'x = [1]\n,"//lh3.googleusercontent.com/ci/a","t",{"name":"Fish \\u0026 Chips"}'
    assert parse_page(page).name == "Fish & Chips"


def test_page_without_token_is_a_metadata_error_with_hint():
    with pytest.raises(MetadataError) as err:
        parse_page(b"<html>nothing here</html>")
    assert "artsandculture.google.com/asset" in err.value.hint


# ----------------------------------------------------------------------------- tile info
def test_tile_info_levels():
    page = PageInfo("https://lh3.googleusercontent.com/ci/AbC", "tok", "Title")
    levels = parse_tile_info(TILE_INFO, page)
    sizes = [(lv.width, lv.height) for lv in levels]
    assert sizes == [(339, 255), (679, 510), (1359, 1020), (2718, 2040), (5436, 4080)]
    assert [lv.z for lv in levels] == [0, 1, 2, 3, 4]
    assert all(lv.tile_size == (512, 512) for lv in levels)
    full = levels[-1]
    assert full.tile_url(10, 7) == tile_url(page, 10, 7, 4)
    assert full.headers == (("Referer", tile_url(page, 0, 0, 4)),)
    assert full.name == "Title"


def test_tile_info_garbage_is_a_metadata_error():
    page = PageInfo("https://lh3.googleusercontent.com/ci/AbC", "", "")
    with pytest.raises(MetadataError):
        parse_tile_info(b"<html/>", page)
    with pytest.raises(MetadataError):
        parse_tile_info(b'<TileInfo tile_width="512" tile_height="x"/>', page)


def test_dezoomer_rounds_and_detection():
    dz_ = GoogleArtsDezoomer()
    url = "https://artsandculture.google.com/asset/wildflower-painting-of-red-grevillea/wwEzEHEBAqxv4w"
    with pytest.raises(WrongDezoomer):
        dz_.images(Context("https://example.com/asset/x"))
    with pytest.raises(NeedsData) as need:
        dz_.images(Context(url))
    assert need.value.urls == (url,)
    page = (DATA / "page_source_wildflower.html").read_bytes()
    with pytest.raises(NeedsData) as need:
        dz_.images(Context(url, {url: page}))
    info_url = "https://lh5.ggpht.com/D0sqZ0sJbzoQeYFoySoXLJqgLMfXhi8-gGVGRqD_UEYUqkqk9Eqdxx5NNaw=g"
    assert need.value.urls == (info_url,)
    (image,) = dz_.images(Context(url, {url: page, info_url: TILE_INFO}))
    assert image.title == "Wildflower painting of Red Grevillea - Ellis Rowan"
    assert (image.levels[0].width, image.levels[0].height) == (5436, 4080)


def test_auto_detection_from_the_asset_url_offline():
    url = "https://artsandculture.google.com/asset/wildflower-painting-of-red-grevillea/wwEzEHEBAqxv4w"
    info_url = "https://lh5.ggpht.com/D0sqZ0sJbzoQeYFoySoXLJqgLMfXhi8-gGVGRqD_UEYUqkqk9Eqdxx5NNaw=g"
    pages = {url: (DATA / "page_source_wildflower.html").read_bytes(), info_url: TILE_INFO}
    (image,) = resolve(url, pages=pages)
    assert image.dezoomer == "google_arts_and_culture"


# ----------------------------------------------------------------------------- decryption
def test_decrypts_the_captured_tile():
    assert decrypt_tile((DATA / "tile_encrypted.bin").read_bytes()) == (DATA / "tile.jpg").read_bytes()


def test_synthetic_vector():
    encrypted = bytes([10, 10, 10, 10, 0xBA, 0xBA, 0xC0, 0xC0, 16, 0, 0, 0, *[1] * 16, 0xDE, 0xAD, 0xBE, 0xAF, 4, 0, 0, 0])
    expected = bytes.fromhex("babac0c0" "ca251118030ff9aff186bdccbce26a4c" "deadbeaf")
    assert decrypt_tile(encrypted) == expected


def test_unencrypted_bytes_pass_through():
    jpeg = (DATA / "tile.jpg").read_bytes()
    assert decrypt_tile(jpeg) == jpeg
    assert decrypt_tile(b"ab") == b"ab"


@pytest.mark.parametrize(
    "bad",
    [
        struct.pack("<I", 0x0A0A0A0A) + b"\0" * 8 + struct.pack("<I", 1000),  # header size past the end
        struct.pack("<I", 0x0A0A0A0A) + b"hh" + struct.pack("<I", 64) + b"\0" * 16 + struct.pack("<I", 2),  # enc size
        struct.pack("<I", 0x0A0A0A0A) + b"hh" + struct.pack("<I", 5) + b"\0" * 16 + struct.pack("<I", 2),  # not /16
    ],
)
def test_malformed_encrypted_tiles_are_errors(bad):
    with pytest.raises(MetadataError):
        decrypt_tile(bad)


def test_server_encryption_is_the_inverse():
    clear = (DATA / "tile.jpg").read_bytes()
    assert encrypt(clear) != clear
    assert decrypt_tile(encrypt(clear, header_size=181, encrypted_size=32)) == clear
    assert decrypt_tile(encrypt(clear, header_size=0, encrypted_size=4096)) == clear


def test_decode_tile_runs_the_postprocess_hook():
    clear = (DATA / "tile.jpg").read_bytes()
    with PILImage.open(io.BytesIO(clear)) as im:
        w, h = im.size
        expected = np.asarray(im.convert("RGB"))
    level = GoogleArtsLevel(w, h, w, h, base_url="https://lh3.googleusercontent.com/ci/a", token="t", z=0)
    got = decode_tile((DATA / "tile_encrypted.bin").read_bytes(), level, 0, 0, "RGB")
    np.testing.assert_array_equal(got, expected)
    assert pickle.loads(pickle.dumps(level)) == level


# ----------------------------------------------------------------------------- end to end (loopback)
@pytest.fixture(scope="module")
def site(_server, source):
    s = GapSite(source, tile_size=256)
    s.install(_server, "/gap-page-t", "/gap-lh3-t")
    return s


@pytest.fixture(scope="module")
def jpeg_site(_server, source):
    s = GapSite(source, tile_size=512, lossless=False, key="JpEg-Key", token="other")
    s.install(_server, "/gap-page-j", "/gap-lh3-j")
    return s


def test_download_every_level_pixel_exact(server, site):
    with route_hosts(server, site.hosts):
        img = dz.open(site.page_url, **FAST)
        assert img.dezoomer == "google_arts_and_culture"
        assert img.title == site.expected_title
        assert [(lv.width, lv.height) for lv in img.levels] == list(site.sizes)
        for k in range(len(img.levels)):
            np.testing.assert_array_equal(img.to_dask(level=k).compute(), site.level_image(k))
    tiles = [p for p in server.requests if re.search(r"=x\d+-y\d+-z\d+-t", p)]
    assert len(tiles) == sum(-(-w // 256) * -(-h // 256) for w, h in site.sizes)


def test_the_server_checks_signatures(server, site):
    base = server.base_url + "/gap-lh3-t/ci/" + site.key
    good = tile_url(PageInfo(site.base_url, site.token, ""), 0, 0, 2).split("=", 1)[1]
    assert httpx.get(f"{base}={good}").status_code == 200
    assert httpx.get(f"{base}=x0-y0-z2-tAAAA").status_code == 403


def test_cli_forced_dezoomer_and_jpeg_tiles(server, jpeg_site, capsys, tmp_path):
    out = tmp_path / "gap.png"
    with route_hosts(server, jpeg_site.hosts):
        code = main([*CLI_FAST, "--dezoomer", "google_arts_and_culture", "--largest", jpeg_site.page_url, str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert_jpeg_close(load(out), jpeg_site.level_image(0))


@pytest.mark.network
def test_live_asset_page():
    img = dz.open("https://artsandculture.google.com/asset/wildflower-painting-of-red-grevillea/wwEzEHEBAqxv4w")
    assert img.dezoomer == "google_arts_and_culture"
    smallest = img.levels[-1]
    arr = img.to_dask(level=len(img.levels) - 1).compute()
    assert arr.shape[:2] == (smallest.height, smallest.width) and arr.std() > 0


def test_default_file_name_comes_from_the_title(server, site, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with route_hosts(server, site.hosts):
        code = main([*CLI_FAST, "--zoom-level", "2", site.page_url])
    err = capsys.readouterr().err
    assert code == 0, err
    (written,) = list(tmp_path.iterdir())
    assert written.stem.startswith("Lovelace, Ada Byron")
    with PILImage.open(written) as im:
        assert im.size == site.sizes[2]
