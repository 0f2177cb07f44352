"""dask.distributed: a LocalCluster of 2 worker processes against the loopback server; pixels compared.

Tiles must be fetched and decoded on the workers (each worker process keeps one HTTP client per config),
give exactly what the local scheduler gives, share one tile cache, respect a cluster-wide request cap,
and bulk downloads spread images over the workers.
"""

import subprocess
import sys

import distributed
import numpy as np
import pytest
import tifffile
from PIL import Image

import dezoomify_nb as dz
from dezoomify_nb import bulk
from dezoomify_nb.net import clients

KIND = "iiif2"  # lossless tiles: every output must equal the source exactly
FAST = {"min_interval": 0, "retry_delay": 0.01}


def read(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def is_tile(path: str) -> bool:
    return "/default." in path


@pytest.fixture(scope="module")
def cluster():
    # no dashboard; the scheduler's HTTP server (/metrics, /health) on a free port: by default it takes 8787,
    # and when another cluster (another pytest-xdist worker, a notebook) has it, dask warns (an error here)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=2, processes=True, dashboard_address=None,
                                  scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                                  worker_dashboard_address=None) as lc, distributed.Client(lc) as client:
        yield client


def worker_stats(client):
    return client.run(clients.stats)


def test_to_dask_on_the_cluster_equals_the_local_scheduler(server, source, cluster):
    img = dz.open(server.url(KIND), **FAST)
    arr = img.to_dask(0, chunks=(256, 256, 3))  # one tile per task: the most unpickling of the store
    local = arr.compute(scheduler="threads")
    server.reset_requests()
    before = worker_stats(cluster)
    on_cluster = cluster.compute(arr).result()
    after = worker_stats(cluster)
    np.testing.assert_array_equal(on_cluster, local)
    np.testing.assert_array_equal(on_cluster, source)
    fetched = {w: after[w]["requests"] - before[w]["requests"] for w in after}
    assert sum(fetched.values()) == img.levels[0].n_tiles == server.count(is_tile)  # on the workers, once each


def test_each_worker_keeps_one_client(server, cluster):
    # a config of its own: every client it gets was built during this test
    img = dz.open(server.url(KIND), timeout=29.5, **FAST)
    arr = img.to_dask(0, chunks=(256, 256, 3))
    before = worker_stats(cluster)
    cluster.compute(arr).result()
    cluster.compute(arr[:300, :300]).result()
    after = worker_stats(cluster)
    built = {w: after[w]["clients_created"] - before[w]["clients_created"] for w in after}
    worked = {w: after[w]["requests"] > before[w]["requests"] for w in after}
    assert len(after) == 2 and any(worked.values())
    for w in after:  # 12 + 2 tasks, 2 worker processes: one client (one pool per host) per process
        assert built[w] == (1 if worked[w] else 0), (built, worked)


def test_a_window_fetches_only_its_tiles(server, source, cluster):
    img = dz.open(server.url(KIND), **FAST)
    server.reset_requests()
    window = cluster.compute(img.to_dask(0)[300:500, 600:900]).result()
    np.testing.assert_array_equal(window, source[300:500, 600:900])
    assert server.count(is_tile) == 1 * 2  # y 300-500: tile row 1; x 600-900: tile columns 2 and 3


def test_save_fetches_on_the_workers(server, source, cluster, tmp_path):
    img = dz.open(server.url(KIND), **FAST)
    before, here = worker_stats(cluster), clients.stats()["requests"]
    result = img.save(tmp_path / "out.png", client=cluster, progress=False)
    after = worker_stats(cluster)
    np.testing.assert_array_equal(read(result.path), source)
    on_workers = sum(after[w]["requests"] - before[w]["requests"] for w in after)
    assert on_workers == img.levels[0].n_tiles
    assert clients.stats()["requests"] - here <= 1  # at most the first tile, peeked here for its ICC profile
    assert result.ok and result.tiles == img.levels[0].n_tiles


def test_pyramid_writer_on_the_cluster(server, source, cluster, tmp_path):
    img = dz.open(server.url(KIND), **FAST)
    before = worker_stats(cluster)
    img.save(tmp_path / "out.tif", client=cluster, progress=False)
    after = worker_stats(cluster)
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "out.tif"), source)
    assert sum(after[w]["requests"] - before[w]["requests"] for w in after) >= img.levels[0].n_tiles


