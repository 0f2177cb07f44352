"""Replay real sites from the loopback server: requests to chosen ``https`` hosts go to a path prefix.

Sources such as Google Arts & Culture and NYPL are recognised by their host names, and their metadata
names further hosts (``lh3.googleusercontent.com``, ``access.nypl.org``). To test them end to end
without the internet, :func:`route_hosts` makes every HTTP request of dezoomify_nb (metadata and
tiles, from whichever thread) go through a transport that rewrites
``https://HOST/path?q`` to ``http://127.0.0.1:PORT/PREFIX/path?q`` for the mapped hosts, and refuses
any other non-loopback host, so a test can never reach the real internet by accident.

>>> with route_hosts(server, {"access.nypl.org": "/nypl-access"}):   # doctest: +SKIP
...     dz.open("https://digitalcollections.nypl.org/items/...")

It works by swapping the client factory used by :mod:`dezoomify_nb.net.fetch` for the duration of the
``with`` block (single process; not for dask-distributed workers).
"""

from __future__ import annotations

import contextlib
import importlib
import threading
from collections.abc import Iterator, Mapping

import httpx

from ..net.clients import _key
from ..net.config import NetConfig
from .tileserver import TileServer

__all__ = ["route_hosts"]

#: the module (``dezoomify_nb.net.fetch`` the attribute is the function of the same name)
_fetch = importlib.import_module("dezoomify_nb.net.fetch")

_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


class _RewriteTransport(httpx.BaseTransport):
    def __init__(self, base_url: str, hosts: Mapping[str, str]) -> None:
        self._inner = httpx.HTTPTransport()
        self._base = httpx.URL(base_url)
        self._hosts = {h.lower(): "/" + p.strip("/") for h, p in hosts.items()}

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host.lower()
        prefix = self._hosts.get(host)
        if prefix is not None:
            target = f"{self._base}{prefix}{request.url.raw_path.decode('ascii')}"
            request.url = httpx.URL(target)
            request.headers["Host"] = request.url.netloc.decode("ascii")
        elif host not in _LOOPBACK:
            raise httpx.ConnectError(f"route_hosts: {host} is not mapped to the loopback server", request=request)
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


@contextlib.contextmanager
def route_hosts(server: TileServer, hosts: Mapping[str, str]) -> Iterator[None]:
    """Within the block, send requests for each ``host`` in ``hosts`` to ``server`` under its prefix."""
    clients: dict[NetConfig, httpx.Client] = {}
    lock = threading.Lock()
    original = _fetch.get_client

    def get_client(config: NetConfig) -> httpx.Client:
        key = _key(config)
        with lock:
            client = clients.get(key)
            if client is None or client.is_closed:
                client = clients[key] = httpx.Client(
                    transport=_RewriteTransport(server.base_url, hosts),
                    follow_redirects=True,
                    timeout=httpx.Timeout(config.timeout, connect=config.connect_timeout),
                )
        return client

    _fetch.get_client = get_client  # type: ignore[assignment]
    try:
        yield
    finally:
        _fetch.get_client = original  # type: ignore[assignment]
        for client in clients.values():
            client.close()
