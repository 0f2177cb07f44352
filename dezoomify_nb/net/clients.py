"""Per-process registry of live HTTP clients and thread pools; per-event-loop limiters.

Stores and levels that cross to dask workers carry only a :class:`~.config.NetConfig` (a recipe). The
live objects are looked up here (and, for the default aiohttp transport, in :mod:`.aio`), so each worker
process builds its own:

- ``transport="aiohttp"`` (default): one ``aiohttp.ClientSession`` per event loop and config (a session
  belongs to its loop), kept by :mod:`.aio`; the request runs on the loop and only the tile decode goes
  to a thread: ~0.1 ms of CPU per request (bench/bench_http.py);
- ``transport="httpx"`` (and ``cluster_parallelism``): one synchronous ``httpx.Client`` per process and
  config (thread-safe, one connection pool), used from a thread pool: ~0.6–1.7 ms of CPU per request;
- per event loop and host: an ``asyncio.Semaphore`` (``parallelism``) and the pacing state
  (``min_interval``), so no asyncio object is ever shared across loops;
- with ``cluster_parallelism`` on a dask.distributed cluster: one ``distributed.Semaphore`` per host,
  named after it, so every worker shares the same cap (see :func:`cluster_slot`).

:func:`stats` tells how many clients (httpx clients and aiohttp sessions) this process built: one per
config (and, for aiohttp, per event loop that fetched), each with one connection pool per host.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import os
import threading
import time
import weakref
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import httpcore
import httpx

from .common import SCOPE, _key, count_client, counts, pid, rescope
from .config import NetConfig

#: pacing's sleep (not the retry waits of :mod:`.fetch`, which tests record by patching ``asyncio.sleep``)
_pace_sleep = asyncio.sleep
#: the longest pacing (seconds between request starts) a server's "slow down" can impose on a host
MAX_ADAPTIVE_INTERVAL = 5.0
#: the pacing a "slow down" raises an unpaced host (``-i 0``) to
MIN_ADAPTIVE_INTERVAL = 0.05


@dataclass
class Limiter:
    """Concurrency (a semaphore) and pacing (``min_interval`` between request starts) for one host.

    Adaptive (additive increase, multiplicative decrease): a 429 or 503 (:meth:`slow_down`) halves the
    host's concurrency (permits are taken out of the semaphore and held) and doubles its pacing; each
    round of ``limit`` successes (:meth:`succeeded`, called only while ``reduced``) gives one permit back
    and shortens the pacing, until the configured ``parallelism`` and ``min_interval`` are back. Requests
    that started before a decrease do not decrease again (``epoch``): one burst of 429s is one decrease.
    """

    semaphore: asyncio.Semaphore
    min_interval: float
    parallelism: int = 1
    base_interval: float = 0.0
    #: the concurrency now (``parallelism`` minus the permits held back)
    limit: int = 1
    #: below ``parallelism`` or above ``base_interval``: successes count towards recovery
    reduced: bool = False
    #: bumped at each decrease
    epoch: int = 0
    #: (old, new) concurrency of the first decrease, for the one message a run prints
    first_decrease: tuple[int, int] | None = None
    _next_start: float = 0.0
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _owed: int = 0
    _held: int = 0
    _successes: int = 0
    _taker: asyncio.Task[None] | None = None

    async def pace(self) -> None:
        if self.min_interval <= 0:
            return
        async with self._lock:
            now = time.monotonic()
            start = max(now, self._next_start)
            self._next_start = start + self.min_interval
        if start > now:
            await _pace_sleep(start - now)

    def slow_down(self, epoch: int) -> tuple[int, int] | None:
        """The server answered 429/503 to a request started in ``epoch``: halve the concurrency, double the
        pacing (a ``Retry-After`` is waited by the refused request's retry). Returns ``(old, new)``
        concurrency when this is a new decrease, ``None`` when this request's burst was already answered."""
        if epoch != self.epoch:
            return None
        self.epoch += 1
        old = self.limit
        self.limit = max(1, old // 2)
        self._withhold(old - self.limit)
        self.min_interval = min(max(self.min_interval * 2, MIN_ADAPTIVE_INTERVAL), MAX_ADAPTIVE_INTERVAL)
        self.reduced = True
        self._successes = 0
        if self.first_decrease is None:
            self.first_decrease = (old, self.limit)
        return old, self.limit

    def succeeded(self) -> None:
        """One success while reduced: after ``limit`` of them, one more parallel request and shorter pacing."""
        self._successes += 1
        if self._successes < self.limit:
            return
        self._successes = 0
        if self.limit < self.parallelism:
            self.limit += 1
            self._give_back()
        if self.min_interval > self.base_interval:
            self.min_interval = max(self.base_interval, self.min_interval * 0.75)
            if self.min_interval < MIN_ADAPTIVE_INTERVAL / 4:
                self.min_interval = self.base_interval
        self.reduced = self.limit < self.parallelism or self.min_interval > self.base_interval

    def _withhold(self, count: int) -> None:
        if count <= 0:
            return
        self._owed += count
        if self._taker is None or self._taker.done():
            self._taker = asyncio.get_running_loop().create_task(self._take())

    async def _take(self) -> None:
        while self._owed > 0:
            await self.semaphore.acquire()
            if self._owed > 0:
                self._owed -= 1
                self._held += 1
            else:  # given back while waiting
                self.semaphore.release()

    def _give_back(self) -> None:
        if self._owed > 0:
            self._owed -= 1
        elif self._held > 0:
            self._held -= 1
            self.semaphore.release()


_limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[NetConfig, str], Limiter]] = (
    weakref.WeakKeyDictionary()
)
_clients: dict[NetConfig, httpx.Client] = {}
_executors: dict[NetConfig, ThreadPoolExecutor] = {}
_semaphores: dict[tuple[str, int], Any] = {}
_lock = threading.Lock()
_pid = os.getpid()