def test_failures_on_workers_are_reported(server, source, cluster, tmp_path):
    img = dz.open(server.url(KIND), retries=0, **FAST)
    server.missing("/512,256,256,256/")
    result = img.save(tmp_path / "partial.png", client=cluster, progress=False, allow_partial=True)
    assert len(result.failed) == 1 and "512,256,256,256" in result.failed[0][0]
    got = read(result.path).copy()
    assert not got[256:512, 512:768].any()  # the missing tile is left black, the rest is there
    got[256:512, 512:768] = source[256:512, 512:768]
    np.testing.assert_array_equal(got, source)


@pytest.mark.parametrize("cap", [None, 2])
def test_cluster_parallelism_caps_requests_across_workers(server, source, cluster, cap):
    server.delay("/default.", 0.05)
    img = dz.open(server.url(KIND), parallelism=8, cluster_parallelism=cap, **FAST)
    server.reset_requests()
    got = cluster.compute(img.to_dask(0, chunks=(512, 512, 3))).result()
    np.testing.assert_array_equal(got, source)
    if cap is None:  # 2 processes x 2 threads x 4 tiles per chunk: more than 2 at once without the cap
        assert server.max_in_flight > 2
    else:
        assert server.max_in_flight <= cap


def test_workers_share_one_tile_cache(server, source, cluster, tmp_path):
    cache = tmp_path / "cache"
    img = dz.open(server.url(KIND), cache=cache, **FAST)
    server.reset_requests()
    np.testing.assert_array_equal(cluster.compute(img.to_dask(0, chunks=(256, 512, 3))).result(), source)
    assert server.count(is_tile) == img.levels[0].n_tiles  # each tile fetched once, by some worker
    assert len(list((cache / "tiles").rglob("*"))) > img.levels[0].n_tiles  # tiles written by both workers
    server.reset_requests()
    again = cluster.compute(img.to_dask(0)).result()
    offline = dz.open(server.url(KIND), cache=cache, offline=True).to_dask(0).compute(scheduler="threads")
    assert server.count(is_tile) == 0
    np.testing.assert_array_equal(again, source)
    np.testing.assert_array_equal(offline, source)


def test_bulk_spreads_images_over_the_cluster(server, source, cluster, tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text(f"{server.url('iiif2')} first\n{server.url('dzi-png')} second\n{server.url('iiif3')}\n")
    images = list(dz.open(listing, **FAST))
    lines = []
    (tmp_path / "out").mkdir()
    summary = bulk.save_all(images, client=cluster, outfile=tmp_path / "out" / "page.png", report=lines.append)
    assert summary.ok and summary.done == 3, lines
    for n, item in enumerate(summary.items, 1):
        assert item.path == tmp_path / "out" / f"page_{n:04d}.png"
        np.testing.assert_array_equal(read(item.path), source)
    assert [it.title for it in summary.items][:2] == ["first", "second"]
    assert lines[-1] == summary.describe()
    (tmp_path / "out" / "page_0002.png").unlink()  # a second run skips the complete outputs, redoes the rest
    again = bulk.save_all(images, client=cluster, outfile=tmp_path / "out" / "page.png", report=lines.append)
    assert again.ok and (again.skipped, again.done) == (2, 1), lines
    np.testing.assert_array_equal(read(tmp_path / "out" / "page_0002.png"), source)


def test_cli_scheduler_option(server, source, cluster, tmp_path):
    address = cluster.scheduler.address
    out = tmp_path / "cli.png"
    proc = subprocess.run([sys.executable, "-m", "dezoomify_nb", "--scheduler", address, "-i", "0ms", "--largest",
                           server.url(KIND), str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_array_equal(read(out), source)
    listing = tmp_path / "list.txt"
    listing.write_text(f"{server.url('iiif2')}\n{server.url('iiif3')}\n")
    proc = subprocess.run([sys.executable, "-m", "dezoomify_nb", "--bulk", str(listing), "--scheduler", address,
                           "-i", "0ms", str(tmp_path / "b.png")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for n in (1, 2):
        np.testing.assert_array_equal(read(tmp_path / f"b_{n:04d}.png"), source)
