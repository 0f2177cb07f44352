"""The network layer against the loopback server: retry policy, Retry-After, hints, per-host limits."""

import asyncio
import time

import pytest

from dezoomify_nb.errors import FetchError
from dezoomify_nb.net import NetConfig, fetch, fetch_sync
from dezoomify_nb.net.clients import get_limiter
from dezoomify_nb.net.loop import run


def tile(server):
    return server.base_url + "/generic/tile_0_0.png"


@pytest.mark.parametrize("status", [500, 502, 503, 408, 429])
def test_transient_statuses_are_retried(server, waits, status):
    server.fail("tile_0_0", times=2, status=status)
    data = fetch_sync(tile(server), NetConfig(retries=2, retry_delay=1.0, min_interval=0))
    assert data.startswith(b"\x89PNG")
    assert server.count("tile_0_0") == 3
    assert len(waits) == 2 and waits[1] == pytest.approx(2 * waits[0])  # exponential backoff
    assert 1.0 <= waits[0] < 2.0  # spread per URL, between 1x and 2x the delay


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410])
def test_final_client_errors_are_not_retried(server, waits, status):
    server.fail("tile_0_0", times=5, status=status)
    with pytest.raises(FetchError) as info:
        fetch_sync(tile(server), NetConfig(retries=3, min_interval=0))
    assert info.value.status == status and info.value.attempts == 1
    assert server.count("tile_0_0") == 1 and waits == []


def test_retry_after_is_honoured(server, waits):
    server.fail("tile_0_0", times=1, status=429, retry_after=7)
    fetch_sync(tile(server), NetConfig(retries=1, retry_delay=0.01, min_interval=0))
    assert waits == [7.0]


def test_403_suggests_a_referer(server):
    server.fail("tile_0_0", times=1, status=403)
    with pytest.raises(FetchError) as info:
        fetch_sync(tile(server), NetConfig(retries=0, min_interval=0))
    assert "Referer" in info.value.hint


def test_offline_never_touches_the_network(server):
    with pytest.raises(FetchError, match="offline"):
        fetch_sync(tile(server), NetConfig(offline=True))
    assert server.count("tile_0_0") == 0


def test_limits_are_per_host(server):
    cfg = NetConfig(parallelism=2, min_interval=0)

    async def limiters():
        return get_limiter(cfg, "a:1"), get_limiter(cfg, "a:1"), get_limiter(cfg, "b:1")

    a1, a2, b = run(limiters())
    assert a1 is a2 and a1 is not b


def test_parallelism_per_host_against_two_names_of_one_server(server):
    """127.0.0.1 and localhost are two hosts: each gets -n connections, not -n in all."""
    server.delay("generic/", 0.1)
    cfg = NetConfig(parallelism=2, min_interval=0)
    urls = [f"http://{host}:{server.port}/generic/tile_{x}_0.png" for host in ("127.0.0.1", "localhost")
            for x in range(3)]

    async def all_of_them():
        return await asyncio.gather(*(fetch(u, cfg) for u in urls))

    assert len(run(all_of_them())) == 6
    assert 2 < server.max_in_flight <= 4  # over -n 2 in all, at most -n 2 per host


def test_min_interval_paces_request_starts(server, monkeypatch):
    from dezoomify_nb.net.clients import Limiter

    starts = []
    real = Limiter.pace

    async def spy(self):
        await real(self)
        starts.append(time.monotonic())  # when the request is let through

    monkeypatch.setattr(Limiter, "pace", spy)
    cfg = NetConfig(parallelism=8, min_interval=0.05)

    async def burst():
        await asyncio.gather(*(fetch(server.base_url + f"/generic/tile_{x}_0.png", cfg) for x in range(3)))

    run(burst())
    offsets = [t - starts[0] for t in starts]  # slots at fixed intervals: the i-th not before i x 50 ms
    assert len(starts) == 3 and all(o >= 0.049 * i for i, o in enumerate(offsets)), offsets


def test_byte_ranges_over_http_and_local_files(server, tmp_path):
    from dezoomify_nb.net.fetch import with_range

    blob = bytes(range(256)) * 64
    base = server.serve_files("/ranged/", {"f.bin": blob})
    flat = server.serve_files("/flat/", {"f.bin": blob}, ranges=False)
    (tmp_path / "f.bin").write_bytes(blob)
    cfg = NetConfig(retries=0, min_interval=0, local_root=str(tmp_path.resolve()))
    for url in (base + "/f.bin", str(tmp_path / "f.bin")):
        assert fetch_sync(with_range(url, 10, 19), cfg) == blob[10:20]
        assert fetch_sync(with_range(url, 0, len(blob) - 1), cfg) == blob
    assert server.headers_seen[-1]["Range"] == f"bytes=0-{len(blob) - 1}"
    with pytest.raises(FetchError, match="ignores HTTP Range"):
        fetch_sync(with_range(flat + "/f.bin", 0, 9), cfg)
    with pytest.raises(FetchError, match="ends before"):
        fetch_sync(with_range(str(tmp_path / "f.bin"), 0, len(blob)), cfg)
    with pytest.raises(ValueError):
        with_range("x", 5, 4)


@pytest.mark.parametrize("transport", ["httpx", "aiohttp"])
def test_transports_give_the_same_bytes_and_errors(server, waits, transport):
    from dezoomify_nb.net.fetch import with_range

    cfg = NetConfig(retries=2, retry_delay=1.0, min_interval=0, transport=transport)
    direct = server.base_url + "/generic/tile_1_0.png"
    assert fetch_sync(direct, cfg) == fetch_sync(direct, NetConfig(min_interval=0))
    server.fail("tile_0_0", times=1, status=503, retry_after=3)
    assert fetch_sync(tile(server), cfg).startswith(b"\x89PNG") and waits == [3.0]
    server.fail("tile_0_0", times=1, status=404)
    with pytest.raises(FetchError) as info:
        fetch_sync(tile(server), cfg)
    assert info.value.status == 404 and info.value.attempts == 1
    blob = bytes(range(256)) * 8
    base = server.serve_files("/ranged-" + transport + "/", {"f.bin": blob})
    assert fetch_sync(with_range(base + "/f.bin", 5, 9), cfg) == blob[5:10]


def test_aiohttp_transport_decodes_in_a_worker_and_retries_bad_content(server, waits):
    cfg = NetConfig(retries=1, retry_delay=0.01, min_interval=0, transport="aiohttp")
    server.corrupt("tile_0_0", times=1)
    seen = []

    def check(data: bytes) -> int:
        import io
        import threading

        from PIL import Image

        seen.append(threading.current_thread().name)
        Image.open(io.BytesIO(data)).load()
        return 1

    assert run(fetch(tile(server), cfg, check=check)) == 1
    assert server.count("tile_0_0") == 2 and all(name.startswith("dezoomify_nb-fetch") for name in seen)


def test_unreachable_host_with_aiohttp_is_a_fetch_error(waits):
    with pytest.raises(FetchError) as info:
        fetch_sync("http://127.0.0.1:9/nothing.png", NetConfig(retries=0, transport="aiohttp", connect_timeout=2))
    assert info.value.status is None and info.value.hint
