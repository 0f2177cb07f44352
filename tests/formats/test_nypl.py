"""NYPL Digital Collections: config.js parsing, id extraction, and downloads replayed on loopback."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

import dezoomify_nb as dz
from dezoomify_nb.cli import main
from dezoomify_nb.dezoomers.base import Context
from dezoomify_nb.dezoomers.nypl import NYPLDezoomer, config_url, image_id, parse_config
from dezoomify_nb.errors import FetchError, MetadataError, NeedsData, WrongDezoomer
from dezoomify_nb.net import NetConfig
from dezoomify_nb.net.fetch import fetch_sync
from dezoomify_nb.resolve import resolve
from dezoomify_nb.testing.hosts import route_hosts
from dezoomify_nb.testing.nypl import NyplSite

from .fmt_helpers import assert_jpeg_close, load

FAST = {"min_interval": 0, "retry_delay": 0.01}
CLI_FAST = ["-i", "0ms", "--retry-delay", "10ms"]
ID = "a28d6e6b-b317-f008-e040-e00a1806635d"


def rotation(w: str, h: str) -> dict:
    return {"size": {"width": w, "height": h}, "tilesize": "256", "overlap": "2", "format": "png"}


#: the 4-rotation example of dezoomify-rs, numbers as strings
CONFIG = json.dumps({"configs": {"0": rotation("2422", "3000"), "90": rotation("3000", "2422"),
                                 "180": rotation("2422", "3000"), "270": rotation("3000", "2422")}}).encode()


def test_four_rotation_config():
    levels = parse_config(CONFIG, ID)
    full = levels[-1]
    assert (full.width, full.height, full.tile_width, full.overlap) == (2422, 3000, 256, 2)
    assert full.level == 12  # bit length of 3000
    assert full.tile_url(0, 0) == f"https://access.nypl.org/image.php/{ID}/tiles/0/12/0_0.png"
    # level 0 would be 0x0: dropped; level l is (W, H) >> (12 - l), floor
    assert [(lv.level, lv.width, lv.height) for lv in levels[:3]] == [(1, 1, 1), (2, 2, 2), (3, 4, 5)]
    assert (levels[-2].width, levels[-2].height) == (1211, 1500)
    assert full.headers == (("Referer", full.tile_url(0, 0)),)
    assert pickle.loads(pickle.dumps(full)) == full


def test_numbers_and_tile_size_alias():
    cfg = {"configs": {"0": {"size": {"width": 300, "height": 200}, "tile_size": 128, "format": "jpg"}}}
    full = parse_config(json.dumps(cfg).encode(), "x")[-1]
    assert (full.width, full.height, full.tile_width, full.overlap, full.format) == (300, 200, 128, 0, "jpg")


def test_id_extraction():
    assert image_id("https://digitalcollections.nypl.org/items/a14f3200-fac1-012f-f7a4-58d385a7bbd0#item-data") == (
        "a14f3200-fac1-012f-f7a4-58d385a7bbd0"
    )
    assert image_id(config_url(ID)) == ID
    with pytest.raises(WrongDezoomer):
        image_id("https://example.com/items/abc")
    with pytest.raises(MetadataError):
        image_id("https://digitalcollections.nypl.org/items/not-an-id")


@pytest.mark.parametrize("body", [b"", b"  ", b'{"configs": {"90": {}}}', b"{}", b"[1]"])
def test_untiled_images_say_so(body):
    with pytest.raises(MetadataError, match="probably not tiled"):
        parse_config(body, ID)


@pytest.mark.parametrize(
    "cfg",
    [
        {"configs": {"0": {"size": {"width": "x", "height": "1"}, "tilesize": "256", "format": "png"}}},
        {"configs": {"0": {"size": {"width": "10", "height": "10"}, "tilesize": "256", "format": "p/ng"}}},
        {"configs": {"0": {"size": {"width": "10", "height": "10"}, "tilesize": "0", "format": "png"}}},
        {"configs": {"0": {"size": {"width": "99999999999", "height": "10"}, "tilesize": "256", "format": "png"}}},
    ],
)
def test_broken_config_is_a_metadata_error(cfg):
    with pytest.raises(MetadataError):
        parse_config(json.dumps(cfg).encode(), ID)


def test_invalid_json():
    with pytest.raises(MetadataError):
        parse_config(b"<html>", ID)


def test_dezoomer_round_and_auto_detection_offline():
    item = f"https://digitalcollections.nypl.org/items/{ID}"
    with pytest.raises(NeedsData) as need:
        NYPLDezoomer().images(Context(item))
    assert need.value.urls == (config_url(ID),)
    with pytest.raises(WrongDezoomer):
        NYPLDezoomer().images(Context("https://example.com/image.dzi"))
    pages: dict = {config_url(ID): CONFIG}
    (image,) = resolve(item, dezoomer="nypl", pages=pages)
    assert image.dezoomer == "nypl" and image.levels[0].name == "NYPL Image"


# ----------------------------------------------------------------------------- end to end (loopback)
@pytest.fixture(scope="module")
def site(_server, source):
    s = NyplSite(source, tile_size=256, overlap=2)
    s.install(_server, "/nypl-items-t", "/nypl-access-t")
    return s


def test_auto_detects_the_item_url_and_downloads_pixel_exact(server, site):
    with route_hosts(server, site.hosts):
        img = dz.open(site.item_url, **FAST)
        assert img.dezoomer == "nypl"
        assert (img.width, img.height) == (1000, 700)
        for k in (0, 1, 2, len(img.levels) - 1):
            np.testing.assert_array_equal(img.to_dask(level=k).compute(), site.level_image(k))
    assert any(p.endswith("/tiles/config.js") for p in server.requests)


def test_cli_forced_dezoomer(server, _server, source, capsys, tmp_path):
    jpeg = NyplSite(source, tile_size=200, overlap=1, lossless=False, image_id="b1c2d3e4-0000-1111-2222-333344445555")
    jpeg.install(_server, "/nypl-items-j", "/nypl-access-j")
    out = tmp_path / "nypl.png"
    with route_hosts(server, jpeg.hosts):
        code = main([*CLI_FAST, "--dezoomer", "nypl", "--largest", jpeg.item_url, str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert_jpeg_close(load(out), jpeg.level_image(0))
    assert any(p.endswith(".jpg") and "/tiles/0/10/" in p for p in server.requests)


def test_replay_never_reaches_unmapped_hosts(server, site):
    with route_hosts(server, site.hosts):
        with pytest.raises(FetchError, match="not mapped"):
            fetch_sync("https://example.org/", NetConfig(retries=0))
        assert fetch_sync(site.config_url, NetConfig(retries=0)).startswith(b"{")


@pytest.mark.network
def test_live_item():
    img = dz.open("https://digitalcollections.nypl.org/items/a14f3200-fac1-012f-f7a4-58d385a7bbd0")
    assert img.dezoomer == "nypl"
    arr = img.to_dask(level=len(img.levels) - 1).compute()
    assert arr.shape[:2] == (img.levels[-1].height, img.levels[-1].width)
