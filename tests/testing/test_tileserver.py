"""Tests of the loopback tile server itself (dezoomify_nb.testing).

Expected values are computed here from the format descriptions, not by calling the
server's own geometry helpers, except where a test is explicitly about a helper.
"""

from __future__ import annotations

import io
import math
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from PIL import Image

from dezoomify_nb.testing import KINDS, TileServer, make_test_image

W, H, TS = 1000, 700, 256


def decode(resp: httpx.Response) -> np.ndarray:
    assert resp.status_code == 200, (resp.status_code, resp.text[:200])
    with Image.open(io.BytesIO(resp.content)) as im:
        im.load()
        arr = np.asarray(im)
    return arr[:, :, None] if arr.ndim == 2 else arr


def box_resize(arr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(Image.fromarray(arr).resize(size, Image.Resampling.BOX))


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return make_test_image(W, H, seed=1)


@pytest.fixture(scope="module")
def server(image):
    with TileServer(image, tile_size=TS) as srv:
        yield srv


@pytest.fixture
def client():
    with httpx.Client(timeout=10) as c:
        yield c


@pytest.fixture
def fresh(image):
    """A server whose accounting and faults no other test touches."""
    with TileServer(image, tile_size=TS) as srv:
        yield srv


# --------------------------------------------------------------------------- images


def test_make_test_image_deterministic_and_shaped():
    a = make_test_image(300, 200, seed=5)
    assert a.dtype == np.uint8 and a.shape == (200, 300, 3)
    assert np.array_equal(a, make_test_image(300, 200, seed=5))
    assert not np.array_equal(a, make_test_image(300, 200, seed=6))
    assert make_test_image(30, 20, channels=1).shape == (20, 30, 1)
    rgba = make_test_image(30, 20, channels=4)
    assert rgba.shape == (20, 30, 4) and rgba[..., 3].min() >= 100
    assert make_test_image(1, 1).shape == (1, 1, 3)
    with pytest.raises(ValueError):
        make_test_image(10, 10, channels=2)


def test_make_test_image_detects_shifts_flips_and_compresses():
    img = make_test_image(W, H, seed=0).astype(np.int16)
    tile = img[256:512, 256:512]
    for dy, dx in [(0, 1), (1, 0), (0, 256), (256, 0), (3, -2)]:
        assert not np.array_equal(tile, img[256 + dy : 512 + dy, 256 + dx : 512 + dx])
    assert not np.array_equal(tile, tile[::-1]) and not np.array_equal(tile, tile[:, ::-1])
    buf = io.BytesIO()
    Image.fromarray(img.astype(np.uint8)).save(buf, "JPEG", quality=90)
    with Image.open(buf) as im:
        err = np.abs(np.asarray(im).astype(np.int16) - img).mean()
    assert err < 5


# --------------------------------------------------------------------------- levels


def test_level_images(server, image):
    for kind in KINDS:
        assert np.array_equal(server.level_image(kind, 0), image)
    assert server.level_sizes("dzi-png")[:4] == [(1000, 700), (500, 350), (250, 175), (125, 88)]
    assert server.level_sizes("dzi-png")[-1] == (1, 1) and len(server.level_sizes("dzi-png")) == 11
    assert server.level_sizes("iiif2") == [(1000, 700), (500, 350), (250, 175)]
    assert server.level_sizes("iiif3") == [(1000, 700), (500, 350)]
    assert server.level_sizes("zoomify") == [(1000, 700), (500, 350)]  # zoomify.js: one-tile level left out
    assert server.level_sizes("zoomify-even") == [(1000, 700), (500, 350), (250, 176)]
    assert np.array_equal(server.level_image("iiif2", 2), box_resize(image, (250, 175)))
    assert np.array_equal(server.level_image("zoomify-even", 2), box_resize(image, (250, 176)))
    with pytest.raises(IndexError):
        server.level_image("iiif3", 2)
    with pytest.raises(ValueError):
        server.url("nope")


# --------------------------------------------------------------------------- zoomify


def zoomify_js_levels(w: int, h: int, ts: int) -> list[tuple[int, int]]:
    fw, fh, out = float(w), float(h), []
    while fw > ts or fh > ts:
        out.append((int(fw), int(fh)))
        fw, fh = fw / 2, fh / 2
    return out


def test_zoomify_metadata_and_tiles(server, client, image):
    r = client.get(server.url("zoomify"))
    assert r.url.path == "/zoomify/ImageProperties.xml"
    props = ET.fromstring(r.text)
    assert props.tag == "IMAGE_PROPERTIES"
    assert (int(props.get("WIDTH")), int(props.get("HEIGHT")), int(props.get("TILESIZE"))) == (W, H, TS)
    levels = zoomify_js_levels(W, H, TS)
    assert int(props.get("NUMTILES")) == sum(math.ceil(w / TS) * math.ceil(h / TS) for w, h in levels)
    base = server.base_url + "/zoomify"
    # z counts from the smallest level: z=0 is 500x350 (2x2 tiles), z=1 the full image
    a = decode(client.get(f"{base}/TileGroup0/1-3-2.jpg"))
    assert a.shape == (188, 232, 3)
    assert np.abs(a.astype(int) - image[512:, 768:]).mean() < 5
    assert decode(client.get(f"{base}/TileGroup0/0-1-1.jpg")).shape == (350 - 256, 500 - 256, 3)
    assert client.get(f"{base}/TileGroup0/1-4-0.jpg").status_code == 404
    assert client.get(f"{base}/TileGroup0/2-0-0.jpg").status_code == 404
    assert client.get(f"{base}/TileGroup1/1-0-0.jpg").status_code == 404  # wrong group
    assert client.get(f"{base}/TileGroup0/1-0-0.png").status_code == 404


def test_zoomify_tile_groups_and_even_method(client):
    # 4000x2559 with the Zoomify converter's level sizes has NUMTILES=217 (real file).
    img = make_test_image(4000, 2559, channels=1)
    with TileServer(img, tile_size=256) as srv:
        props = ET.fromstring(client.get(srv.url("zoomify-even")).text)
        assert props.get("NUMTILES") == "217"
        props1 = ET.fromstring(client.get(srv.url("zoomify")).text)
        assert props1.get("NUMTILES") == "216"
        # zoomify-even levels, smallest first: 250x160 (1), 500x320 (4), 1000x640 (12),
        # 2000x1280 (40), 4000x2559 (16x10): tiles_before(z=4) = 57, so (15, 9) is tile 216 -> group 0
        base = srv.base_url + "/zoomify-even"
        assert client.get(f"{base}/TileGroup0/4-15-9.jpg").status_code == 200
        assert client.get(f"{base}/TileGroup0/4-0-10.jpg").status_code == 404  # 10 rows only
        tile = decode(client.get(f"{base}/TileGroup0/4-0-9.jpg"))
        assert tile.shape == (2559 - 9 * 256, 256, 1)
        assert decode(client.get(f"{base}/TileGroup0/0-0-0.jpg")).shape == (160, 250, 1)
        # zoomify (zoomify.js) levels: 500x319 (4), 1000x639 (12), 2000x1279 (40), 4000x2559 (160)
        # tile (15, 9) of z=3: 56 + 15 + 9*16 = 215 -> group 0
        assert srv.tile_url("zoomify", 0, 15, 9).endswith("/zoomify/TileGroup0/3-15-9.jpg")
        assert srv.level_sizes("zoomify") == [(4000, 2559), (2000, 1279), (1000, 639), (500, 319)]
    with TileServer(make_test_image(300, 300, channels=1), tile_size=16) as srv:
        # many tiles: group boundaries inside one level, checked against the formula
        levels = zoomify_js_levels(300, 300, 16)[::-1]
        before = sum(math.ceil(w / 16) * math.ceil(h / 16) for w, h in levels[:-1])
        cols = math.ceil(300 / 16)
        z = len(levels) - 1
        for x, y in [(0, 0), (5, 3), (18, 18), (10, 12)]:
            g = (before + x + y * cols) // 256
            assert client.get(f"{srv.base_url}/zoomify/TileGroup{g}/{z}-{x}-{y}.jpg").status_code == 200
            assert client.get(f"{srv.base_url}/zoomify/TileGroup{g + 1}/{z}-{x}-{y}.jpg").status_code == 404


def test_zoomify_tiny_image_single_level(client):
    with TileServer(make_test_image(100, 80), tile_size=256) as srv:
        props = ET.fromstring(client.get(srv.url("zoomify")).text)
        assert props.get("NUMTILES") == "1"
        assert decode(client.get(srv.base_url + "/zoomify/TileGroup0/0-0-0.jpg")).shape == (80, 100, 3)


# --------------------------------------------------------------------------- deep zoom


def test_dzi_png_metadata_and_overlap_tiles(server, client):
    r = client.get(server.url("dzi-png"))
    root = ET.fromstring(r.content)
    ns = "{http://schemas.microsoft.com/deepzoom/2009}"
    assert root.tag == ns + "Image"
    assert (root.get("Format"), root.get("Overlap"), root.get("TileSize")) == ("png", "1", "254")
    size = root.find(ns + "Size")
    assert (size.get("Width"), size.get("Height")) == ("1000", "700")
    max_level = math.ceil(math.log2(max(W, H)))  # 10
    base = server.base_url + "/dzi-png/image_files"
    full = server.level_image("dzi-png", 0)
    # corner, interior and edge tiles; overlap on every side that touches a neighbour
    cases = {(0, 0): (0, 0, 255, 255), (1, 1): (253, 253, 509, 509), (3, 2): (761, 507, 1000, 700)}
    for (c, r_), (x0, y0, x1, y1) in cases.items():
        tile = decode(client.get(f"{base}/{max_level}/{c}_{r_}.png"))
        assert tile.shape == (y1 - y0, x1 - x0, 3)
        assert np.array_equal(tile, full[y0:y1, x0:x1])
    half = server.level_image("dzi-png", 1)
    tile = decode(client.get(f"{base}/{max_level - 1}/1_1.png"))
    assert tile.shape == (350 - 253, 500 - 253, 3) and np.array_equal(tile, half[253:, 253:])
    assert decode(client.get(f"{base}/0/0_0.png")).shape == (1, 1, 3)
    for bad in [
        f"{max_level}/4_0.png",
        f"{max_level}/0_3.png",
        f"{max_level + 1}/0_0.png",
        f"{max_level}/0_0.jpg",
    ]:
        assert client.get(f"{base}/{bad}").status_code == 404


def test_dzi_jpg(server, client, image):
    root = ET.fromstring(client.get(server.url("dzi-jpg")).content)
    assert root.tag == "{http://schemas.microsoft.com/deepzoom/2008}Image"
    assert (root.get("Format"), root.get("Overlap"), root.get("TileSize")) == ("jpg", "0", "256")
    r = client.get(server.base_url + "/dzi-jpg/image_files/10/3_2.jpg")
    assert r.headers["content-type"] == "image/jpeg"
    tile = decode(r)
    assert tile.shape == (188, 232, 3)
    assert np.abs(tile.astype(int) - image[512:, 768:]).mean() < 5


# --------------------------------------------------------------------------- IIIF


def test_iiif2_info(server, client):
    info = client.get(server.url("iiif2")).json()
    assert info["@context"] == "http://iiif.io/api/image/2/context.json"
    assert info["@id"] == server.base_url + "/iiif2"
    assert (info["width"], info["height"]) == (W, H)
    assert info["tiles"] == [{"width": 256, "height": 256, "scaleFactors": [1, 2, 4]}]
    assert info["profile"][0] == "http://iiif.io/api/image/2/level2.json"
    assert set(info["profile"][1]["formats"]) == {"jpg", "png"}
    notiles = client.get(server.url("iiif2-notiles")).json()
    assert "tiles" not in notiles and {"width": 1000, "height": 700} in notiles["sizes"]
    assert notiles["@id"] == server.base_url + "/iiif2-notiles"
    redirect = client.get(server.base_url + "/iiif2")
    assert redirect.status_code == 303 and redirect.headers["location"].endswith("/iiif2/info.json")


def test_iiif3_info_and_tile(server, client):
    info = client.get(server.url("iiif3")).json()
    assert info["id"] == server.base_url + "/iiif3" and info["type"] == "ImageService3"
    assert info["profile"] == "level1" and "png" in info["extraFormats"]
    assert info["tiles"] == [{"width": 512, "scaleFactors": [1, 2]}]
    tile = decode(client.get(server.base_url + "/iiif3/512,0,488,512/488,512/0/default.jpg"))
    assert tile.shape == (512, 488, 3)
    full = server.level_image("iiif3", 0)
    png = decode(client.get(server.base_url + "/iiif3/512,512,488,188/488,/0/default.png"))
    assert np.array_equal(png, full[512:, 512:])
    assert decode(client.get(server.base_url + "/iiif3/full/max/0/default.png")).shape == (H, W, 3)
    assert client.get(server.base_url + "/iiif3/full/full/0/default.png").status_code == 400
    up = decode(client.get(server.base_url + "/iiif3/0,0,100,50/^200,/0/default.png"))
    assert up.shape == (100, 200, 3)
    assert client.get(server.base_url + "/iiif3/0,0,100,50/200,/0/default.png").status_code == 400


def iiif(server, client, path: str) -> np.ndarray:
    return decode(client.get(f"{server.base_url}/iiif2/{path}"))


def test_iiif_tiles_match_level_images(server, client):
    l0, l1, l2 = (server.level_image("iiif2", k) for k in range(3))
    # edge tile at full resolution: 232 x 188
    assert np.array_equal(iiif(server, client, "768,512,232,188/232,188/0/default.png"), l0[512:, 768:])
    # scale factor 2, second column: region 512..1000 -> 244 px
    assert np.array_equal(iiif(server, client, "512,0,488,512/244,256/0/default.png"), l1[:256, 256:])
    # w, syntax on the whole image at scale 4
    assert np.array_equal(iiif(server, client, "full/250,/0/default.png"), l2)
    assert np.array_equal(iiif(server, client, "full/,175/0/color.png"), l2)
    assert np.array_equal(iiif(server, client, "full/pct:50/0/default.png"), l1)
    assert np.array_equal(iiif(server, client, "full/full/0/default.png"), l0)
    assert np.array_equal(iiif(server, client, "full/max/0/default.png"), l0)
    # aligned region inside a level is cut from the level image
    assert np.array_equal(iiif(server, client, "100,50,300,200/150,100/0/default.png"), l1[25:125, 50:200])
    # percent-encoded and the level helpers agree
    assert np.array_equal(iiif(server, client, "full/%21250,250/0/default.png"), l2)
    url = server.tile_url("iiif2", 1, 1, 1)
    assert url.endswith("/iiif2/512,512,488,188/244,94/0/default.png")
    assert np.array_equal(decode(client.get(url)), l1[256:, 256:])


def test_iiif_floor_rounded_edge_is_truncated_level(server, client):
    # dezoomify-rs floors: 700 / 8 = 87 rows (the ceil level has 88)
    l3 = server.level_image("dzi-png", 3)
    assert l3.shape == (88, 125, 3)
    got = iiif(server, client, "0,0,1000,700/125,87/0/default.png")
    assert np.array_equal(got, l3[:87])


def test_iiif_non_aligned_region_is_crop_then_resize(server, client, image):
    got = iiif(server, client, "101,51,300,200/150,100/0/default.png")
    assert np.array_equal(got, box_resize(image[51:251, 101:401], (150, 100)))
    got = iiif(server, client, "101,51,300,200/full/0/default.png")
    assert np.array_equal(got, image[51:251, 101:401])
    got = iiif(server, client, "full/!300,300/0/default.png")
    assert got.shape == (210, 300, 3) and np.array_equal(got, box_resize(image, (300, 210)))
    got = iiif(server, client, "900,600,500,500/50,/0/default.png")  # clipped to 100x100
    assert np.array_equal(got, box_resize(image[600:, 900:], (50, 50)))
    got = iiif(server, client, "square/100,100/0/default.png")
    assert np.array_equal(got, box_resize(image[:, 150:850], (100, 100)))


@pytest.mark.parametrize(
    "path",
    [
        "full/full/90/default.png",
        "full/full/0/gray.png",
        "full/full/0/default.gif",
        "nonsense/full/0/default.png",
        "1000,0,10,10/full/0/default.png",
        "0,0,0,10/full/0/default.png",
        "full/2000,/0/default.png",
        "full/0,/0/default.png",
        "full/abc/0/default.png",
        "full/^100,/0/default.png",
        "0,0,-5,5/full/0/default.png",
    ],
)
def test_iiif_invalid_requests(server, client, path):
    assert client.get(f"{server.base_url}/iiif2/{path}").status_code == 400


def test_iiif_jpg(server, client, image):
    r = client.get(server.base_url + "/iiif2/0,0,256,256/256,256/0/default.jpg")
    assert r.headers["content-type"] == "image/jpeg"
    assert np.abs(decode(r).astype(int) - image[:256, :256]).mean() < 5


# --------------------------------------------------------------------------- generic


def test_generic(server, client, image):
    assert server.url("generic") == server.base_url + "/generic/tile_{{X}}_{{Y}}.png"
    base = server.base_url
    assert np.array_equal(decode(client.get(f"{base}/generic/tile_0_0.png")), image[:256, :256])
    edge = decode(client.get(f"{base}/generic/tile_3_2.png"))
    assert edge.shape == (188, 232, 3) and np.array_equal(edge, image[512:, 768:])
    for bad in ["tile_4_0.png", "tile_0_3.png", "tile_0_0.jpg", "tile_-1_0.png"]:
        assert client.get(f"{base}/generic/{bad}").status_code == 404
    jpg = client.get(f"{base}/generic-jpg/tile_1_1.jpg")
    assert jpg.headers["content-type"] == "image/jpeg" and decode(jpg).shape == (256, 256, 3)
    assert client.get(f"{base}/unknown/tile_0_0.png").status_code == 404
    index = client.get(base + "/").json()
    assert set(index) == set(KINDS)


def test_prewarm_fills_the_cache(image, client):
    with TileServer(image) as srv:
        assert srv.prewarm("dzi-png", levels=[0, 1]) == 12 + 4
        assert srv.prewarm("iiif3") == 4 + 1
        assert srv.requests == []
        url = srv.base_url + "/dzi-png/image_files/10/3_2.png"
        assert np.array_equal(decode(client.get(url)), srv.level_image("dzi-png", 0)[507:, 761:])


def test_head_request(server, client):
    get = client.get(server.base_url + "/generic/tile_1_0.png")
    head = client.head(server.base_url + "/generic/tile_1_0.png")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(get.content))