def _check_fork() -> None:
    global _limiters, _clients, _executors, _semaphores, _lock, _pid
    if pid() != _pid:  # forked: never reuse the parent's clients, threads or locks
        _limiters, _clients, _executors, _semaphores = weakref.WeakKeyDictionary(), {}, {}, {}
        _lock = threading.Lock()
        _pid = os.getpid()


def stats() -> dict[str, int]:
    """This process's registry: ``pid``, ``clients_created`` (ever), ``clients_open`` (now) and
    ``requests`` (HTTP requests sent so far). Clients are httpx clients and aiohttp sessions alike.

    Under dask.distributed, ``client.run(stats)`` shows one client per worker process and config (for
    aiohttp: per event loop that fetched, in practice zarr's I/O loop on a worker).
    """
    from . import aio

    _check_fork()
    created, requests = counts()
    return {"pid": os.getpid(), "clients_created": created, "requests": requests,
            "clients_open": sum(not c.is_closed for c in _clients.values()) + aio.open_sessions()}


@functools.lru_cache(maxsize=256)
def _limiter_key(config: NetConfig) -> NetConfig:
    """The part of ``config`` a host's limiter depends on (parallelism and pacing)."""
    return replace(config, headers=(), referer=None, offline=False, local_root=None, header_host=None,
                   header_all_hosts=False, cookies=None)


# --- the user's headers on redirects (SCOPE, header_scope, rescope: in .common) ------------------------
def _scope_hook(request: httpx.Request) -> None:
    """httpx request hook (every hop of a redirect): :func:`rescope`."""
    scope = request.extensions.get(SCOPE)
    if scope is not None:
        rescope(request.headers, request.url.netloc.decode("ascii"), scope)


def _drop_redirect_body(response: httpx.Response) -> None:
    """A response hook: httpx reads (and decodes, uncapped) the body of each redirect it follows; a
    redirect's body is never used, so its stream is closed unread (the connection is dropped) and
    replaced by an empty one. (aiohttp releases redirects unread.)"""
    if response.has_redirect_location:
        response.stream.close()
        response.stream = httpx.ByteStream(b"")


#: the httpx client's event hooks (also for the clients of :mod:`dezoomify_nb.testing.hosts`)
EVENT_HOOKS: dict[str, list[Any]] = {"request": [_scope_hook], "response": [_drop_redirect_body]}


#: the deadline (``time.monotonic()``) of the request this worker thread is making (httpx), or ``None``
deadline = threading.local()


