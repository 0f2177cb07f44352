"""ZIF: IFD walking over byte ranges (requests counted), hostile files, JPEG fix-ups, and downloads from the
loopback server (with and without Range support) and from local files, pixels compared with the source."""

from __future__ import annotations

import io
import logging
import pickle
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image as PILImage

import dezoomify_nb as dz
from dezoomify_nb.cli import main
from dezoomify_nb.dezoomers import zif
from dezoomify_nb.dezoomers.base import Context
from dezoomify_nb.dezoomers.zif import ZifDezoomer, ZifLevel, fix_jpeg
from dezoomify_nb.errors import (
    DezoomerError,
    DezoomifyError,
    FetchError,
    MetadataError,
    NeedsData,
    WrongDezoomer,
)
from dezoomify_nb.net.fetch import split_range, with_range
from dezoomify_nb.testing import make_test_image
from dezoomify_nb.testing.zif import ZifFixture, jpeg_segments, make_tifffile_zif, make_zif

from .fmt_helpers import FAST, Driver, assert_jpeg_close, load

Z = ZifDezoomer()
URL = "https://maps.example.org/zoom/0002.zif"
IMAGE = make_test_image(1000, 700, seed=5)


@pytest.fixture(scope="module")
def fixtures() -> dict[str, ZifFixture]:
    return {
        "zoomify": make_zif(IMAGE),
        "tables": make_zif(IMAGE, shared_tables=True, layout="arrays_last"),
        "rgb": make_zif(IMAGE, rgb=True, layout="spread"),
        "png": make_zif(IMAGE, png=True),
        "tifffile": make_tifffile_zif(IMAGE),
    }


def ranged(data: bytes, *, local: bool = False):
    """Answer ``url#bytes=a-b`` like an HTTP server (a short reply past the end), or like a local file
    (``local``: 416 when the range runs past the end)."""

    def serve(key: str) -> bytes | FetchError:
        _, rng = split_range(key)
        assert rng is not None, f"asked for a whole file: {key}"
        a, b = rng
        if a >= len(data) or (local and b >= len(data)):
            return FetchError(key, "416 Range Not Satisfiable", status=416)
        return data[a : b + 1]

    return serve


def run(data: bytes, url: str = URL, **kw) -> tuple[list[dz.model.Image], Driver]:
    driver = Driver(ranged(data, **kw))
    return driver.run(Z, url), driver


def spans(driver: Driver) -> list[tuple[int, int]]:
    return [split_range(k)[1] for k in driver.requests]  # type: ignore[misc]


# --- detection and the request plan ------------------------------------------------------------------
@pytest.mark.parametrize("url", [
    URL, "https://rgada.info/opisi/210-opis_6/0001.zif?t1604693839555n17", "/tmp/scan.ZIF",
    "https://h/ServerFiles/DisplayZoomify/?url=/img/PRZ.zif", "https://h/x.zif?a=1&b=2", URL + "#bytes=5-9",
])
def test_zif_urls_are_recognised(url: str) -> None:
    with pytest.raises(NeedsData) as need:
        Z.images(Context(url))
    assert need.value.urls == (with_range(split_range(url)[0], 0, zif.HEAD_BYTES - 1),)


@pytest.mark.parametrize("url", ["https://h/tour.xml", "https://h/x.zif.html", "https://h/x.zifx", "https://h/zif/a"])
def test_other_urls_are_not_zif(url: str) -> None:
    with pytest.raises(WrongDezoomer):
        Z.images(Context(url))


def test_zoomify_layout_needs_one_request_and_maps_every_tile(fixtures) -> None:
    z = fixtures["zoomify"]
    (img,), driver = run(z.data)
    assert spans(driver) == [(0, zif.HEAD_BYTES - 1)]
    assert img.title == "0002" and img.dezoomer == "zif"
    assert [lv.size for lv in img.levels] == z.sizes == [(1000, 700), (500, 350), (250, 175)]
    for lv, placed in zip(img.levels, z.tiles, strict=True):
        assert (lv.tile_width, lv.tile_height) == (256, 256) and not lv.jpeg_tables
        assert [lv.tile_url(c, r) for c, r in lv.tile_positions()] == [with_range(URL, p, p + n - 1) for p, n in placed]
    assert pickle.loads(pickle.dumps(img.levels[0])) == img.levels[0]


def test_spread_ifds_cost_one_speculative_read_each(fixtures) -> None:
    z = fixtures["tifffile"]  # IFD, arrays, tiles; IFD, arrays, tiles; ...
    (img,), driver = run(z.data)
    got = spans(driver)
    assert got[0] == (0, zif.HEAD_BYTES - 1) and len(got) == 3
    assert all(b - a + 1 == zif.IFD_GUESS for a, b in got[1:])
    assert [lv.size for lv in img.levels] == z.sizes


