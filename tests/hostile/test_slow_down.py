"""A server that answers 429 when pushed: the client halves its parallel requests and paces itself
(additive increase, multiplicative decrease), ends with every tile, and says so once."""

from __future__ import annotations

import http.server
import logging
import os
import subprocess
import sys
import threading
import time
import urllib.request

import numpy as np
import PIL.Image
import pytest

import dezoomify_nb as dz
from dezoomify_nb.testing.tileserver import TileServer

from .conftest import FAST_API

TRANSPORTS = ["aiohttp", "httpx"]
#: the doorman: at most this many tile requests in flight, and at most one new one per this many seconds
MAX_INFLIGHT = 3
MIN_GAP = 0.004


class _Doorman:
    """A loopback front of ``origin`` that answers 429 (``status``) above ``MAX_INFLIGHT`` requests in flight
    or more than one per ``MIN_GAP``; counts what it refused."""

    def __init__(self, origin: str, status: int = 429, retry_after: str | None = None) -> None:
        self.refused = self.served = 0
        lock = threading.Lock()
        state = {"inflight": 0, "last": 0.0}
        doorman = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                tile = "_files/" in self.path
                with lock:
                    now = time.monotonic()
                    busy = tile and (state["inflight"] >= MAX_INFLIGHT or now - state["last"] < MIN_GAP)
                    if busy:
                        doorman.refused += 1
                    else:
                        state["inflight"] += 1
                        state["last"] = now
                if busy:
                    self.send_response(status)
                    if retry_after is not None:
                        self.send_header("Retry-After", retry_after)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                try:
                    with urllib.request.urlopen(origin + self.path, timeout=10) as r:
                        body, ctype = r.read(), r.headers.get("Content-Type", "application/octet-stream")
                    time.sleep(0.01)  # a little service time: requests overlap
                finally:
                    with lock:
                        state["inflight"] -= 1 if not busy else 0
                        doorman.served += 1
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def origin():
    rng = np.random.default_rng(18)
    image = rng.integers(0, 256, size=(96, 128, 3), dtype=np.uint8)
    with TileServer(image, tile_size=18) as srv:  # dzi-png: 16-pixel tiles, 8 x 6 = 48 at full size
        yield srv, image


def _download(origin, transport, adaptive, status=429, retry_after=None):
    srv, image = origin
    door = _Doorman(srv.base_url, status, retry_after)
    try:
        path = srv.url("dzi-png")[len(srv.base_url):]
        options = {**FAST_API, "retries": 12, "retry_delay": 0.02, "parallelism": 16, "min_interval": 0.0}
        img = dz.open(door.url + path, transport=transport, adaptive=adaptive, **options)
        pixels = np.asarray(img.to_dask().compute())
        return pixels, image, door.refused
    finally:
        door.close()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_slow_down_on_429_gets_every_tile_with_far_fewer_refusals(origin, transport, caplog):
    with caplog.at_level(logging.INFO, logger="dezoomify_nb"):
        pixels, image, adaptive_refused = _download(origin, transport, adaptive=True)
    assert np.array_equal(pixels[..., :3], image)
    told = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING
            and r.getMessage().startswith("server asks to slow down")]
    assert len(told) == 1 and told[0].startswith("server asks to slow down: 16 → 8 parallel requests"), told
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="dezoomify_nb"):
        _, _, fixed_refused = _download(origin, transport, adaptive=False)
    assert not any("slow down" in r.getMessage() for r in caplog.records)
    print(f"{transport}: 429s adaptive={adaptive_refused} fixed={fixed_refused}")
    assert adaptive_refused * 3 <= fixed_refused, (adaptive_refused, fixed_refused)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_503_with_retry_after_slows_down_too(origin, transport, caplog):
    with caplog.at_level(logging.WARNING, logger="dezoomify_nb"):
        pixels, image, refused = _download(origin, transport, adaptive=True, status=503, retry_after="0")
    assert np.array_equal(pixels[..., :3], image)
    assert refused > 0
    assert sum(r.getMessage().startswith("server asks to slow down: 16 → 8") for r in caplog.records) == 1


def test_cli_says_so_once(origin, tmp_path):
    srv, image = origin
    door = _Doorman(srv.base_url)
    try:
        out = tmp_path / "o.png"
        run = subprocess.run(
            [sys.executable, "-m", "dezoomify_nb", "-n", "16", "-i", "0ms", "--retry-delay", "20ms", "-r", "12",
             door.url + srv.url("dzi-png")[len(srv.base_url):], str(out)],
            capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": os.getcwd()})
    finally:
        door.close()
    assert run.returncode == 0, run.stderr
    assert run.stderr.count("server asks to slow down: 16 → 8 parallel requests") == 1, run.stderr
    assert "Retrying" not in run.stderr  # the retries of a slow-down are not one line each
    assert np.array_equal(np.asarray(PIL.Image.open(out).convert("RGB")), image)
