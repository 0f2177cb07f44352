"""The resumable zarr tile cache: resume, 404 memory, lazy reuse, offline stitching, SIGKILL safety."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zarr
from e2e.helpers import is_tile, read
from PIL import Image as PILImage

import dezoomify_nb as dz
from dezoomify_nb.cache import TileCache
from dezoomify_nb.testing import TileServer, make_test_image

FAST = {"min_interval": 0, "retry_delay": 0.01}


def tile_requests(server):
    return [p for p in server.requests if is_tile(p)]


def stored_tiles(cache_dir: Path) -> list[Path]:
    return [p for p in (cache_dir / "tiles").rglob("*") if p.is_file() and p.suffix not in (".404", ".partial")]


def test_second_run_fetches_nothing(server, tmp_path):
    cache = tmp_path / "cache"
    img = dz.open(server.url("dzi-png"), cache=cache, **FAST)
    img.save(tmp_path / "a.png", progress=False)
    assert len(tile_requests(server)) == 12 and len(stored_tiles(cache)) == 12
    server.reset_requests()
    img2 = dz.open(server.url("dzi-png"), cache=cache, **FAST)
    img2.save(tmp_path / "b.png", progress=False)
    assert tile_requests(server) == []
    np.testing.assert_array_equal(read(tmp_path / "b.png"), server.level_image("dzi-png", 0))


def test_resume_fetches_only_what_is_missing(server, tmp_path):
    cache = tmp_path / "cache"
    server.fail("image_files/10/2_", times=None, status=503)  # column 2 keeps failing
    img = dz.open(server.url("dzi-png"), cache=cache, retries=0, **FAST)
    with pytest.raises(dz.DownloadError) as info:
        img.save(tmp_path / "a.png", progress=False)
    assert info.value.failed == 3
    server.clear_faults()
    server.reset_requests()
    dz.open(server.url("dzi-png"), cache=cache, **FAST).save(tmp_path / "b.png", progress=False)
    assert sorted(tile_requests(server)) == sorted(f"/dzi-png/image_files/10/2_{r}.png" for r in range(3))
    np.testing.assert_array_equal(read(tmp_path / "b.png"), server.level_image("dzi-png", 0))


def test_404_is_remembered(server, tmp_path):
    cache = tmp_path / "cache"
    server.missing("image_files/10/1_1.png")
    for name in ("a.png", "b.png"):
        server.reset_requests()
        img = dz.open(server.url("dzi-png"), cache=cache, retries=0, **FAST)
        result = img.save(tmp_path / name, progress=False, allow_partial=True)
        assert len(result.failed) == 1
    assert tile_requests(server) == []  # the second run asked for nothing, not even the 404 tile


def test_lazy_reads_share_the_cache_across_processes(server, tmp_path):
    cache = tmp_path / "cache"
    img = dz.open(server.url("iiif2"), cache=cache, **FAST)
    window = img.to_dask()[100:400, 200:700]
    first = window.compute()
    n = len(tile_requests(server))
    assert n == 6
    server.reset_requests()
    np.testing.assert_array_equal(window.compute(), first)
    code = (
        "import dezoomify_nb as dz, numpy as np, sys;"
        f"a = dz.open({server.url('iiif2')!r}, cache={str(cache)!r}, min_interval=0).to_dask()[100:400, 200:700];"
        "np.save(sys.argv[1], a.compute())"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "w.npy")], check=True, timeout=120)
    assert tile_requests(server) == []
    np.testing.assert_array_equal(np.load(tmp_path / "w.npy"), server.level_image("iiif2", 0)[100:400, 200:700])


def test_offline_stitches_from_the_cache_when_the_server_is_gone(tmp_path):
    src = make_test_image(600, 400, seed=9)
    cache = tmp_path / "cache"
    with TileServer(src, tile_size=128) as gone:
        url = gone.url("iiif3")
        dz.open(url, cache=cache, **FAST).save(tmp_path / "online.png", progress=False)
        expected = gone.level_image("iiif3", 0)
    img = dz.open(url, cache=cache, offline=True)
    img.save(tmp_path / "offline.png", progress=False)
    np.testing.assert_array_equal(read(tmp_path / "offline.png"), expected)
    with pytest.raises(dz.DownloadError):  # a level never fetched is not in the cache
        img.save(tmp_path / "lower.png", level=1, progress=False)


def test_offline_cli(tmp_path, capsys):
    from dezoomify_nb.cli import main

    src = make_test_image(300, 200, seed=4)
    with TileServer(src, tile_size=64) as gone:
        url = gone.url("zoomify")
        assert main(["-l", "-i", "0", "-c", str(tmp_path / "c"), url, str(tmp_path / "a.png")]) == 0
    assert main(["-l", "--offline", "-c", str(tmp_path / "c"), url, str(tmp_path / "b.png")]) == 0
    np.testing.assert_array_equal(read(tmp_path / "a.png"), read(tmp_path / "b.png"))
    assert main(["-l", "--offline", url, str(tmp_path / "c.png")]) == 1
    assert "--offline needs --tile-cache" in capsys.readouterr().err


def test_images_never_mix_in_one_cache(server, tmp_path):
    cache = tmp_path / "cache"
    for kind in ("dzi-png", "dzi-jpg"):
        dz.open(server.url(kind), cache=cache, **FAST).save(tmp_path / f"{kind}.png", progress=False)
    assert len(list((cache / "sources").glob("*.json"))) == 2
    assert len(list((cache / "tiles").iterdir())) == 2
    server.reset_requests()
    for kind in ("dzi-png", "dzi-jpg"):
        got = dz.open(server.url(kind), cache=cache, **FAST).to_dask().compute()
        expected = server.level_image(kind, 0)
        assert np.abs(got.astype(int) - expected.astype(int)).mean() < (0.001 if kind == "dzi-png" else 6)
    assert tile_requests(server) == []


def test_any_zarr_store_and_damaged_entries(server, tmp_path):
    store = zarr.storage.MemoryStore()
    img = dz.open(server.url("dzi-png"), cache=store, **FAST)
    img.to_dask().compute()
    cache = TileCache(store)
    keys = [k for k in store._store_dict if k.startswith("tiles/")]
    assert len(keys) == 12
    store._store_dict[keys[0]] = store._store_dict[keys[0]][:10]  # damage one tile
    server.reset_requests()
    np.testing.assert_array_equal(img.to_dask().compute(), server.level_image("dzi-png", 0))
    assert len(tile_requests(server)) == 1
    assert cache == TileCache.of(store)


def test_unusable_cache_dir_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(dz.CacheError):
        TileCache.of(tmp_path / "file")


def test_sigkill_mid_download_then_resume(tmp_path):
    """Kill -9 a CLI download half-way; the next run fetches only what is missing; no tile is damaged."""
    src = make_test_image(1536, 1024, seed=11)
    cache = tmp_path / "cache"
    with TileServer(src, latency=0.05) as server:
        url = server.url("dzi-png")
        cols, rows = server.tile_grid("dzi-png", 0)
        total = cols * rows  # 7 x 5 tiles of 254 px
        cmd = [sys.executable, "-m", "dezoomify_nb", "-l", "-n", "2", "-i", "0", "-c", str(cache), url,
               str(tmp_path / "killed.png")]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 60
        while len(tile_requests(server)) < 10 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.01)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        assert not (tmp_path / "killed.png").exists() or (tmp_path / "killed.png").stat().st_size == 0
        kept = stored_tiles(cache)
        assert 0 < len(kept) < total
        for tile in kept:  # every stored tile is whole
            with PILImage.open(tile) as im:
                im.load()
        server.reset_requests()
        done = subprocess.run([*cmd[:-1], str(tmp_path / "resumed.png")], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert len(tile_requests(server)) == total - len(kept)
        np.testing.assert_array_equal(read(tmp_path / "resumed.png"), server.level_image("dzi-png", 0))