# --------------------------------------------------------------------------- modes


def test_rgba_and_grayscale(client):
    rgba = make_test_image(300, 200, channels=4)
    with TileServer(rgba, tile_size=128) as srv:
        png = decode(client.get(srv.base_url + "/generic/tile_2_1.png"))
        assert png.shape == (72, 44, 4) and np.array_equal(png, rgba[128:, 256:])
        assert np.array_equal(png, srv.level_image("generic", 0)[128:, 256:])
        jpg = decode(client.get(srv.base_url + "/generic-jpg/tile_0_0.jpg"))
        assert jpg.shape == (128, 128, 3)
        lvl = srv.level_image("dzi-png", 1)
        assert lvl.shape == (100, 150, 4)
        assert np.array_equal(
            decode(client.get(srv.base_url + "/dzi-png/image_files/8/0_0.png")), lvl[:127, :127]
        )
    gray = make_test_image(300, 200, channels=1)[:, :, 0]  # 2-D input
    with TileServer(gray, tile_size=128) as srv:
        assert srv.level_image("iiif2", 1).shape == (100, 150)
        r = client.get(srv.base_url + "/iiif2/128,0,128,128/64,64/0/default.png")
        with Image.open(io.BytesIO(r.content)) as im:
            assert im.mode == "L"
            assert np.array_equal(np.asarray(im), srv.level_image("iiif2", 1)[:64, 64:128])
        assert decode(client.get(srv.base_url + "/zoomify/TileGroup0/1-1-0.jpg")).shape == (128, 128, 1)


