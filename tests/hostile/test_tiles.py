"""Tiles that are not what they claim: HTML pages with status 200, truncated images, decompression
bombs, tiles of the wrong size or mode. Bad tiles fail (with the URL), good ones are kept."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

import dezoomify_nb as dz

from .conftest import DZI, FAST_API, cli_error, run_cli

W, H = 300, 200  # two 256-px tiles at the full level (Deep Zoom level 9): 256x200 and 44x200


def source() -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8)


def png(arr: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    im = Image.fromarray(arr)
    if mode:
        im = im.convert(mode)
    im.save(buf, format="PNG" if mode != "CMYK" else "JPEG")
    return buf.getvalue()


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny valid PNG whose header declares ``width`` × ``height`` pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def good_tiles(arr: np.ndarray) -> dict[str, bytes]:
    return {"image_files/9/0_0.png": png(arr[:, :256]), "image_files/9/1_0.png": png(arr[:, 256:])}


def serve_dzi(serve, tiles: dict[str, bytes]) -> str:
    return serve({"image.dzi": DZI.format(w=W, h=H), **tiles}) + "/image.dzi"


HTML = b"<!DOCTYPE html><html><body><h1>Please log in</h1></body></html>"

BAD_TILES = {
    "html-200": HTML,
    "empty-200": b"",
    "truncated-png": None,  # filled in below from a real tile
    "garbage": bytes(range(256)) * 4,
    "bomb-100000x100000": bomb_png(),
    "bomb-1x10^9": bomb_png(1, 1_000_000_000),
    "tile-too-large-5000px": png(np.zeros((5000, 5000, 3), np.uint8)),
    "svg": b'<svg xmlns="http://www.w3.org/2000/svg" width="100000" height="100000"/>',
}


def bad(name: str, arr: np.ndarray) -> bytes:
    if name == "truncated-png":
        return png(arr[:, :256])[:300]
    return BAD_TILES[name]


@pytest.mark.parametrize("name", sorted(BAD_TILES))
def test_every_tile_bad(name, serve, capsys, tmp_path):
    arr = source()
    url = serve_dzi(serve, {"image_files/9/0_0.png": bad(name, arr), "image_files/9/1_0.png": bad(name, arr)})
    out = tmp_path / "o.png"
    err = cli_error(capsys, "--zoom-level", "0", url, out)
    assert "Could not get any tile" in err and "Invalid content" in err
    assert not out.exists() and not list(tmp_path.iterdir())  # no placeholder, no .partial
    img = dz.open(url, **FAST_API)
    with pytest.raises(dz.DownloadError) as info:
        img.save(tmp_path / "p.png", progress=False)
    assert info.value.failed == info.value.total == 2
    with pytest.raises(dz.TileFetchError) as info2:
        img.to_dask()[:10, :10].compute()
    assert info2.value.url.endswith("/9/0_0.png") and info2.value.status is None


@pytest.mark.parametrize("name", ["html-200", "truncated-png", "bomb-100000x100000"])
def test_one_tile_bad_keeps_the_rest(name, serve, capsys, tmp_path):
    arr = source()
    tiles = good_tiles(arr)
    tiles["image_files/9/1_0.png"] = bad(name, arr)
    url = serve_dzi(serve, tiles)
    out = tmp_path / "o.png"
    code, _, err = run_cli(capsys, "--zoom-level", "0", url, out)
    assert code == 1 and "Traceback" not in err
    assert err.count("warning: Only 1 tiles out of 2") == 1 and "hint:" in err
    got = np.asarray(Image.open(out).convert("RGB"))
    np.testing.assert_array_equal(got[:, :256], arr[:, :256])
    assert not got[:, 256:].any()  # the failed tile is left black
    result = dz.open(url, **FAST_API).save(tmp_path / "p.png", progress=False, allow_partial=True)
    assert [u.rsplit("/", 2)[-2:] for u, _ in result.failed] == [["9", "1_0.png"]]


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "I;16", "1", "CMYK"])
def test_tiles_of_another_mode_are_converted(mode, serve, tmp_path):
    arr = source()
    tiles = good_tiles(arr)
    tiles["image_files/9/1_0.png"] = png(arr[:, 256:], mode)
    url = serve_dzi(serve, tiles)
    result = dz.open(url, **FAST_API).save(tmp_path / "m.png", progress=False)
    assert result.ok
    got = np.asarray(Image.open(tmp_path / "m.png").convert("RGB"))
    np.testing.assert_array_equal(got[:, :256], arr[:, :256])
    if mode in ("RGBA",):
        np.testing.assert_array_equal(got[:, 256:], arr[:, 256:])


@pytest.mark.parametrize("size", [(10, 10), (400, 300), (44, 199)])
def test_tiles_of_the_wrong_size_are_cropped_or_padded(size, serve, tmp_path):
    arr = source()
    tiles = good_tiles(arr)
    tw, th = size
    wrong = np.full((th, tw, 3), 200, np.uint8)
    tiles["image_files/9/1_0.png"] = png(wrong)
    url = serve_dzi(serve, tiles)
    result = dz.open(url, **FAST_API).save(tmp_path / "s.png", progress=False)
    assert result.ok
    got = np.asarray(Image.open(tmp_path / "s.png").convert("RGB"))
    assert got.shape == (H, W, 3)
    np.testing.assert_array_equal(got[:, :256], arr[:, :256])
    h, w = min(th, H), min(tw, W - 256)
    assert (got[:h, 256:256 + w] == 200).all() and not got[h:, 256:].any()
