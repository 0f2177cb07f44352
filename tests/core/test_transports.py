"""Both HTTP transports (aiohttp, the default, and httpx) fail alike: same wording, hint and retry decision.

The hostile suite (tests/hostile/test_network.py) runs refused connections, DNS failures, timeouts,
redirect loops and TLS errors through both; here: servers that hang up, URLs sent as written, the
aiohttp-to-httpx naming of failures, and the client count of :func:`dezoomify_nb.net.clients.stats`.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator

import aiohttp
import pytest

from dezoomify_nb.errors import FetchError
from dezoomify_nb.net import NetConfig, aio, clients, fetch_sync
from dezoomify_nb.net.failures import network_failure
from dezoomify_nb.net.loop import run

FETCH = __import__("dezoomify_nb.net.fetch", fromlist=["fetch"])
TRANSPORTS = ["aiohttp", "httpx"]


def raw_server(answer: Callable[[socket.socket], None]) -> Iterator[tuple[str, list[int]]]:
    """A loopback socket server that reads each request and lets ``answer`` reply (or not) and hang up."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    accepted: list[int] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                accepted.append(1)
                conn.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                answer(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/tile.png", accepted
    finally:
        stop.set()
        thread.join(5)
        listener.close()


@pytest.fixture
def hangs_up() -> Iterator[tuple[str, list[int]]]:
    """Reads the request and closes the connection without a word."""
    yield from raw_server(lambda conn: None)


@pytest.fixture
def truncates() -> Iterator[tuple[str, list[int]]]:
    """Promises 1000 bytes, sends 10 and closes."""
    yield from raw_server(lambda conn: conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 1000\r\n\r\n0123456789"))


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("fixture", ["hangs_up", "truncates"])
def test_a_server_that_hangs_up_is_a_retried_protocol_error(request, waits, transport, fixture):
    url, accepted = request.getfixturevalue(fixture)
    with pytest.raises(FetchError) as info:
        fetch_sync(url, NetConfig(retries=1, retry_delay=0.01, min_interval=0, transport=transport))
    assert str(info.value).startswith(f"RemoteProtocolError while fetching {url}: ")
    assert info.value.status is None and info.value.attempts == 2 and len(waits) == 1
    # aiohttp retries a request on a reused connection that the server closed: at least one per attempt
    assert len(accepted) >= 2


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_connection_refused_is_retried_with_the_same_message(waits, transport):
    with socket.socket() as s:  # a port nobody listens on: bound, not listening, held (no other test takes it)
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/tile.png"
        with pytest.raises(FetchError) as info:
            fetch_sync(url, NetConfig(retries=2, retry_delay=0.01, min_interval=0, transport=transport))
    port = url.split(":")[2].split("/")[0]
    assert str(info.value) == f"could not connect to 127.0.0.1:{port}: connection refused ({url})"
    assert info.value.attempts == 3 and len(waits) == 2
    assert info.value.hint == f"Nothing answers at 127.0.0.1:{port}: check that the server runs and the port is right."


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_redirect_loop_is_not_retried(server, waits, transport):
    from dezoomify_nb.testing.tileserver import Response

    server.add_route("/loop-" + transport + "/", lambda s, path, h: Response(302, b"", headers={"Location": path}))
    url = server.base_url + "/loop-" + transport + "/x.png"
    with pytest.raises(FetchError) as info:
        fetch_sync(url, NetConfig(retries=3, min_interval=0, transport=transport))
    assert str(info.value).startswith(f"TooManyRedirects while fetching {url}")
    assert info.value.attempts == 1 and waits == []
    assert "redirects in a loop" in info.value.hint


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_urls_are_sent_as_written(server, transport):
    """Escapes are kept (a signed URL, ``%2F`` in a query); only what cannot go on the wire is quoted."""
    from dezoomify_nb.testing.tileserver import Response

    prefix = f"/as-written-{transport}/"
    server.add_route(prefix, lambda s, path, h: Response(200, path.encode()))
    cfg = NetConfig(retries=0, min_interval=0, transport=transport)
    sent = fetch_sync(server.base_url + prefix + "a b.bin?item=x%2Fy%20z&k=%7E&q=é", cfg)
    assert sent == (prefix + "a%20b.bin?item=x%2Fy%20z&k=%7E&q=%C3%A9").encode()


@pytest.mark.parametrize(("exc", "kind"), [
    (aiohttp.ConnectionTimeoutError("Connection timeout to host http://h/"), "ConnectTimeout"),
    (aiohttp.SocketTimeoutError("Timeout on reading data from socket"), "ReadTimeout"),
    (aiohttp.ServerTimeoutError("Connection timeout to host http://h/"), "ConnectTimeout"),  # aiohttp < 3.10
    (aiohttp.ServerTimeoutError("Timeout on reading data from socket"), "ReadTimeout"),
    (aiohttp.ServerDisconnectedError(), "RemoteProtocolError"),
    (aiohttp.ClientPayloadError("Response payload is not completed"), "RemoteProtocolError"),
    (aiohttp.ClientOSError(104, "Connection reset by peer"), "ReadError"),
])
def test_aiohttp_failures_get_the_httpx_names(exc, kind):
    assert aio._kind(exc) == kind
    failure = network_failure("http://h/x", kind, exc)
    assert failure.retry and str(failure.error).startswith(f"{kind} while fetching http://h/x: ")
    if "Timeout" in kind:
        assert failure.error.hint.startswith("The server is slow")


def test_aiohttp_sessions_are_counted_one_per_loop_and_config(server):
    cfg = NetConfig(min_interval=0, timeout=28.5)  # a config of its own: no session exists for it yet
    before = clients.stats()
    for x in range(3):
        fetch_sync(server.base_url + f"/generic/tile_{x}_0.png", cfg)
    after = clients.stats()
    assert after["clients_created"] - before["clients_created"] == 1  # the private I/O loop's session
    assert after["requests"] - before["requests"] == 3

    async def on_another_loop() -> bytes:
        return await FETCH.fetch(server.base_url + "/generic/tile_0_0.png", cfg)

    open_before = clients.stats()["clients_open"]
    # a second loop (on a thread of its own: this one may hold a loop already): a second session, closed
    # when asyncio.run() ends the loop
    got: list[bytes] = []
    other = threading.Thread(target=lambda: got.append(asyncio.run(on_another_loop())))
    other.start()
    other.join(30)
    assert got[0].startswith(b"\x89PNG")
    final = clients.stats()
    assert final["clients_created"] - after["clients_created"] == 1
    assert final["clients_open"] == open_before


def test_max_idle_per_host_zero_turns_keep_alive_off():
    async def connectors():
        kept = aio.new_session(NetConfig())
        fresh = aio.new_session(NetConfig(max_idle_per_host=0))
        try:
            return kept.connector.force_close, fresh.connector.force_close
        finally:
            await kept.close()
            await fresh.close()

    assert run(connectors()) == (False, True)
