"""Fetching bytes: HTTP(S), or a local file when :mod:`.local` allows it; retries, per-host limits, pacing.

Two transports (``NetConfig.transport``): ``"aiohttp"`` (the default: the request runs on the event loop,
:mod:`.aio`) and ``"httpx"`` (a sync ``httpx.Client`` per process, used from worker threads; also used
for ``cluster_parallelism``, whose cluster-wide semaphore blocks). Both raise the same failures
(:mod:`.failures`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import zlib
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

from ..errors import FetchError
from ..ranges import split_range as split_range  # byte-range URLs are a recipe: ..ranges
from ..ranges import with_range as with_range
from . import aio, local, loop
from .body import Body, sync_budget
from .cancel import CancelScope, current_scope
from .clients import Limiter, cluster_slot, deadline, get_client, get_executor, get_limiter
from .common import SCOPE, count_request, header_scope
from .config import NetConfig
from .failures import (
    _Attempt,
    deadline_failure,
    invalid_url,
    network_failure,
    range_ignored,
    status_failure,
)
from .failures import parse_retry_after as parse_retry_after
from .local import is_http as is_http
from .local import local_path as local_path

log = logging.getLogger("dezoomify_nb.net")

T = TypeVar("T")


def _read_local(url: str, config: NetConfig, cap: int, metadata: bool = False) -> bytes:
    """A local file, if :mod:`.local`'s rule allows it (a refusal is never retried)."""
    target, rng = split_range(url)
    try:
        return local.read(target, config, rng, cap, metadata)
    except FetchError as exc:
        if exc.url != url:  # name the range too
            named = type(exc)(url, str(exc), status=exc.status, hint=exc.hint or None)
            named.__dict__.update({k: v for k, v in exc.__dict__.items() if k == "explains_input"})
            exc = named
        raise _Attempt(exc, retry=False) from None


def declared_length(value: str | None) -> int | None:
    """A ``Content-Length`` value as a number (absurdly long ones as 2**64), ``None`` if absent or invalid."""
    if not value or not value.isascii() or not value.isdigit():
        return None
    return int(value) if len(value) < 20 else 1 << 64


def _get_http(url: str, config: NetConfig, headers: dict[str, str], metadata: bool = False,
              scope: tuple[Any, ...] | None = None) -> bytes:
    """One GET with the process's httpx client (runs in a worker thread); ``#bytes=a-b`` becomes a Range.

    The body is read as sent (``iter_raw``) and decoded by :class:`~.body.Body` under its cap; the whole
    request ends by ``config.timeout`` (the client's streams read the thread's ``deadline``).
    """
    target, rng = split_range(url)
    if rng is not None:
        headers = {**headers, "Range": f"bytes={rng[0]}-{rng[1]}"}
    count_request()
    end = deadline.at = time.monotonic() + config.timeout
    budget = sync_budget(config.max_inflight_bytes)
    body = None
    try:
        extensions = {SCOPE: scope} if scope is not None else None  # redirects: common.rescope
        with get_client(config).stream("GET", target, headers=headers, extensions=extensions) as response:
            if rng is not None and response.status_code == 200:
                raise range_ignored(url, target)
            if response.status_code >= 400:
                raise status_failure(url, response.status_code, response.reason_phrase,
                                     response.headers.get("Retry-After"))
            body = Body(url, config.max_metadata_bytes if metadata else config.max_tile_bytes, metadata,
                        response.headers.get("Content-Encoding"),
                        declared_length(response.headers.get("Content-Length")))
            token = id(body)
            for raw in response.iter_raw():
                for piece in body.decoded(raw):
                    body.add(piece)
                    if not budget.take(token, len(piece), end):
                        raise deadline_failure(url, config.timeout)
                if time.monotonic() > end:  # also when the client is not ours (tests route requests)
                    raise deadline_failure(url, config.timeout)
            return body.value()
    except httpx.TimeoutException as exc:
        if time.monotonic() >= end:
            raise deadline_failure(url, config.timeout) from exc
        raise network_failure(url, type(exc).__name__, exc) from exc
    except httpx.HTTPError as exc:  # ConnectError, ReadTimeout, TooManyRedirects, …: the class names the kind
        raise network_failure(url, type(exc).__name__, exc) from exc
    except (httpx.InvalidURL, ValueError, UnicodeError) as exc:  # malformed URL: no retry helps
        raise invalid_url(url, exc) from exc
    finally:
        deadline.at = None
        if body is not None:
            budget.release(id(body))


