"""The ``aiohttp`` transport (the default, ``NetConfig(transport="aiohttp")``): requests on the event loop.

``bench/bench_http.py`` measured the client CPU per request at 20 ms latency: ~0.1–0.15 ms for aiohttp
against ~0.6 ms for a sync ``httpx.Client`` shared by threads (1.7 ms at -n 64, where the threads fight
over the GIL and httpcore's pool lock) and ~1–4 ms for ``httpx.AsyncClient``; a whole download is
1.6–2x faster. Here the request runs on the loop (no thread per request) and only the tile decode goes
to a worker thread.

An ``aiohttp.ClientSession`` is bound to its event loop: one per loop and config (in practice the private
I/O loop of :mod:`.loop`, zarr's I/O loop, a notebook's loop), never pickled, counted by
:func:`~.clients.stats`, and closed at exit or when ``asyncio.run()`` ends its loop (a loop closed
otherwise has its sessions dropped when the next loop gets one). Failures become the same ``FetchError``\\ s, worded as httpx words them (``ConnectError``,
``ConnectTimeout``, ``ReadTimeout``, ``TooManyRedirects``…) and with the same retry decisions, through
:mod:`.failures`.

Connections: no global or per-host cap in the connector (the per-host semaphores of :mod:`.clients`
limit concurrency); idle connections are kept 30 s, or none with ``max_idle_per_host=0``. Proxies from
the environment (``HTTPS_PROXY``, ``NO_PROXY``…) are honoured as httpx does when any is set.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import os
import re
import threading
from collections.abc import AsyncIterator
from typing import Any

from .body import Body, async_budget
from .common import _key, count_client, pid, rescope
from .config import NetConfig
from .failures import deadline_failure, invalid_url, network_failure, range_ignored, status_failure

_lock = threading.Lock()
_pid = os.getpid()
_at_exit = False


class _LoopSessions:
    """The sessions of one event loop, and the async generator that closes them when ``asyncio.run()``
    ends that loop (its ``shutdown_asyncgens()`` closes every async generator the loop started)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.sessions: dict[NetConfig, Any] = {}
        self.closer = _closer(self)

    def take(self) -> list[Any]:
        with _lock:
            if _loops.get(self.loop) is self:
                del _loops[self.loop]
            sessions, self.sessions = list(self.sessions.values()), {}
        return sessions

    def close(self) -> None:
        """Close the sessions from any thread: on the loop if it runs elsewhere, else at once. Never raises."""
        try:
            current = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        if self.loop.is_running() and current is not self.loop:
            try:  # the closer closes them on their loop
                asyncio.run_coroutine_threadsafe(self.closer.aclose(), self.loop).result(5)
            except Exception:  # the loop stopped meanwhile: what is left is closed the blunt way
                pass
        for session in self.take():
            close_session(self.loop, session)
        ending = self.closer.aclose()  # finishes at once (or is a no-op): no session left to await
        try:
            ending.send(None)
        except Exception:  # StopIteration: done
            pass


async def _closer(entry: _LoopSessions) -> AsyncIterator[None]:
    try:
        yield
    finally:
        for session in entry.take():
            await session.close()


_loops: dict[asyncio.AbstractEventLoop, _LoopSessions] = {}


def new_session(config: NetConfig, **options: Any) -> Any:
    """A new ``aiohttp.ClientSession`` for ``config`` on the running loop (``options`` go to the session)."""
    import urllib.request

    import aiohttp

    keep_alive: dict[str, Any] = {"keepalive_timeout": 30} if config.max_idle_per_host else {"force_close": True}
    connector = aiohttp.TCPConnector(
        limit=0,  # the per-host semaphores limit concurrency
        limit_per_host=0,
        ssl=not config.accept_invalid_certs,
        **keep_alive,
    )
    # the whole request's deadline (config.timeout) is an asyncio.timeout() around it in get()
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=config.connect_timeout,
                                    sock_read=config.read_timeout or config.timeout)
    # bodies come as sent: .body decodes them under their caps (aiohttp would inflate a bomb whole)
    # trust_env costs two thread hops per request (proxy and .netrc look-ups): only when a proxy is set
    return aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False,
                                 trust_env=bool(urllib.request.getproxies()), **options)


