"""Unreachable, slow, broken and protected servers: a clear message, never a traceback or a hang."""

from __future__ import annotations

import http.server
import ssl
import threading

import pytest

import dezoomify_nb as dz
from dezoomify_nb.testing.tileserver import Response

from .conftest import DZI, FAST_API, cli_error, refused_port, self_signed_cert

#: the network failures below read the same through either HTTP transport
TRANSPORTS = ["aiohttp", "httpx"]


# --- connection refused / DNS / timeout ------------------------------------------------------------

@pytest.mark.parametrize("transport", TRANSPORTS)
def test_connection_refused(capsys, transport):
    with refused_port() as port:
        url = f"http://127.0.0.1:{port}/image.dzi"
        err = cli_error(capsys, "--transport", transport, url)
        # plain words, not the transport's internals (aiohttp: "ssl:default [Connect call failed ...]")
        assert f"error: could not connect to 127.0.0.1:{port}: connection refused ({url})" in err
        assert "ssl:default" not in err and "Errno" not in err and "ConnectError" not in err
        with pytest.raises(dz.FetchError) as info:
            dz.open(url, transport=transport, **FAST_API)
    assert info.value.url == url and info.value.status is None


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_dns_failure(capsys, transport):
    url = "http://no-such-host.invalid/image.dzi"
    err = cli_error(capsys, "--transport", transport, "-r", "3", "--retry-delay", "2s", url)
    assert "error: could not connect to no-such-host.invalid:80: the host name no-such-host.invalid does not " \
           "resolve" in err
    assert "Retrying" not in err  # a name that does not resolve fails at once
    with pytest.raises(dz.FetchError) as info:
        dz.open(url, transport=transport, **FAST_API)
    assert info.value.status is None


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_timeout(server, serve, capsys, transport):
    base = serve({"image.dzi": DZI.format(w=100, h=100)})
    server.delay(base.rsplit("/", 1)[-1], 2.0, times=None)
    url = base + "/image.dzi"
    err = cli_error(capsys, "--transport", transport, "--timeout", "200ms", url)
    assert "Timeout while fetching" in err and "--timeout 0.2s" in err and "hint: The server is slow" in err
    with pytest.raises(dz.FetchError) as info:
        dz.open(url, transport=transport, **{**FAST_API, "timeout": 0.2})
    assert "within --timeout 0.2s" in str(info.value)
    # a silence shorter than the deadline but longer than --read-timeout: the gap limit
    err = cli_error(capsys, "--transport", transport, "--timeout", "5s", "--read-timeout", "200ms", url)
    assert "ReadTimeout" in err and "hint: The server is slow" in err


# --- redirects and HTTP errors on the metadata ----------------------------------------------------

@pytest.mark.parametrize("transport", TRANSPORTS)
def test_redirect_loop(server, capsys, transport):
    server.add_route("/loop/", lambda s, path, h: Response(302, b"", headers={"Location": path}))
    url = server.base_url + "/loop/image.dzi"
    err = cli_error(capsys, "--transport", transport, url)
    assert "TooManyRedirects" in err and "hint: The server redirects in a loop" in err
    with pytest.raises(dz.FetchError) as info:
        dz.open(url, transport=transport, **FAST_API)
    assert info.value.url == url


@pytest.mark.parametrize("status", [404, 500])
def test_http_error_on_metadata(server, serve, capsys, status):
    base = serve({"image.dzi": DZI.format(w=100, h=100)})
    server.fail(base.rsplit("/", 1)[-1], times=None, status=status)
    url = base + "/image.dzi"
    err = cli_error(capsys, url)
    assert f"HTTP {status}" in err
    with pytest.raises(dz.DezoomifyError) as info:
        dz.open(url, **FAST_API)
    assert f"HTTP {status}" in str(info.value)


def test_http_error_on_metadata_carries_status(server, serve):
    base = serve({"image.dzi": DZI.format(w=100, h=100)})
    server.fail(base.rsplit("/", 1)[-1], times=None, status=404)
    url = base + "/image.dzi"
    with pytest.raises(dz.FetchError) as info:  # one dezoomer forced: the fetch error itself
        dz.open(url, dezoomer="deepzoom", **FAST_API)
    assert info.value.status == 404 and info.value.url == url


# --- 403: suggest a Referer -------------------------------------------------------------------------

def test_403_on_metadata_suggests_a_referer(server, serve, capsys):
    base = serve({"image.dzi": DZI.format(w=100, h=100)})
    server.fail(base.rsplit("/", 1)[-1], times=None, status=403)
    url = base + "/image.dzi"
    err = cli_error(capsys, url)
    assert '-H "Referer: ' in err.splitlines()[-1] or any(
        ln.startswith("hint:") and "Referer" in ln for ln in err.splitlines())
    with pytest.raises(dz.DezoomifyError) as info:
        dz.open(url, **FAST_API)
    assert "Referer" in info.value.hint


def test_403_on_tiles_suggests_a_referer(server, capsys, tmp_path):
    server.fail("_files/", times=None, status=403)
    err = cli_error(capsys, server.url("dzi-png"), tmp_path / "o.png")
    hint = next(ln for ln in err.splitlines() if ln.startswith("hint:"))
    assert "Referer" in hint and "-H" in hint
    assert not (tmp_path / "o.png").exists() or (tmp_path / "o.png").stat().st_size == 0
    img = dz.open(server.url("dzi-png"), **FAST_API)
    with pytest.raises(dz.DownloadError) as info:
        img.save(tmp_path / "p.png", progress=False)
    assert "Referer" in info.value.hint


def test_403_tile_read_through_dask_carries_status(server):
    server.fail("_files/", times=None, status=403)
    img = dz.open(server.url("dzi-png"), **FAST_API)
    with pytest.raises(dz.TileFetchError) as info:
        img.to_dask()[:10, :10].compute()
    assert info.value.status == 403 and "Referer" in info.value.hint


# --- TLS ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def https_server(tmp_path_factory):
    """HTTPS on loopback with a throwaway self-signed certificate (made with the openssl CLI)."""
    d = tmp_path_factory.mktemp("tls")
    key, cert = self_signed_cert(d)
    body = DZI.format(w=300, h=200).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{httpd.server_address[1]}/image.dzi"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_tls_error_is_clear(https_server, capsys, transport):
    err = cli_error(capsys, "--transport", transport, https_server)
    assert "CERTIFICATE_VERIFY_FAILED" in err or "certificate" in err.lower()
    assert "--accept-invalid-certs" in next(ln for ln in err.splitlines() if ln.startswith("hint:"))
    with pytest.raises(dz.FetchError) as info:
        dz.open(https_server, transport=transport, **FAST_API)
    assert "certificate" in str(info.value).lower()
    assert "--accept-invalid-certs" in info.value.hint or "accept_invalid_certs" in info.value.hint


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_accept_invalid_certs_makes_it_work(https_server, transport):
    img = dz.open(https_server, accept_invalid_certs=True, transport=transport, **FAST_API)
    assert (img.width, img.height) == (300, 200)


def test_overlong_url():
    url = "http://127.0.0.1:9/" + "a" * 70_000 + ".dzi"
    with pytest.raises(dz.FetchError):
        dz.open(url, **FAST_API)