def test_arrays_outside_the_header_come_in_one_coalesced_range() -> None:
    z = make_zif(make_test_image(600, 400, seed=2), tile_size=16, layout="arrays_last")
    (img,), driver = run(z.data)
    assert len(img.levels) == 7 and img.levels[0].n_tiles == 38 * 25
    (a, b), = spans(driver)[1:]  # every array of every level: one request
    tile_end = max(p + n for level in z.tiles for p, n in level)
    assert a >= tile_end and b <= len(z.data) - 1
    assert [img.levels[0].tile_url(c, r) for c, r in img.levels[0].tile_positions()] == [
        with_range(URL, p, p + n - 1) for p, n in z.tiles[0]]


def test_large_array_spans_are_split_but_asked_at_once(monkeypatch) -> None:
    z = make_zif(make_test_image(600, 400, seed=2), tile_size=16, layout="arrays_last")
    monkeypatch.setattr(zif, "MAX_RANGE", 4096)
    (img,), driver = run(z.data)
    assert driver.rounds == 2 and len(driver.requests) > 3
    assert all(b - a + 1 <= 4096 for a, b in spans(driver)[1:])
    assert img.levels[0].tile_url(37, 24) == with_range(URL, *(lambda p, n: (p, p + n - 1))(*z.tiles[0][-1]))


def test_a_file_smaller_than_the_first_read(tmp_path) -> None:
    z = make_zif(make_test_image(100, 80, seed=4), tile_size=64, layout="spread")
    assert len(z.data) < zif.HEAD_BYTES
    (img,), driver = run(z.data, local=True)  # the first read is refused (416): exact reads follow
    assert spans(driver)[:2] == [(0, zif.HEAD_BYTES - 1), (0, 15)]
    assert [lv.size for lv in img.levels] == [(100, 80), (50, 40)]
    path = tmp_path / "tiny image.zif"
    path.write_bytes(z.data)
    local = dz.open(str(path), **FAST)
    assert local.title == "tiny image"
    for k in range(2):
        assert_jpeg_close(local.to_dask(level=k).compute(), z.level_image(k))


@pytest.mark.parametrize("kw", [{"bigtiff": False}, {"byteorder": ">"}])
def test_classic_tiff_and_big_endian_local_files(kw, tmp_path) -> None:
    z = make_tifffile_zif(IMAGE, **kw)
    path = tmp_path / "t.zif"
    path.write_bytes(z.data)
    img = dz.open(f"file://{path}", dezoomer="zif", **FAST)
    assert [lv.size for lv in img.levels] == z.sizes
    assert_jpeg_close(img.to_dask(level=1).compute(), z.level_image(1))


# --- hostile or unusual files ------------------------------------------------------------------------
def _ifd_at(data: bytes, ifd: int) -> int:
    """Byte position of IFD number ``ifd`` of a little-endian BigTIFF."""
    at = struct.unpack_from("<Q", data, 8)[0]
    for _ in range(ifd):
        n = struct.unpack_from("<Q", data, at)[0]
        at = struct.unpack_from("<Q", data, at + 8 + 20 * n)[0]
    return at


def _entry_at(data: bytes, ifd: int, tag: int) -> int:
    at = _ifd_at(data, ifd)
    for e in range(struct.unpack_from("<Q", data, at)[0]):
        if struct.unpack_from("<H", data, at + 8 + 20 * e)[0] == tag:
            return at + 8 + 20 * e
    raise KeyError(tag)


def _set(data: bytes, ifd: int, tag: int, value: int, typ: int = 4) -> bytes:
    out = bytearray(data)
    at = _entry_at(data, ifd, tag)
    struct.pack_into("<HHQQ", out, at, tag, typ, 1, value)
    return bytes(out)


def test_not_a_tiff_and_truncated_files(fixtures) -> None:
    with pytest.raises(MetadataError, match="not a ZIF file") as info:
        run(b"<html><body>Not found</body></html>")
    assert "tifffile" in info.value.hint
    with pytest.raises(MetadataError, match="version"):
        run(b"II*\x01" + bytes(20))
    cut = fixtures["tifffile"].data[:5000]  # the second IFD is past the end
    with pytest.raises(MetadataError, match="ends before"):
        run(cut, local=True)


def test_ifd_chain_loops_and_entry_caps_are_bounded(fixtures, caplog) -> None:
    data = bytearray(fixtures["zoomify"].data)
    last = _ifd_at(bytes(data), 2)
    n = struct.unpack_from("<Q", data, last)[0]
    struct.pack_into("<Q", data, last + 8 + 20 * n, struct.unpack_from("<Q", data, 8)[0])  # next → IFD 0
    with caplog.at_level(logging.WARNING, "dezoomify_nb.dezoomers.zif"):
        (img,), _ = run(bytes(data))
    assert len(img.levels) == 3 and "loops" in caplog.text
    many = bytearray(fixtures["zoomify"].data)
    struct.pack_into("<Q", many, 16, 10**9)
    with pytest.raises(MetadataError, match="entries"):
        run(bytes(many))