async def _session(config: NetConfig) -> Any:
    """This loop's session for ``config`` (built on first use)."""
    global _at_exit
    _check_fork()
    loop = asyncio.get_running_loop()
    key = _key(config)
    entry = _loops.get(loop)
    session = None if entry is None else entry.sessions.get(key)
    if session is not None and not session.closed:
        return session
    if entry is None:
        with _lock:  # only this loop's thread adds its entry; the lock guards the dict across loops
            stale = [e for e in _loops.values() if e.loop.is_closed()]  # closed without asyncio.run()
            entry = _loops[loop] = _LoopSessions(loop)
            if not _at_exit:
                # registered now, after zarr (imported by then) registered the shutdown of its I/O loop:
                # atexit runs last-in first-out, so sessions on that loop are closed while it still runs
                atexit.register(close_all)
                _at_exit = True
        await anext(entry.closer)  # the loop now knows the generator: asyncio.run() will close it
        for old in stale:
            old.close()
    session = new_session(config)
    with _lock:  # stats() may be counting them from another thread
        entry.sessions[key] = session
    count_client()
    return session


def open_sessions() -> int:
    """How many sessions of this process are open (for :func:`~.clients.stats`)."""
    _check_fork()
    with _lock:
        return sum(not s.closed for entry in _loops.values() for s in entry.sessions.values())


#: a URL made only of characters that go on the wire as they are (what ``quote`` below leaves alone)
_SENDABLE = re.compile(r"[A-Za-z0-9\-._~!#$%&'()*+,/:;=?@\[\]]*\Z")


def _url(target: str) -> Any:
    """``target`` as a ``yarl.URL`` sent as written, like httpx sends it: its escapes are kept (``%2F`` in a
    query, a signed URL), only characters that cannot go on the wire are quoted. (``yarl.URL(text)``
    would re-quote, e.g. turn ``item=x%2Fy`` into ``item=x/y``.)"""
    from yarl import URL

    if _SENDABLE.match(target):  # the common case: no quoting pass
        return URL(target, encoded=True)
    from urllib.parse import quote, urlsplit, urlunsplit

    parts = urlsplit(target)
    if not parts.netloc.isascii():  # an internationalised host name: yarl encodes it (IDNA)
        target = urlunsplit(parts._replace(netloc=URL(f"{parts.scheme}://{parts.netloc}").raw_authority))
    return URL(quote(target, safe="!#$%&'()*+,/:;=?@[]~"), encoded=True)


def _kind(exc: BaseException) -> str:
    """The httpx name of an aiohttp failure, so messages and hints do not depend on the transport."""
    import aiohttp

    if isinstance(exc, aiohttp.TooManyRedirects):
        return "TooManyRedirects"
    if isinstance(exc, TimeoutError):  # aiohttp's ServerTimeoutError is one
        connect = getattr(aiohttp, "ConnectionTimeoutError", None)  # aiohttp >= 3.10
        read = getattr(aiohttp, "SocketTimeoutError", None)
        if (connect is not None and isinstance(exc, connect)) or "Connection timeout" in str(exc):
            return "ConnectTimeout"
        if read is not None and isinstance(exc, read):
            return "ReadTimeout"
        return "ReadTimeout" if "reading data" in str(exc) else "Timeout"
    if isinstance(exc, aiohttp.ClientConnectorError):  # refused, DNS, TLS (certificate)
        return "ConnectError"
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError | aiohttp.ClientResponseError):
        return "RemoteProtocolError"  # the server hung up or sent a malformed response or body
    if isinstance(exc, aiohttp.ClientOSError):
        return "ReadError"
    return "NetworkError"


@functools.cache
def _unsendable() -> tuple[type[BaseException], ...]:
    """URLs aiohttp cannot send (evaluated only when a request fails: aiohttp is imported lazily)."""
    import aiohttp

    # NonHttpUrlClientError (e.g. a redirect to ftp://) is aiohttp >= 3.10
    return tuple(getattr(aiohttp, name) for name in ("InvalidURL", "NonHttpUrlClientError") if hasattr(aiohttp, name))


