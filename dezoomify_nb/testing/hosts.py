"""Replay real sites from the loopback server: requests to chosen ``https`` hosts go to a path prefix.

Sources such as Google Arts & Culture and NYPL are recognised by their host names, and their metadata
names further hosts (``lh3.googleusercontent.com``, ``access.nypl.org``). To test them end to end
without the internet, :func:`route_hosts` makes every HTTP request of dezoomify_nb (metadata and
tiles, from whichever thread or event loop, redirects included) rewrite ``https://HOST/path?q`` to
``http://127.0.0.1:PORT/PREFIX/path?q`` (with ``Host: 127.0.0.1:PORT``) for the mapped hosts, and refuse
any other non-loopback host with a ``ConnectError``, so a test can never reach the real internet by
accident.

>>> with route_hosts(server, {"access.nypl.org": "/nypl-access"}):   # doctest: +SKIP
...     dz.open("https://digitalcollections.nypl.org/items/...")

One rule (:class:`_Router`) serves both transports. For the duration of the ``with`` block it swaps the
client factories of :mod:`dezoomify_nb.net`: httpx clients get a transport that applies the rule to
each request; aiohttp sessions get a request class that applies it to each request they build (the
first and every redirect). Single process; not for dask-distributed workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import importlib
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import httpx

from ..net.clients import EVENT_HOOKS, _key
from ..net.config import NetConfig
from .tileserver import TileServer

__all__ = ["route_hosts"]

#: the modules (``dezoomify_nb.net.fetch`` the attribute is the function of the same name)
_fetch = importlib.import_module("dezoomify_nb.net.fetch")
_aio = importlib.import_module("dezoomify_nb.net.aio")

_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


class _Unmapped(Exception):
    """A request to a host that is neither mapped nor loopback."""


class _Router:
    """Where a request goes: a mapped host to the loopback server under its prefix, loopback as is."""

    def __init__(self, base_url: str, hosts: Mapping[str, str]) -> None:
        self.base = base_url.rstrip("/")
        self.netloc = httpx.URL(self.base).netloc.decode("ascii")
        self.hosts = {h.lower(): "/" + p.strip("/") for h, p in hosts.items()}

    def route(self, host: str, path_qs: str) -> str | None:
        """The loopback URL for ``host`` + ``path_qs`` (raw, escaped), ``None`` for a loopback host (sent as
        is); raises :class:`_Unmapped` for any other host."""
        host = host.lower()
        prefix = self.hosts.get(host)
        if prefix is not None:
            return f"{self.base}{prefix}{path_qs}"
        if host not in _LOOPBACK:
            raise _Unmapped(f"route_hosts: {host} is not mapped to the loopback server")
        return None


class _RewriteTransport(httpx.BaseTransport):
    def __init__(self, router: _Router) -> None:
        self._inner = httpx.HTTPTransport()
        self._router = router

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            target = self._router.route(request.url.host, request.url.raw_path.decode("ascii"))
        except _Unmapped as refused:
            raise httpx.ConnectError(str(refused), request=request) from ConnectionRefusedError(
                errno.ECONNREFUSED, str(refused))
        if target is not None:
            request.url = httpx.URL(target)
            request.headers["Host"] = self._router.netloc
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


def _routed_request_class(router: _Router) -> type:
    """An ``aiohttp.ClientRequest`` that applies ``router`` to the URL it is built for."""
    import aiohttp
    from multidict import CIMultiDict
    from yarl import URL

    class RoutedRequest(aiohttp.ClientRequest):
        def __init__(self, method: str, url: URL, *args: Any, headers: Any = None, **kwargs: Any) -> None:
            original = url
            try:
                target = router.route(url.host or "", url.raw_path_qs)
            except _Unmapped as refused:
                super().__init__(method, url, *args, headers=headers, **kwargs)  # sends nothing
                raise aiohttp.ClientConnectorError(
                    self.connection_key, ConnectionRefusedError(errno.ECONNREFUSED, str(refused))) from None
            if target is not None:
                url = URL(target, encoded=True)
                headers = CIMultiDict(headers or {})
                headers["Host"] = router.netloc
            super().__init__(method, url, *args, headers=headers, **kwargs)
            self.original_url = original  # what the request was for (its headers are chosen by its host)

    return RoutedRequest


@contextlib.contextmanager
def route_hosts(server: TileServer, hosts: Mapping[str, str]) -> Iterator[None]:
    """Within the block, send requests for each ``host`` in ``hosts`` to ``server`` under its prefix."""
    router = _Router(server.base_url, hosts)
    clients: dict[NetConfig, httpx.Client] = {}
    sessions: dict[tuple[asyncio.AbstractEventLoop, NetConfig], Any] = {}
    lock = threading.Lock()
    original_client, original_session = _fetch.get_client, _aio._session

    def get_client(config: NetConfig) -> httpx.Client:
        key = _key(config)
        with lock:
            client = clients.get(key)
            if client is None or client.is_closed:
                client = clients[key] = httpx.Client(
                    transport=_RewriteTransport(router),
                    event_hooks=EVENT_HOOKS,
                    follow_redirects=True,
                    timeout=httpx.Timeout(config.timeout, connect=config.connect_timeout),
                )
        return client

    async def session(config: NetConfig) -> Any:
        key = (asyncio.get_running_loop(), _key(config))
        with lock:
            routed = sessions.get(key)
            if routed is None or routed.closed:
                routed = sessions[key] = _aio.new_session(config, request_class=_routed_request_class(router))
        return routed

    _fetch.get_client = get_client  # type: ignore[assignment]
    _aio._session = session  # type: ignore[assignment]
    try:
        yield
    finally:
        _fetch.get_client = original_client  # type: ignore[assignment]
        _aio._session = original_session  # type: ignore[assignment]
        for client in clients.values():
            client.close()
        for (loop, _), routed in sessions.items():
            _aio.close_session(loop, routed)
