"""What both HTTP transports (:mod:`.clients`: httpx, :mod:`.aio`: aiohttp) and the body reader share.

This process's id through forks, the counters :func:`.clients.stats` reports, the key a client (httpx
client, aiohttp session) is built for, and the user's headers on each hop of a redirect. It imports only
:mod:`.config`, so the transports import it and never each other's internals: ``clients`` → ``aio`` →
``common`` → ``config``, one way.
"""

from __future__ import annotations

import functools
import os
import threading
from dataclasses import replace
from typing import Any

from .config import MAX_INFLIGHT_BYTES, MAX_METADATA_BYTES, MAX_TILE_BYTES, NetConfig, user_header_names

_created = 0
_requests = 0
_lock = threading.Lock()
_pid = os.getpid()
#: this process's id, kept up to date in a forked child (``os.getpid()`` is a system call; this is
#: looked up for every request)
_this_pid = _pid


def _forked() -> None:
    global _this_pid
    _this_pid = os.getpid()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)


def pid() -> int:
    """This process's id, without a system call (see :data:`_this_pid`)."""
    return _this_pid


def _check_fork() -> None:
    global _created, _requests, _lock, _pid
    if _this_pid != _pid:  # forked: the parent's counts and lock are not ours
        _created = _requests = 0
        _lock = threading.Lock()
        _pid = os.getpid()


def count_request() -> None:
    global _requests
    with _lock:
        _requests += 1


def count_client() -> None:
    """One more client built in this process (an httpx client in :mod:`.clients`, an aiohttp session in
    :mod:`.aio`)."""
    global _created
    _check_fork()
    with _lock:
        _created += 1


def counts() -> tuple[int, int]:
    """``(clients built, requests sent)`` by this process so far."""
    _check_fork()
    with _lock:
        return _created, _requests


@functools.lru_cache(maxsize=256)
def _key(config: NetConfig) -> NetConfig:
    """The part of ``config`` a client (httpx client, aiohttp session) depends on.

    headers (and their scope), referer, offline, local files, retries, pacing and body caps are per request,
    not per client: one pool across them. (Memoised: it is looked up for every request.)
    """
    return replace(config, headers=(), referer=None, offline=False, retries=0, retry_delay=0.0, min_interval=0.0,
                   adaptive=True, cookies=None, max_metadata_bytes=MAX_METADATA_BYTES, max_tile_bytes=MAX_TILE_BYTES,
                   max_inflight_bytes=MAX_INFLIGHT_BYTES, local_root=None, header_host=None, header_all_hosts=False)


# --- the user's headers on redirects ----------------------------------------------------------------
#: the request extension (httpx) naming the ``(config, level_headers)`` a request was made with
SCOPE = "dezoomify_nb.scope"


@functools.lru_cache(maxsize=256)
def _scoped_names(config: NetConfig) -> tuple[str, ...]:
    return tuple(sorted(user_header_names(config)))


def header_scope(config: NetConfig, level_headers: tuple[tuple[str, str], ...]) -> tuple[Any, ...] | None:
    """What a redirect needs to give each hop the headers :meth:`NetConfig.request_headers` gives its host,
    or None when the user's headers go everywhere (none given, ``header_all_hosts``)."""
    if config.header_all_hosts or config.header_host is None or not _scoped_names(config):
        return None
    return (config, level_headers)


def rescope(headers: Any, host: str, scope: tuple[Any, ...]) -> None:
    """Set the user's headers in ``headers`` (an httpx ``Headers`` or a multidict) for a hop to ``host``:
    their values on the input's site, else what the request would carry without them.

    Both clients follow redirects themselves, each with its own rule (httpx drops Cookie on every redirect
    and Authorization across origins; aiohttp drops both across origins and keeps any other header): this
    makes every hop follow :meth:`NetConfig.sends_user_headers`."""
    config, level_headers = scope
    wanted = {k.lower(): v for k, v in config.request_headers(level_headers, host).items()}
    for name in _scoped_names(config):
        value = wanted.get(name)
        if value is not None:
            headers[name] = value
        elif name in headers:
            del headers[name]