def _attempt(url: str, config: NetConfig, headers: dict[str, str], check: Callable[[bytes], T] | None,
             metadata: bool = False, scope: tuple[Any, ...] | None = None) -> Any:
    """Get the bytes and run ``check`` on them, in one worker-thread call."""
    if is_http(url):
        log.debug("GET %s", url)
        if config.cluster_parallelism:
            with cluster_slot(config, _host(url)):
                data = _get_http(url, config, headers, metadata, scope)
        else:
            data = _get_http(url, config, headers, metadata, scope)
    else:
        data = _read_local(url, config, config.max_metadata_bytes if metadata else config.max_tile_bytes, metadata)
    return data if check is None else _check(url, check, data)


def _check(url: str, check: Callable[[bytes], T], data: bytes) -> T:
    try:
        return check(data)
    except Exception as exc:  # undecodable content: retry like a network error
        raise _Attempt(FetchError(url, f"Invalid content at {url}: {exc}"), retry=True) from exc


async def _attempt_aio(url: str, config: NetConfig, headers: dict[str, str], metadata: bool = False,
                       scope: tuple[Any, ...] | None = None) -> bytes:
    """The GET of :func:`_attempt` on the running loop (aiohttp); :func:`fetch` runs the check after it."""
    log.debug("GET %s", url)
    target, rng = split_range(url)
    count_request()
    return await aio.get(url, target, rng, config, headers, metadata, scope)


async def fetch(
    url: str,
    config: NetConfig,
    *,
    level_headers: tuple[tuple[str, str], ...] = (),
    check: Callable[[bytes], T] | None = None,
    metadata: bool = False,
) -> bytes | T:
    """Fetch ``url`` with ``1 + config.retries`` attempts; return its bytes, or ``check(bytes)``.

    Inside a :mod:`cancel scope <dezoomify_nb.net.cancel>` the request is recorded there while it runs:
    cancelling the scope cancels it (and its retries); a cancelled scope refuses it before anything is sent.
    """
    cancel = current_scope()
    if cancel is None:
        return await _fetch(url, config, level_headers=level_headers, check=check, metadata=metadata)
    task = cancel.enter()
    try:
        return await _fetch(url, config, level_headers=level_headers, check=check, metadata=metadata, cancel=cancel)
    finally:
        cancel.leave(task)


