"""Per-process, per-event-loop registry of live HTTP clients and rate limiters.

Stores and levels that cross to dask workers carry only a :class:`~.config.NetConfig` (a recipe); the
live ``httpx.AsyncClient``, the concurrency semaphore and the pacing state are looked up here, keyed by
the running loop and the config, so each worker process builds one pool per loop and no client is ever
shared across loops.
"""

from __future__ import annotations

import asyncio
import os
import time
import weakref
from dataclasses import dataclass, field

import httpx

from .config import NetConfig


@dataclass
class Limiter:
    """Concurrency (a semaphore) and pacing (``min_interval`` between request starts) for one loop."""

    semaphore: asyncio.Semaphore
    min_interval: float
    _next_start: float = 0.0
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def pace(self) -> None:
        if self.min_interval <= 0:
            return
        async with self._lock:
            now = time.monotonic()
            start = max(now, self._next_start)
            self._next_start = start + self.min_interval
        if start > now:
            await asyncio.sleep(start - now)


@dataclass
class _LoopState:
    clients: dict[NetConfig, httpx.AsyncClient] = field(default_factory=dict)
    limiters: dict[tuple[NetConfig, str], Limiter] = field(default_factory=dict)


_registry: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = weakref.WeakKeyDictionary()
_pid = os.getpid()


def _state() -> _LoopState:
    global _registry, _pid
    if os.getpid() != _pid:  # forked: never reuse the parent's clients
        _registry = weakref.WeakKeyDictionary()
        _pid = os.getpid()
    loop = asyncio.get_running_loop()
    state = _registry.get(loop)
    if state is None:
        state = _registry[loop] = _LoopState()
    return state


def _key(config: NetConfig) -> NetConfig:
    # headers and referer are per request, not per client: share one pool across them
    from dataclasses import replace

    return replace(config, headers=(), referer=None, offline=False)


def get_client(config: NetConfig) -> httpx.AsyncClient:
    state = _state()
    key = _key(config)
    client = state.clients.get(key)
    if client is None or client.is_closed:
        client = httpx.AsyncClient(
            follow_redirects=True,
            verify=not config.accept_invalid_certs,
            timeout=httpx.Timeout(config.timeout, connect=config.connect_timeout),
            limits=httpx.Limits(
                max_connections=max(config.parallelism, 1) + 4,
                max_keepalive_connections=config.max_idle_per_host,
            ),
            headers={},
        )
        state.clients[key] = client
    return client


def get_limiter(config: NetConfig, host: str = "") -> Limiter:
    """Concurrency (``parallelism``) and pacing (``min_interval``) of one host, on the running loop."""
    state = _state()
    key = (_key(config), host)
    limiter = state.limiters.get(key)
    if limiter is None:
        limiter = state.limiters[key] = Limiter(asyncio.Semaphore(config.parallelism), config.min_interval)
    return limiter


async def aclose_all() -> None:
    """Close the clients of the running loop (tests and clean shutdown)."""
    state = _state()
    clients = list(state.clients.values())
    state.clients.clear()
    state.limiters.clear()
    for client in clients:
        await client.aclose()