def _left(timeout: float | None, error: type[Exception]) -> float | None:
    """``timeout`` shortened to what is left before this thread's request deadline (raises past it)."""
    end = getattr(deadline, "at", None)
    if end is None:
        return timeout
    left = end - time.monotonic()
    if left <= 0:
        raise error("the request's deadline has passed")
    return left if timeout is None or timeout > left else timeout


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read, write and TLS handshake ends by the thread's request deadline, so a
    server dripping bytes (headers or body) cannot keep a request alive past ``--timeout``."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname,
                                                     _left(timeout, httpcore.ConnectTimeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's sync backend, its connections wrapped in :class:`_DeadlineStream`."""

    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Any = None) -> httpcore.NetworkStream:
        return _DeadlineStream(self._inner.connect_tcp(host, port, _left(timeout, httpcore.ConnectTimeout),
                                                       local_address, socket_options))

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Any = None) -> httpcore.NetworkStream:
        return _DeadlineStream(self._inner.connect_unix_socket(path, _left(timeout, httpcore.ConnectTimeout),
                                                               socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def _with_deadlines(client: httpx.Client) -> httpx.Client:
    """Make every connection pool of ``client`` (direct and proxies) open :class:`_DeadlineStream` streams.

    httpx has no public hook for the network backend: its pools keep it as ``_network_backend``. Were that
    to change, the body loop of ``fetch._get_http`` still checks the deadline after each read.
    """
    for transport in (client._transport, *client._mounts.values()):
        pool = getattr(transport, "_pool", None)
        if pool is not None and hasattr(pool, "_network_backend"):
            pool._network_backend = _DeadlineBackend()
    return client


def get_client(config: NetConfig) -> httpx.Client:
    """The process's ``httpx.Client`` for this config (thread-safe; built on first use)."""
    _check_fork()
    key = _key(config)
    client = _clients.get(key)
    if client is None or client.is_closed:
        with _lock:
            client = _clients.get(key)
            if client is None or client.is_closed:
                count_client()
                client = _clients[key] = _with_deadlines(httpx.Client(
                    event_hooks=EVENT_HOOKS,
                    follow_redirects=True,
                    max_redirects=10,
                    verify=not config.accept_invalid_certs,
                    # the whole request's deadline (config.timeout) is enforced by _DeadlineStream
                    timeout=httpx.Timeout(config.timeout, connect=config.connect_timeout,
                                          read=config.read_timeout or config.timeout),
                    limits=httpx.Limits(
                        max_connections=None,  # the per-host semaphores limit concurrency
                        # 0: no keep-alive (as with aiohttp); else at least one idle connection per slot
                        max_keepalive_connections=config.max_idle_per_host and max(
                            config.max_idle_per_host, config.parallelism),
                    ),
                ))
    return client


def get_executor(config: NetConfig) -> ThreadPoolExecutor:
    """The threads that run requests (and tile decodes) for this config."""
    _check_fork()
    key = _key(config)
    pool = _executors.get(key)
    if pool is None:
        with _lock:
            pool = _executors.get(key)
            if pool is None:
                # httpx: a thread per request in flight (and its decode); aiohttp: requests stay on the
                # loop and the threads only decode (which releases the GIL): a few per core suffice
                workers = (min(256, 4 * config.parallelism + 4) if config.transport == "httpx"
                           else min(4 * config.parallelism + 4, 2 * (os.cpu_count() or 2) + 2))
                pool = _executors[key] = ThreadPoolExecutor(workers, thread_name_prefix="dezoomify_nb-fetch")
    return pool


def get_limiter(config: NetConfig, host: str = "") -> Limiter:
    """Concurrency (``parallelism``) and pacing (``min_interval``) of one host, on the running loop."""
    _check_fork()
    loop = asyncio.get_running_loop()
    per_loop = _limiters.get(loop)
    if per_loop is None:
        per_loop = _limiters[loop] = {}
    key = (_limiter_key(config), host)
    limiter = per_loop.get(key)
    if limiter is None:
        limiter = per_loop[key] = Limiter(asyncio.Semaphore(config.parallelism), config.min_interval,
                                          config.parallelism, config.min_interval, config.parallelism)
    return limiter


def _cluster_semaphore(host: str, limit: int) -> Any | None:
    """The cluster's ``distributed.Semaphore`` for ``host`` (``None`` outside a dask.distributed cluster)."""
    import sys

    if "distributed" not in sys.modules:  # no cluster can be in use in this process
        return None
    key = (host, limit)
    sem = _semaphores.get(key)
    if sem is not None:
        return sem
    import distributed

    # requests run on our own threads, where get_worker() does not see the task's worker: find this
    # process's running worker (dask worker processes hold one), else the default client
    worker = next((w for w in list(distributed.Worker._instances) if w.status.name == "running"), None)
    if worker is not None:
        scheduler, io_loop = worker.scheduler, worker.loop
    else:
        try:
            client = distributed.default_client()
        except ValueError:
            return None
        scheduler, io_loop = client.scheduler, client.loop
    with _lock:
        sem = _semaphores.get(key)
        if sem is None:
            # the limit is part of the name: two settings never share (and fight over) one semaphore
            sem = _semaphores[key] = distributed.Semaphore(
                max_leases=limit, name=f"dezoomify_nb:{limit}:{host}", scheduler_rpc=scheduler, loop=io_loop)
    return sem


@contextmanager
def cluster_slot(config: NetConfig, host: str) -> Iterator[None]:
    """Hold one of the cluster's ``cluster_parallelism`` slots for ``host`` (blocking; worker threads only).

    Outside a dask.distributed worker or client, or without ``cluster_parallelism``, it does nothing.
    """
    _check_fork()
    sem = _cluster_semaphore(host, config.cluster_parallelism) if config.cluster_parallelism else None
    if sem is None:
        yield
        return
    sem.acquire()
    try:
        yield
    finally:
        sem.release()


def close_all() -> None:
    """Close every client of this process (tests, clean shutdown)."""
    with _lock:
        clients = list(_clients.values())
        _clients.clear()
    for client in clients:
        client.close()


atexit.register(close_all)