async def get(url: str, target: str, rng: tuple[int, int] | None, config: NetConfig,
              headers: dict[str, str], metadata: bool = False, scope: tuple[Any, ...] | None = None) -> bytes:
    """One GET of ``target`` on the running loop; failures raise ``fetch._Attempt`` (see :mod:`.failures`).

    The whole request (connect, headers, body) ends by ``config.timeout``; the body is decoded by
    :class:`~.body.Body` under its cap and counted in the loop's budget of bytes in flight. ``scope`` (from
    :func:`.common.header_scope`): each hop of a redirect gets the user's headers only on the input's site
    (:func:`.common.rescope`, applied by a middleware, which sees every hop).
    """
    import aiohttp

    if rng is not None:
        headers = {**headers, "Range": f"bytes={rng[0]}-{rng[1]}"}
    budget = async_budget(config.max_inflight_bytes)
    body = None
    deadline = asyncio.timeout(config.timeout)
    try:
        async with deadline:
            session = await _session(config)
            extra: dict[str, Any] = {} if scope is None else {"middlewares": (_scoper(scope),)}
            async with session.get(_url(target), headers=headers, max_redirects=10, **extra) as response:
                status = response.status
                if rng is not None and status == 200:
                    raise range_ignored(url, target)
                if status >= 400:
                    raise status_failure(url, status, response.reason, response.headers.get("Retry-After"))
                body = Body(url, config.max_metadata_bytes if metadata else config.max_tile_bytes, metadata,
                            response.headers.get("Content-Encoding"), response.content_length)
                token = id(body)
                async for raw in response.content.iter_any():
                    for piece in body.decoded(raw):
                        body.add(piece)
                        if not budget.try_take(token, len(piece)):
                            await budget.take(token, len(piece))
                return body.value()
    except _unsendable() as exc:  # before ClientError and ValueError, which they are
        raise invalid_url(url, exc) from exc
    except (aiohttp.ClientError, TimeoutError) as exc:  # a certificate error is a ValueError too: first
        if deadline.expired():
            raise deadline_failure(url, config.timeout) from exc
        raise network_failure(url, _kind(exc), exc) from exc
    except (ValueError, UnicodeError) as exc:  # malformed URL or header: no retry helps
        raise invalid_url(url, exc) from exc
    finally:
        if body is not None:
            budget.release(id(body))


def _scoper(scope: tuple[Any, ...]) -> Any:
    """An aiohttp client middleware applying :func:`.common.rescope` to each request it sends."""

    async def middleware(request: Any, handler: Any) -> Any:
        # ``original_url``: the URL before dezoomify_nb.testing.hosts rewrote it to the loopback server
        url = getattr(request, "original_url", None) or request.url
        rescope(request.headers, url.raw_authority or url.host or "", scope)
        return await handler(request)

    return middleware


def close_session(loop: asyncio.AbstractEventLoop, session: Any) -> None:
    """Close ``session`` of ``loop`` from any thread: on its loop if that still runs elsewhere, else at once
    (its connections dropped). Never raises."""
    if session.closed:
        return
    try:
        current = asyncio.get_running_loop()
    except RuntimeError:
        current = None
    try:
        if loop.is_running() and current is not loop:
            try:
                asyncio.run_coroutine_threadsafe(session.close(), loop).result(5)
                return
            except Exception:  # the loop stopped meanwhile: close it the blunt way
                pass
        connector = session.connector
        session.detach()
        if connector is not None:
            connector._close()
    except Exception:  # shutting down: never raise from here
        pass


def close_all() -> None:
    """Close every session of this process (at exit; tests)."""
    _check_fork()
    with _lock:
        entries = list(_loops.values())
    for entry in entries:
        entry.close()


_forked_away: list[Any] = []


def _check_fork() -> None:
    global _loops, _lock, _pid
    if pid() != _pid:  # forked: the parent's sessions and loops are not ours to use or close
        _forked_away.append(_loops)  # kept, never closed: their sockets are the parent's
        _loops, _lock, _pid = {}, threading.Lock(), os.getpid()
