"""Time taken by the server: ``--timeout`` is the whole request's deadline (connect, headers, body), so a
server dripping one byte every half second fails after it, for metadata and tiles, on both transports;
``Retry-After`` values that are invalid or huge never stall the retries."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from dezoomify_nb.errors import FetchError
from dezoomify_nb.net import NetConfig, fetch_sync
from dezoomify_nb.net.failures import MAX_RETRY_AFTER, parse_retry_after

from .conftest import FAST_CLI
from .harness import run_isolated
from .rawhttp import RawServer, drip, head, respond

TRANSPORTS = ["aiohttp", "httpx"]
DZI = (b'<?xml version="1.0"?><Image xmlns="http://schemas.microsoft.com/deepzoom/2008" Format="png" '
       b'Overlap="0" TileSize="256"><Size Width="512" Height="512"/></Image>')
TIMEOUT = 1.0
#: how late after --timeout a request may end (one drip interval, and a loaded machine)
SLACK = 1.2


@pytest.fixture(scope="module")
def raw():
    server = RawServer()
    yield server
    server.close()


def _drip_body(out, path):
    """Headers at once, then the body of a Deep Zoom descriptor one byte every 0.5 s."""
    head(out, 200, [("Content-Type", "application/xml"), ("Content-Length", str(len(DZI)))])
    drip(out, DZI)


def _drip_headers(out, path):
    """Even the status line and headers come one byte every 0.5 s."""
    drip(out, b"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nX-Padding: " + b"x" * 200 + b"\r\n\r\n" + DZI)


def _drip_tiles(out, path):
    """A healthy descriptor, then tiles whose bodies drip."""
    if path.endswith(".dzi"):
        respond(out, 200, DZI, [("Content-Type", "application/xml")])
    else:
        head(out, 200, [("Content-Type", "image/png"), ("Content-Length", "100000")])
        drip(out, b"\x89PNG\r\n\x1a\n" + b"\0" * 100)


_TIMED = """
import json, time, dezoomify_nb as dz
from dezoomify_nb.net import NetConfig, fetch_sync
opts = dict(transport={transport!r}, retries=0, min_interval=0, timeout={timeout}, connect_timeout=3)
out = {{}}
def timed(name, call):
    start = time.monotonic()
    try:
        call()
        out[name] = ["no error", 0]
    except dz.DezoomifyError as e:
        out[name] = [str(e), time.monotonic() - start]
img = dz.open({tiles!r}, **opts)  # first: the imports and the client are not timed below
for name, url in {metadata!r}:
    timed(name, lambda: dz.open(url, dezoomer="deepzoom", **opts))