def test_lossless_serves_png_at_jpg_urls(client, image):
    with TileServer(image, lossless=True) as srv:
        r = client.get(srv.tile_url("zoomify", 0, 3, 2))
        assert r.headers["content-type"] == "image/png"
        assert np.array_equal(decode(r), image[512:, 768:])


# --------------------------------------------------------------------------- accounting and faults


def test_request_accounting_and_headers(fresh, client):
    base = fresh.base_url
    client.get(fresh.url("iiif2"))
    fresh.reset_requests()
    assert fresh.requests == [] and fresh.count() == 0
    for x, y in [(0, 0), (1, 0), (1, 1)]:
        client.get(f"{base}/generic/tile_{x}_{y}.png", headers={"Referer": "http://ref/", "X-Custom": "v"})
    client.get(f"{base}/iiif2/full/100,/0/default.jpg?token=1")
    assert fresh.requests == [
        "/generic/tile_0_0.png",
        "/generic/tile_1_0.png",
        "/generic/tile_1_1.png",
        "/iiif2/full/100,/0/default.jpg?token=1",
    ]
    assert fresh.count("/generic/") == 3
    assert fresh.count(lambda p: p.endswith("_0.png")) == 2
    seen = fresh.headers_seen
    assert len(seen) == 4
    assert seen[0]["referer"] == "http://ref/" and seen[0]["X-Custom"] == "v"
    assert "user-agent" in seen[3] and "Referer" not in seen[3]


