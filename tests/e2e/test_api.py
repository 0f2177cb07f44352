"""End to end through the Python API against the loopback server: pixels compared with the source."""

import numpy as np
import pytest

import dezoomify_nb as dz
from dezoomify_nb.lazy import events

from .helpers import ALL_KINDS, assert_same_pixels, is_tile, read

FAST = {"min_interval": 0, "retry_delay": 0.01}


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_open_fetches_metadata_only(server, kind):
    img = dz.open(server.url(kind), **FAST)
    # a Zoomify pyramid whose NUMTILES fits two size rules reads its one-tile level's tile to tell which
    probe = "/zoomify-even/TileGroup0/0-0-0.jpg" if kind == "zoomify-even" else None
    assert not [p for p in server.requests if is_tile(p) and "generic" not in kind and p != probe]
    assert (img.width, img.height) == (1000, 700)
    assert [(lv.width, lv.height) for lv in img.levels] == server.level_sizes(kind)[: len(img.levels)]


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_save_full_resolution_png(server, kind, tmp_path):
    img = dz.open(server.url(kind), **FAST)
    result = img.save(tmp_path / "out.png", level=0, progress=False)
    assert result.ok and result.path == tmp_path / "out.png"
    assert_same_pixels(read(result.path), server.level_image(kind, 0), kind)


@pytest.mark.parametrize("kind", ["dzi-png", "iiif2", "zoomify"])
def test_save_lower_level(server, kind, tmp_path):
    img = dz.open(server.url(kind), **FAST)
    out = img.save(tmp_path / "small.png", level=1, progress=False).path
    assert_same_pixels(read(out), server.level_image(kind, 1), kind)


@pytest.mark.parametrize("kind", ["dzi-png", "iiif3", "dzi-jpg"])
def test_to_dask_full_and_lower_levels(server, kind):
    img = dz.open(server.url(kind), **FAST)
    arr = img.to_dask()
    assert arr.shape == (700, 1000, 3) and arr.dtype == np.uint8
    assert_same_pixels(arr.compute(), server.level_image(kind, 0), kind)
    assert_same_pixels(img.to_dask(level=1).compute(), server.level_image(kind, 1), kind)


@pytest.mark.parametrize(
    ("window", "expected_tiles"),
    [((slice(10, 20), slice(10, 20)), 1), ((slice(250, 260), slice(250, 260)), 4), ((slice(600, 700), slice(0, 1000)), 4)],
)
def test_lazy_window_fetches_only_its_tiles(server, window, expected_tiles):
    img = dz.open(server.url("dzi-jpg"), **FAST)
    server.reset_requests()
    crop = img.to_dask()[window].compute()
    tiles = [p for p in server.requests if is_tile(p)]
    assert len(tiles) == expected_tiles, tiles
    assert_same_pixels(crop, server.level_image("dzi-jpg", 0)[window], "dzi-jpg")


def test_parallelism_is_honoured(server, tmp_path):
    img = dz.open(server.url("dzi-jpg"), parallelism=2, **FAST)
    server.delay("_files/", 0.05)
    img.save(tmp_path / "p.png", progress=False)
    assert server.max_in_flight <= 2


def test_failed_tile_leaves_a_hole_and_raises(server, tmp_path):
    server.missing("_files/10/1_1.png")
    img = dz.open(server.url("dzi-png"), retries=0, **FAST)
    with pytest.raises(dz.DownloadError) as info:
        img.save(tmp_path / "holes.png", progress=False)
    assert info.value.failed == 1 and info.value.total == 12
    got = read(tmp_path / "holes.png")
    expected = server.level_image("dzi-png", 0).copy()
    assert (got[254:508, 254:508] == 0).all()
    expected[254:508, 254:508] = 0
    np.testing.assert_array_equal(got, expected)
    result = img.save(tmp_path / "holes2.png", progress=False, allow_partial=True)
    assert len(result.failed) == 1


def test_lazy_read_of_a_failed_tile_raises(server):
    server.missing("_files/10/0_0.png")
    img = dz.open(server.url("dzi-png"), retries=0, **FAST)
    with pytest.raises(dz.TileFetchError) as info:
        img.to_dask()[:10, :10].compute()
    assert info.value.status == 404


def test_retry_then_success(server, tmp_path):
    server.fail("_files/10/0_0", times=1, status=503)
    img = dz.open(server.url("dzi-png"), retries=1, **FAST)
    img.save(tmp_path / "r.png", progress=False)
    assert server.count("_files/10/0_0") == 2
    assert_same_pixels(read(tmp_path / "r.png"), server.level_image("dzi-png", 0), "dzi-png")


def test_headers_reach_the_server(server):
    img = dz.open(server.url("iiif3"), headers={"X-Token": "abc"}, **FAST)
    img.to_dask()[:5, :5].compute()
    seen = server.headers_seen[-1]
    assert seen["X-Token"] == "abc"
    assert "dezoomify_nb" in seen["User-Agent"]
    assert seen["Referer"]


def test_progress_callback_and_default_name(server, tmp_path):
    calls = []
    img = dz.open(server.url("dzi-png"), **FAST)
    first = img.save(directory=tmp_path, progress=lambda d, f, t: calls.append((d, f, t)))
    second = img.save(directory=tmp_path, progress=False)
    assert first.path.name == "image.jpg" and second.path.name == "image_0001.jpg"
    assert calls[-1] == (12, 0, 12)


def test_all_tiles_failing_removes_the_output(server, tmp_path):
    server.missing("_files/")
    img = dz.open(server.url("dzi-png"), retries=0, **FAST)
    with pytest.raises(dz.DownloadError, match="Could not get any tile"):
        img.save(tmp_path / "none.png", progress=False)
    assert not (tmp_path / "none.png").exists()


def test_store_is_a_zarr_pyramid(server):
    import zarr

    img = dz.open(server.url("iiif2"), **FAST)
    group = zarr.open_group(store=img.store(), mode="r")
    assert group["0"].shape == (700, 1000, 3)
    np.testing.assert_array_equal(group["1"][:], server.level_image("iiif2", 1))


def test_events_count_each_tile_of_the_store(server):
    import zarr

    img = dz.open(server.url("iiif2"), **FAST)
    store, other = img.store(), img.store()
    zarr.open_array(store=store, path="1", mode="r")[:]
    assert events.stats(store.token).done == img.levels[1].n_tiles
    assert events.stats(other.token).done == 0