def test_absurd_geometry_is_refused_before_any_array_is_read() -> None:
    z = make_zif(make_test_image(600, 400, seed=2), tile_size=16, layout="arrays_last")
    data = _set(_set(z.data, 0, 256, 9_000_000), 0, 257, 9_000_000)
    driver = Driver(ranged(data))
    with pytest.raises(MetadataError, match="tiles"):
        driver.run(Z, URL)
    assert len(driver.requests) == 1  # only the header: nothing was allocated from those numbers
    with pytest.raises(MetadataError, match="sanity"):
        run(_set(z.data, 0, 256, 20_000_000))


def test_unsupported_levels_are_skipped_or_named(fixtures) -> None:
    data = _set(fixtures["zoomify"].data, 1, 259, 5, typ=3)  # level 1: LZW
    (img,), _ = run(data)
    assert [lv.size for lv in img.levels] == [(1000, 700), (250, 175)]  # still one image
    data = fixtures["zoomify"].data
    for k in range(3):
        data = _set(data, k, 259, 34934, typ=3)
    with pytest.raises(MetadataError, match="JPEG XR"):
        run(data)


def test_unrelated_ifd_sizes_are_separate_images(fixtures) -> None:
    data = _set(_set(fixtures["zoomify"].data, 1, 256, 400), 1, 257, 100)
    images, _ = run(data)
    assert [[lv.size for lv in im.levels] for im in images] == [[(1000, 700)], [(400, 100)], [(250, 175)]]
    assert [im.title for im in images] == ["0002 1", "0002 2", "0002 3"]


SMALL = make_zif(make_test_image(300, 200, seed=1), tile_size=64, layout="spread", shared_tables=True).data


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edits=st.lists(st.tuples(st.integers(0, 3000), st.integers(0, 255)), min_size=1, max_size=8),
       cut=st.integers(16, len(SMALL)), local=st.booleans())
def test_damaged_files_only_raise_dezoomify_errors(edits, cut, local) -> None:
    data = bytearray(SMALL)
    for at, value in edits:  # the header and IFDs live in the first 3000 bytes
        data[at % len(data)] = value
    try:
        images, driver = run(bytes(data[:cut]), local=local)
    except DezoomifyError:
        return
    assert len(driver.requests) <= 64
    for img in images:
        for lv in img.levels:
            lv.tile_url(lv.cols - 1, lv.rows - 1)


def test_level_tile_urls_and_sparse_tiles() -> None:
    offsets = np.array([100, 0], "<u8").tobytes()
    counts = np.array([50, 0], "<u8").tobytes()
    lv = ZifLevel(300, 100, 256, 256, source="/x.zif", offsets=offsets, counts=counts)
    assert lv.tile_url(0, 0) == "/x.zif#bytes=100-149" and lv.tile_url(1, 0) == "/x.zif#bytes=0-0"


# --- JPEG fix-ups ------------------------------------------------------------------------------------
def _decode(data: bytes) -> np.ndarray:
    with PILImage.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB")).astype(np.int16)


def test_jpeg_tables_are_spliced_into_abbreviated_tiles(fixtures) -> None:
    z = fixtures["tables"]
    (img,), _ = run(z.data)
    lv = img.levels[0]
    assert lv.jpeg_tables.startswith(b"\xff\xd8") and lv.jpeg_tables.endswith(b"\xff\xd9")
    p, n = z.tiles[0][5]
    tile = z.data[p : p + n]
    assert not {m for m, _ in jpeg_segments(tile)} & {0xDB, 0xC4}
    with pytest.raises(OSError):
        _decode(tile)  # abbreviated: Pillow cannot decode it alone
    full = lv.postprocess(tile)
    assert {0xDB, 0xC4} <= {m for m, _ in jpeg_segments(full)}
    assert np.abs(_decode(full) - z.level_image(0)[256:512, 256:512]).mean() < 6
    complete = fixtures["zoomify"].data[slice(*(lambda p, n: (p, p + n))(*fixtures["zoomify"].tiles[0][0]))]
    assert fix_jpeg(complete, lv.jpeg_tables) == complete and fix_jpeg(b"\x89PNG", lv.jpeg_tables) == b"\x89PNG"