def test_fail_and_retry_after(fresh, client):
    url = fresh.base_url + "/generic/tile_0_0.png"
    fresh.fail("tile_0_0", times=2, status=503, retry_after=1)
    for _ in range(2):
        r = client.get(url)
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
    assert client.get(url).status_code == 200
    assert client.get(fresh.base_url + "/generic/tile_1_0.png").status_code == 200
    fresh.fail("tile_1_", times=1, status=429)
    assert client.get(fresh.base_url + "/generic/tile_1_1.png").status_code == 429
    assert "retry-after" not in client.get(fresh.base_url + "/generic/tile_1_1.png").headers
    assert fresh.count("tile_0_0") == 3


def test_missing_corrupt_and_clear(fresh, client):
    url = fresh.base_url + "/dzi-jpg/image_files/10/1_1.jpg"
    good = client.get(url).content
    fresh.missing("/1_1.")
    assert [client.get(url).status_code for _ in range(3)] == [404, 404, 404]
    fresh.clear_faults()
    fresh.corrupt("/1_1.", times=1)
    r = client.get(url)
    assert r.status_code == 200 and r.content == good[: len(good) // 2]
    assert client.get(url).content == good


def test_require_header(image, client):
    with TileServer(image, require_header=("Referer", "http://museum/")) as srv:
        url = srv.base_url + "/generic/tile_0_0.png"
        assert client.get(url).status_code == 403
        assert client.get(url, headers={"referer": "http://museum/"}).status_code == 200


def test_latency_and_max_in_flight(image):
    with TileServer(image, latency=0.5) as srv, httpx.Client(timeout=10) as c:
        c.get(srv.url("iiif2"))
        srv.reset_requests()
        for x in range(2):
            c.get(f"{srv.base_url}/generic/tile_{x}_0.png")
        assert srv.max_in_flight == 1
        srv.reset_requests()
        urls = [f"{srv.base_url}/generic/tile_{x}_{y}.png" for x in range(4) for y in range(2)]
        with ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(lambda u: c.get(u).status_code, urls))
        assert codes == [200] * 8
        assert srv.max_in_flight >= 6  # the 0.5 s latency overlaps: requests are served in parallel
        assert srv.in_flight == 0


