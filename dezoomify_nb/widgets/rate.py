"""How fast this image's server answers, measured the way the download will meet it.

A download's duration is set by the time one tile request takes on a warm connection (the latency),
the pacing (``min_interval``) and the requests in flight (``parallelism``), or by the CPU when tiles come
faster than they decode and encode. The preview's own fetch cannot tell the latency: it is one or a few
tiles fetched at once, on connections (and, first of all, a client) made for them, so its time is mostly
setup. :func:`probe` therefore asks a few tiles of the next level up *after* the preview (the connections
are warm then, as they stay during a download), in two waves of at most ``parallelism`` tiles, each timed
from its wave's start less the pacing it had to wait, and takes the quicker wave's median (the first tiles of
a level may cost a server one-off work: opening the file, a cold cache); it also times the tiles' decode. A finished download gives a better measure still: :func:`from_download` reads the latency the
download behaved as if it had (what :func:`~dezoomify_nb.widgets.plan.estimate` turns back into seconds).
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import DezoomifyError
from ..lazy.decode import decode_tile
from ..lazy.store import TilePyramidStore
from ..net import loop

if TYPE_CHECKING:
    from ..api import ZoomableImage

#: tiles asked by a probe (at most; fewer when the image has fewer), in waves of at most :data:`WAVE`
PROBE_TILES = 8
WAVE = 4


@dataclass(frozen=True)
class Rate:
    """A measure of one image's server: ``latency`` seconds per tile request on a warm connection (its
    answer's decode included), ``decode`` CPU seconds per tile, from ``tiles`` tiles (``source``: "probe"
    or "download")."""

    latency: float
    decode: float = 0.0
    tiles: int = 0
    source: str = "probe"


def net_seconds(n: int, latency: float, parallelism: int, interval: float) -> float:
    """Seconds to fetch ``n`` tiles, ``parallelism`` at a time, starts ``interval`` apart at least: the first
    answer after ``latency``, then one every ``max(interval, latency / parallelism)``."""
    if n <= 0:
        return 0.0
    return latency + (n - 1) * max(interval, latency / max(1, min(parallelism, n)))


def from_download(tiles: int, seconds: float, parallelism: int, interval: float) -> Rate:
    """The latency with which :func:`net_seconds` gives the ``seconds`` a download of ``tiles`` took
    (everything it met, the CPU included, counted in it)."""
    p = max(1, min(parallelism, tiles))
    paced = seconds - (tiles - 1) * interval  # the pacing bound the download: latency / p <= interval
    latency = paced if paced > 0 and paced / p <= interval else seconds / (1 + (tiles - 1) / p)
    return Rate(max(latency, 1e-4), 0.0, tiles, "download")


def _probe_level(img: ZoomableImage, preview_level: int | None) -> int:
    """The level probed: the first above the preview's with :data:`PROBE_TILES` tiles (else the largest)."""
    levels = img.levels
    start = len(levels) - 1 if preview_level is None else preview_level
    for k in range(start, -1, -1):
        if levels[k].n_tiles >= PROBE_TILES:
            return k
    return 0


def probe(img: ZoomableImage, preview_level: int | None) -> Rate | None:
    """Measure the latency and the decode time (see the module docstring); None when no tile came."""
    k = _probe_level(img, preview_level)
    lv = img.levels[k]
    cells = [(c, r) for r in range(lv.rows) for c in range(lv.cols)][:PROBE_TILES]
    net = img.net
    wave = max(1, min(net.parallelism, WAVE, len(cells)))
    # no tile cache: what is timed is the server; every tile is asked of it
    store = TilePyramidStore(img.image, net, mode=img.mode, on_error="raise", token=f"probe-{uuid.uuid4().hex}")

    async def timed(start: float, col: int, row: int) -> tuple[float, bytes | None]:
        data, _ = await store.fetch_tile(k, col, row, decode=False)
        return time.monotonic() - start, data

    async def run() -> list[list[tuple[float, bytes | None]]]:
        waves = []
        for i in range(0, len(cells), wave):
            await asyncio.sleep(net.min_interval)  # the pacing of an earlier request is over
            start = time.monotonic()
            got = await asyncio.gather(*(timed(start, c, r) for c, r in cells[i:i + wave]))
            waves.append([(t - j * net.min_interval, data) for j, (t, data) in enumerate(got)])  # less pacing
        return waves

    try:
        waves = loop.run(run(), timeout=max(30.0, net.timeout * 2))
    except (DezoomifyError, OSError, TimeoutError):
        return None
    # the quicker wave's median: a server's one-off work for the first tiles of a level (opening the file,
    # making the level: a test server's, an IIIF server's cold cache) is not what each tile will cost
    latency = min(statistics.median(max(t, 1e-4) for t, _ in got) for got in waves)
    decodes = []
    for (data, (col, row)) in zip((data for got in waves for _, data in got), cells, strict=False):
        if data is None:
            continue
        t0 = time.perf_counter()
        try:
            decode_tile(data, lv, col, row, img.mode, postprocessed=True)
        except Exception:  # noqa: BLE001 - an undecodable tile fails the download itself, not this measure
            continue
        decodes.append(time.perf_counter() - t0)
    decode = statistics.median(decodes[1:] or decodes) if decodes else 0.0  # the first pays for the decoder's setup
    return Rate(latency, decode, sum(map(len, waves)), "probe")