def test_rgb_jpeg_tiles_get_an_adobe_marker(fixtures) -> None:
    z = fixtures["rgb"]
    (img,), _ = run(z.data)
    assert img.levels[0].rgb_jpeg and not fixtures_level_rgb(fixtures["zoomify"])
    p, n = z.tiles[0][0]
    tile = z.data[p : p + n]
    truth = z.level_image(0)[:256, :256]
    assert np.abs(_decode(tile) - truth).mean() > 20  # taken for YCbCr: wrong colours
    assert np.abs(_decode(img.levels[0].postprocess(tile)) - truth).mean() < 6


def fixtures_level_rgb(z: ZifFixture) -> bool:
    (img,), _ = run(z.data)
    return img.levels[0].rgb_jpeg


# --- end to end on the loopback server ---------------------------------------------------------------
@pytest.mark.parametrize("kind", ["zoomify", "tables", "rgb", "png", "tifffile"])
def test_e2e_auto_detected_every_level_pixels(server, _server, fixtures, kind) -> None:
    z = fixtures[kind]
    url = z.serve(_server, f"/zif-{kind}", "scan 7.zif")
    server.reset_requests()
    img = dz.open(url + "?t1604693839555n17", **FAST)
    assert img.dezoomer == "zif" and img.title == "scan 7"
    assert server.count("/zif-") == {"zoomify": 1, "png": 1, "tables": 2}.get(kind, 3)  # metadata only
    for k in range(len(z.sizes)):
        got = img.to_dask(level=k).compute()
        if kind == "png":
            np.testing.assert_array_equal(got, z.level_image(k))
        else:
            assert_jpeg_close(got, z.level_image(k))
        if kind == "tifffile":  # an independent decoder of the same file (imagecodecs' libjpeg)
            import tifffile

            truth = tifffile.imread(io.BytesIO(z.data), key=k)
            assert np.abs(got.astype(np.int16) - truth).max() <= 2
    assert server.count("/zif-") == 1 + sum(len(t) for t in z.tiles) + {"zoomify": 0, "png": 0, "tables": 1}.get(kind, 2)


def test_e2e_server_ignoring_range_is_a_clear_error(server, _server, fixtures, capsys, tmp_path) -> None:
    url = fixtures["zoomify"].serve(_server, "/zif-norange", ranges=False)
    server.reset_requests()
    for dezoomer in ("auto", "zif"):
        with pytest.raises(DezoomerError, match="ignores HTTP Range") as info:
            dz.open(url, dezoomer=dezoomer, **FAST)
        assert "local path" in info.value.hint
    assert server.count("/zif-norange") == 2  # one refused read each: no other dezoomer fetched the file
    code = main(["-i", "0ms", url, str(tmp_path / "o.png")])
    err = capsys.readouterr().err
    assert code == 1 and "ignores HTTP Range" in err and "hint:" in err
    assert not (tmp_path / "o.png").exists()


def test_e2e_cli_forced_level_and_region(server, _server, fixtures, capsys, tmp_path) -> None:
    z = fixtures["tables"]
    url = z.serve(_server, "/zif-cli", "map.zif")
    out = tmp_path / "map.png"
    code = main(["-i", "0ms", "--dezoomer", "zif", "--zoom-level", "1", url, str(out)])
    assert code == 0, capsys.readouterr().err
    assert_jpeg_close(load(out), z.level_image(1))
    tile = dz.open(url, **FAST).levels[0].tile_url(2, 1)
    again = dz.open(tile, dezoomer="zif", **FAST)  # a tile's byte-range URL leads back to the file
    assert [lv.size for lv in again.levels] == z.sizes


# --- the real sites (run with: pytest -m network tests/formats/test_zif.py) --------------------------
REAL = [
    "https://host.themorgan.org/zoom/images/exhibitions/016_Holbein_Hans_Sir_Thomas_More_Frick_gm_379725EX1.zif",
    "https://www.swaen.com/uploads_zif/31329.zif",
    "http://rgada.info/opisi/210-opis_6/0002.zif",
    "https://lapis.nichibun.ac.jp/chizu/zoomify/zif/002469070_o.zif",
    "https://shinku.nichibun.ac.jp/kichosho/new/books/139/pageview1/zoomify/000353961_0103_1.zif",
    "https://novascotia.ca/archives/zoom/greatmap/201586820.zif",
    "https://imkinsky.com/objektimages/objekt/zoom/83431a.zif",
    "https://www.porthopehistory.com/ccreightonalbum/image1.zif",
]


@pytest.mark.network
@pytest.mark.parametrize("url", REAL)
def test_real_zif(url: str) -> None:
    img = dz.open(url, retries=2, timeout=60)
    assert img.dezoomer == "zif" and img.levels[0].width >= 1000 and len(img.levels) >= 2
    small = img.levels[-1]
    pixels = img.to_dask(level=len(img.levels) - 1).compute()
    assert pixels.shape[:2] == (small.height, small.width) and pixels.std() > 1  # a real picture