def test_stop_with_open_keepalive_connection(image):
    srv = TileServer(image).start()
    with httpx.Client() as c:
        assert c.get(srv.base_url + "/generic/tile_0_0.png").status_code == 200
        t0 = time.perf_counter()
        srv.stop()  # the client still holds a keep-alive connection
        assert time.perf_counter() - t0 < 2
        assert not srv.running
        srv.stop()  # idempotent
    with pytest.raises(RuntimeError):
        _ = srv.base_url


# --------------------------------------------------------------------------- CLI


def test_cli_serve_ready_file(tmp_path):
    ready = tmp_path / "ready"
    proc = subprocess.Popen(
        [sys.executable, "-m", "dezoomify_nb.testing", "serve", "--width", "300", "--height", "200",
         "--print-url", "iiif3", "--ready-file", str(ready)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while not (ready.exists() and ready.read_text().endswith("\n")):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        base = ready.read_text().strip()
        with httpx.Client() as c:
            info = c.get(base + "/iiif3/info.json").json()
        assert (info["width"], info["height"]) == (300, 200)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert out.strip() == base + "/iiif3/info.json"
    assert not os.path.exists(ready)


def test_custom_routes_and_static_files():
    import httpx

    from dezoomify_nb.testing import Response

    with TileServer(make_test_image(64, 64)) as server:
        base = server.serve_files("/static/", {"a/b.xml": "<x/>", "c.bin": b"\x00\x01"})
        server.add_route("/echo", lambda srv, raw, headers: Response(200, raw.encode(), "text/plain"))
        with httpx.Client() as client:
            assert client.get(base + "/a/b.xml").text == "<x/>"
            assert client.get(base + "/a/b.xml").headers["content-type"] == "application/xml"
            assert client.get(base + "/c.bin").content == b"\x00\x01"
            assert client.get(base + "/missing").status_code == 404
            assert client.get(server.base_url + "/echo?q=1").text == "/echo?q=1"
        assert server.count("/static/") == 4
