"""HTTP client cost per request: what each way of fetching tiles costs this process in CPU, and tiles/s.

Fetches the full-resolution tiles of the benchmark's tile tree from the static server (its own process),
with -n requests in flight, no decoding. Ways: ``sync-threads`` (our net layer: one ``httpx.Client`` shared
by a thread pool), ``httpx-async`` (``httpx.AsyncClient``), ``httpx-aiohttp`` (``httpx.AsyncClient`` on
the ``httpx-aiohttp`` transport), ``aiohttp`` (plain ``aiohttp.ClientSession``), and ``ours`` (the whole
``dezoomify_nb.net.fetch`` path, limiter included).

    .venv/bin/python bench/bench_http.py --latencies 0,20 --parallelism 16,64
"""

from __future__ import annotations

import argparse
import asyncio
import math
import resource
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import contenders as C  # noqa: E402
from bench_download import CACHE, StaticServer  # noqa: E402

WAYS = ("sync-threads", "httpx-async", "httpx-aiohttp", "aiohttp", "ours")


def cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def run(way: str, urls: list[str], n: int) -> None:
    import httpx

    if way == "sync-threads":
        limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
        with httpx.Client(limits=limits) as client, ThreadPoolExecutor(n) as pool:
            list(pool.map(lambda u: client.get(u).content, urls))
        return
    if way == "ours":
        from dezoomify_nb.net import NetConfig, fetch
        from dezoomify_nb.net.loop import run as run_io

        cfg = NetConfig(parallelism=n, min_interval=0)

        async def all_ours() -> None:
            await asyncio.gather(*(fetch(u, cfg) for u in urls))

        run_io(all_ours())
        return

    async def main() -> None:
        sem = asyncio.Semaphore(n)
        if way == "aiohttp":
            import aiohttp

            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=n)) as session:
                async def one(u: str) -> None:
                    async with sem, session.get(u) as r:
                        await r.read()

                await asyncio.gather(*(one(u) for u in urls))
            return
        limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
        transport = None
        if way == "httpx-aiohttp":
            from httpx_aiohttp import AiohttpTransport

            transport = AiohttpTransport(limits=limits)
        async with httpx.AsyncClient(limits=limits, transport=transport) as client:
            async def one(u: str) -> None:
                async with sem:
                    await (await client.get(u)).aread()

            await asyncio.gather(*(one(u) for u in urls))

    asyncio.run(main())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=16384)
    p.add_argument("--latencies", default="0,20")
    p.add_argument("--parallelism", default="16,64")
    p.add_argument("--ways", default=",".join(WAYS))
    args = p.parse_args()
    root = C.tile_tree(args.size, CACHE)
    top = C.top_level(args.size)
    cols = math.ceil(args.size / C.TILE)
    print(f"{cols * cols} tiles of {args.size}x{args.size}; CPU ms/request is this process's only")
    print(f"{'way':<14} {'latency':>7} {'-n':>3} {'seconds':>8} {'tiles/s':>8} {'CPU ms/req':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        for latency in (float(x) for x in args.latencies.split(",")):
            server = StaticServer(root, latency, Path(tmp))
            urls = [f"{server.base}/{C.KIND}/image_files/{top}/{c}_{r}.jpg" for r in range(cols) for c in range(cols)]
            try:
                for n in (int(x) for x in args.parallelism.split(",")):
                    for way in args.ways.split(","):
                        c0, t0 = cpu(), time.perf_counter()
                        run(way, urls, n)
                        dt, dc = time.perf_counter() - t0, cpu() - c0
                        print(f"{way:<14} {latency:>5g}ms {n:>3} {dt:>8.2f} {len(urls) / dt:>8.0f} "
                              f"{1000 * dc / len(urls):>10.3f}", flush=True)
            finally:
                server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
