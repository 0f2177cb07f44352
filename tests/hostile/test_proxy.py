"""Proxies from the environment: ``HTTP_PROXY`` / ``HTTPS_PROXY`` carry every request (metadata and tiles;
https through a ``CONNECT`` tunnel) and ``NO_PROXY`` bypasses them, with both transports. The proxy is a
tiny loopback forward proxy counting what passed through; the CLI runs in a subprocess with that
environment (as a user's shell gives it)."""

from __future__ import annotations

import http.server
import os
import select
import socket
import ssl
import subprocess
import sys
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

from .conftest import self_signed_cert

TRANSPORTS = ["aiohttp", "httpx"]
_HOP = {"connection", "proxy-connection", "keep-alive", "transfer-encoding", "te", "upgrade", "host"}
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _forward(handler: http.server.BaseHTTPRequestHandler, url: str) -> None:
    """GET ``url`` directly and answer ``handler`` with it (status, type, encoding, body)."""
    req = urllib.request.Request(url, headers={k: v for k, v in handler.headers.items() if k.lower() not in _HOP})
    try:
        with _DIRECT.open(req, timeout=10) as r:
            status, headers, body = r.status, r.headers, r.read()
    except urllib.error.HTTPError as exc:
        status, headers, body = exc.code, exc.headers, exc.read()
    handler.send_response(status)
    for name in ("Content-Type", "Content-Encoding"):
        if headers.get(name):
            handler.send_header(name, headers[name])
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def _serve(handler: type[http.server.BaseHTTPRequestHandler]) -> http.server.ThreadingHTTPServer:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


@pytest.fixture(scope="module")
def proxy():
    """A forward proxy: absolute-URI GETs and CONNECT tunnels; ``.seen`` lists (method, target)."""
    seen: list[tuple[str, str]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            if not self.path.startswith("http://"):
                self.send_error(400, "not a proxy request")
                return
            seen.append(("GET", self.path))
            _forward(self, self.path)

        def do_CONNECT(self) -> None:  # noqa: N802
            seen.append(("CONNECT", self.path))
            host, _, port = self.path.rpartition(":")
            upstream = socket.create_connection((host, int(port)), timeout=10)
            self.send_response(200, "Connection Established")
            self.end_headers()
            self.wfile.flush()
            conns = [self.connection, upstream]
            try:
                while True:
                    ready, _, _ = select.select(conns, [], [], 10)
                    if not ready:
                        break
                    for s in ready:
                        data = s.recv(65536)
                        if not data:
                            return
                        (upstream if s is self.connection else self.connection).sendall(data)
            finally:
                upstream.close()
                self.close_connection = True

        def log_message(self, *args: object) -> None:
            pass

    httpd = _serve(Handler)
    httpd.seen = seen  # type: ignore[attr-defined]
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def https_origin(_server, tmp_path_factory):
    """The shared tile server behind TLS (a throwaway self-signed certificate, made with openssl)."""
    d = tmp_path_factory.mktemp("proxy-tls")
    key, cert = self_signed_cert(d)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            _forward(self, _server.base_url + self.path)

        def log_message(self, *args: object) -> None:
            pass

    httpd = _serve(Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    yield f"https://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _run(url: str, out, transport: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "all_proxy",
                                                                      "no_proxy")}
    return subprocess.run(
        [sys.executable, "-m", "dezoomify_nb", "--transport", transport, "-i", "0ms", "-r", "0",
         "--accept-invalid-certs", url, str(out)],
        capture_output=True, text=True, timeout=60, env={**clean, "PYTHONPATH": os.getcwd(), **env})


def _same_as_source(out, server) -> None:
    got = np.asarray(Image.open(out).convert("RGB"))
    assert np.array_equal(got, np.asarray(server.level_image("dzi-png", 0))[..., :3])


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_http_proxy_carries_every_request_and_no_proxy_bypasses_it(server, proxy, tmp_path, transport):
    url = server.url("dzi-png")
    proxy.seen.clear()
    run = _run(url, tmp_path / "a.png", transport, HTTP_PROXY=f"http://127.0.0.1:{proxy.server_address[1]}",
               NO_PROXY="")
    assert run.returncode == 0, run.stderr
    _same_as_source(tmp_path / "a.png", server)
    through = [t for m, t in proxy.seen if m == "GET"]
    assert url in through and sum("_files/" in t for t in through) >= 2, through
    proxy.seen.clear()
    run = _run(url, tmp_path / "b.png", transport, HTTP_PROXY=f"http://127.0.0.1:{proxy.server_address[1]}",
               NO_PROXY="127.0.0.1,localhost")
    assert run.returncode == 0, run.stderr
    _same_as_source(tmp_path / "b.png", server)
    assert proxy.seen == []


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_https_proxy_tunnels_with_connect(server, proxy, https_origin, tmp_path, transport):
    proxy.seen.clear()
    url = https_origin + server.path("dzi-png")
    run = _run(url, tmp_path / "c.png", transport, HTTPS_PROXY=f"http://127.0.0.1:{proxy.server_address[1]}")
    assert run.returncode == 0, run.stderr
    _same_as_source(tmp_path / "c.png", server)
    assert proxy.seen and all(m == "CONNECT" for m, _ in proxy.seen), proxy.seen
    assert {t for _, t in proxy.seen} == {https_origin.removeprefix("https://")}