async def _fetch(
    url: str,
    config: NetConfig,
    *,
    level_headers: tuple[tuple[str, str], ...] = (),
    check: Callable[[bytes], T] | None = None,
    metadata: bool = False,
    cancel: CancelScope | None = None,
) -> bytes | T:
    """:func:`fetch` itself: ``1 + config.retries`` attempts; its bytes, or ``check(bytes)``.

    ``metadata``: the body is a metadata document (capped by ``config.max_metadata_bytes``), else a tile
    (``config.max_tile_bytes``); each attempt ends by ``config.timeout``.

    ``check`` runs in the worker thread right after the request (e.g. a tile decode); if it raises, the
    attempt counts as failed and is retried like a network error. Concurrency and pacing are per host
    (``parallelism``, ``min_interval``). Raises :class:`~dezoomify_nb.errors.FetchError` at the end.
    """
    if config.offline and is_http(url):
        raise FetchError(url, f"offline: {url} is not in the tile cache",
                         hint="Run once without --offline (with the same --tile-cache) to fetch it.")
    attempts = 1 + config.retries
    host = _host(url) if is_http(url) else ""
    # the user's headers only on the input's site, also on each hop of a redirect (common.rescope)
    headers = config.request_headers(level_headers, host)
    if config.cookies is not None and host:  # each cookie only to the hosts its domain matches
        cookie = config.cookie_header(split_range(url)[0], host)
        if cookie is not None:
            headers["Cookie"] = cookie
    scope = header_scope(config, level_headers) if host else None
    limiter = get_limiter(config, host) if host else None
    delay = -1.0  # the first retry delay, computed on the first failure
    running = asyncio.get_running_loop()
    executor = get_executor(config)
    last: FetchError | None = None
    epoch = 0
    for attempt in range(attempts):
        if cancel is not None:
            cancel.check()
        try:
            if limiter is None:
                return await running.run_in_executor(executor, _attempt, url, config, headers, check, metadata,
                                                     scope)
            # the host's slot is held for the request only: the decode (check) runs after it is
            # released, so a busy CPU never leaves a slot idle (requests stay at -n the whole download)
            async with limiter.semaphore:
                if limiter.min_interval > 0:
                    await limiter.pace()
                if cancel is not None:
                    cancel.check()
                epoch = limiter.epoch
                if config.transport == "aiohttp" and not config.cluster_parallelism:
                    data = await _attempt_aio(url, config, headers, metadata, scope)
                else:
                    data = await running.run_in_executor(executor, _attempt, url, config, headers, None, metadata,
                                                         scope)
            if limiter.reduced:
                limiter.succeeded()
            if check is None:
                return data
            return await running.run_in_executor(executor, _check, url, check, data)
        except _Attempt as failed:
            last = failed.error
            last.attempts = attempt + 1
            slowed = limiter is not None and last.status in SLOW_DOWN and config.adaptive
            if slowed and limiter is not None:
                _slow_down(limiter, epoch, host)
            if not failed.retry or attempt + 1 >= attempts:
                break
            if delay < 0:  # spread retries so they do not come in bursts
                delay = config.retry_delay * (1 + (zlib.crc32(url.encode()) % 100) / 100)
            wait = delay if failed.wait is None else max(failed.wait, 0.0)
            # a "slow down" answered by the host's limiter is said once (_slow_down), its retries only in --logging info
            log.log(logging.INFO if slowed else logging.WARNING, "%s. Retrying in %.2fs (attempt %d of %d).", last, wait,
                    attempt + 2, attempts)
            await asyncio.sleep(wait)
            delay *= 2
    assert last is not None
    raise last


#: the statuses by which a server asks for fewer, slower requests
SLOW_DOWN = frozenset({429, 503})


def _slow_down(limiter: Limiter, epoch: int, host: str) -> None:
    """A 429/503 from ``host``: fewer parallel requests, slower pacing; the run says so once."""
    told = limiter.first_decrease is not None
    change = limiter.slow_down(epoch)
    if change is None:
        return
    if not told:
        log.warning("server asks to slow down: %d → %d parallel requests (%s)", change[0], change[1], host)
    else:
        log.info("server asks to slow down: %d → %d parallel requests, %.2fs between requests (%s)",
                 change[0], change[1], limiter.min_interval, host)


@functools.lru_cache(maxsize=1024)
def _origin(prefix: str) -> str:
    return urlsplit(prefix).netloc


def _host(url: str) -> str:
    """``netloc`` of an http(s) URL (memoised on the scheme and authority: looked up for every tile)."""
    end = url.find("/", url.find("//") + 2)
    return _origin(url if end < 0 else url[:end])


def fetch_sync(url: str, config: NetConfig, **kwargs: Any) -> bytes:
    """Blocking :func:`fetch` (runs on the private I/O loop; safe inside Jupyter)."""
    return loop.run(fetch(url, config, **kwargs))