timed("tile", lambda: fetch_sync(img.levels[0].tile_url(0, 0), NetConfig(**opts)))
timed("image", lambda: img.to_dask()[:10, :10].compute())  # the same through the lazy store
print(json.dumps(out))
"""


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_dripping_servers_fail_after_the_deadline(raw, transport):
    metadata = [("body", raw.route(f"/drip-body-{transport}/", _drip_body) + "image.dzi"),
                ("headers", raw.route(f"/drip-headers-{transport}/", _drip_headers) + "image.dzi")]
    tiles = raw.route(f"/drip-tiles-{transport}/", _drip_tiles) + "image.dzi"
    code = _TIMED.format(transport=transport, timeout=TIMEOUT, metadata=metadata, tiles=tiles)
    run = run_isolated(code=code, rss_mb=400, seconds=40)
    run.assert_contained(rss_mb=400)
    results = json.loads(run.stdout.strip().splitlines()[-1])
    for name in ("body", "headers", "tile", "image"):
        message, seconds = results[name]
        assert f"within --timeout {TIMEOUT:g}s" in message, (name, message)
        if name != "image":
            assert TIMEOUT - 0.05 <= seconds < TIMEOUT + SLACK, (name, seconds)
        else:  # (its time includes the first import of dask and zarr; it must only not hang)
            assert seconds < 10, seconds


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_dripping_metadata_through_the_cli(raw, transport, tmp_path):
    url = raw.route(f"/drip-cli-{transport}/", _drip_body) + "image.dzi"
    run = run_isolated([*FAST_CLI, "--transport", transport, "--timeout", "1s", url, str(tmp_path / "o.png")],
                       rss_mb=400, seconds=30)
    run.assert_contained(rss_mb=400)
    assert "Timeout while fetching" in run.one_error_line() and "--timeout 1s" in run.stderr
    assert "hint: The server is slow: try a longer --timeout" in run.stderr
    assert run.returncode != 0


# --- Retry-After ----------------------------------------------------------------------------------

def _http_date(delta: timedelta) -> str:
    return format_datetime(datetime.now(UTC) + delta, usegmt=True)


@pytest.mark.parametrize(("value", "seconds"), [
    ("3", 3.0), (" 7 ", 7.0), ("2.5", 2.5), ("0", 0.0),
    ("99999999999", MAX_RETRY_AFTER), ("1" * 12, MAX_RETRY_AFTER),
    (timedelta(days=3650), MAX_RETRY_AFTER), ("Fri, 31 Dec 9999 23:59:59 GMT", MAX_RETRY_AFTER),
    (-timedelta(days=1), 0.0),  # dates from now, made in the test: ids made at collection time differ
    # between pytest-xdist workers when a second ticks (their collections must be equal)
    ("nan", None), ("NaN", None), ("inf", None), ("-inf", None), ("Infinity", None), ("-1", None),
    ("1e9", None), ("1e309", None), ("0x10", None), ("garbage", None), ("", None), ("   ", None),
    ("1" * 400, None), ("Fri, 31 Dec 99999 23:59:59 GMT", None), ("Mon, 99 Foo 2020 99:99:99 GMT", None),
])
def test_retry_after_values(value, seconds):
    got = parse_retry_after(_http_date(value) if isinstance(value, timedelta) else value)
    if seconds == MAX_RETRY_AFTER or seconds is None:
        assert got == seconds
    else:
        assert got == pytest.approx(seconds, abs=1.0)


def _once_then_ok(value: str):
    """503 with ``Retry-After: value`` on the first request of each path, then ``ok``."""
    seen: set[str] = set()
    lock = threading.Lock()

    def handler(out, path):
        with lock:
            first = path not in seen
            seen.add(path)
        if first:
            respond(out, 503, b"busy", [("Retry-After", value)])
        else:
            respond(out, 200, b"ok")

    return handler


_INVALID = ["nan", "inf", "-5", "garbage", "1e309", "Infinity", "Fri, 31 Dec 99999 23:59:59 GMT"]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_invalid_retry_after_never_stalls(raw, transport):
    """Against a real server: each value is ignored and the retry comes after --retry-delay (50 ms).

    The adaptive slow-down (which paces the host further after each 503) is off: its pacing is tested in
    test_slow_down; here only the Retry-After value decides the wait."""
    config = NetConfig(transport=transport, retries=1, retry_delay=0.05, min_interval=0, timeout=5,
                       adaptive=False)
    start = time.monotonic()
    for i, value in enumerate(_INVALID):
        url = raw.route(f"/retry-after-{transport}-{i}/", _once_then_ok(value)) + "tile.png"
        assert fetch_sync(url, config) == b"ok"
    assert time.monotonic() - start < 0.2 * len(_INVALID) + 1


@pytest.mark.parametrize("value", ["99999999999", "Fri, 31 Dec 9999 23:59:59 GMT", "86400"])
def test_huge_retry_after_is_clamped(raw, waits, value):
    url = raw.route(f"/retry-after-huge-{abs(hash(value))}/", _once_then_ok(value)) + "tile.png"
    assert fetch_sync(url, NetConfig(retries=1, retry_delay=0.05, min_interval=0)) == b"ok"
    assert waits == [MAX_RETRY_AFTER]


def test_retry_after_on_the_last_attempt_is_not_waited(raw, waits):
    url = raw.route("/retry-after-last/", lambda out, path: respond(out, 503, b"busy", [("Retry-After", "30")]))
    with pytest.raises(FetchError) as info:
        fetch_sync(url + "tile.png", NetConfig(retries=0, min_interval=0))
    assert info.value.status == 503 and waits == []
