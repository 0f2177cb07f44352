"""The ``aiohttp`` transport (``NetConfig(transport="aiohttp")``): requests on the event loop itself.

``bench/bench_http.py`` measured the client CPU per request at 20 ms latency: ~0.15 ms for aiohttp
against ~0.5 ms for a sync ``httpx.Client`` shared by threads (1.6 ms at -n 64, where the threads fight
over the GIL and httpcore's pool lock) and ~1–4 ms for ``httpx.AsyncClient``. Here the request runs on
the loop (no thread per request) and only the tile decode goes to a worker thread.

An ``aiohttp.ClientSession`` is bound to its event loop: one per loop and config, kept in a
``WeakKeyDictionary`` like the limiters, never pickled. Errors become the same ``FetchError``\\ s, with
the same retry decisions, as the httpx path in :mod:`.fetch`.
"""

from __future__ import annotations

import asyncio
import atexit
import weakref
from dataclasses import replace
from typing import Any

from ..errors import FetchError
from .config import MAX_BODY_BYTES, NetConfig

_sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[NetConfig, Any]] = weakref.WeakKeyDictionary()


def available() -> bool:
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        return False
    return True


def _session(config: NetConfig) -> Any:
    import aiohttp

    loop = asyncio.get_running_loop()
    per_loop = _sessions.get(loop)
    if per_loop is None:
        per_loop = _sessions[loop] = {}
    key = replace(config, headers=(), referer=None, offline=False, retries=0, retry_delay=0.0, min_interval=0.0)
    session = per_loop.get(key)
    if session is None or session.closed:
        connector = aiohttp.TCPConnector(
            limit=0,  # the per-host semaphores limit concurrency
            limit_per_host=0,
            ssl=False if config.accept_invalid_certs else None,
            keepalive_timeout=30,
        )
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=config.connect_timeout, sock_read=config.timeout)
        session = per_loop[key] = aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=True)
    return session


async def get(url: str, target: str, rng: tuple[int, int] | None, config: NetConfig, headers: dict[str, str],
              attempt_error: Any) -> bytes:
    """One GET on the running loop; failures raise ``attempt_error(FetchError, retry, wait)`` (fetch._Attempt)."""
    import aiohttp

    from .fetch import _HINT_429, _retryable

    if rng is not None:
        headers = {**headers, "Range": f"bytes={rng[0]}-{rng[1]}"}
    try:
        async with _session(config).get(target, headers=headers, max_redirects=10) as response:
            status = response.status
            if rng is not None and status == 200:
                raise attempt_error(FetchError(
                    url, f"the server ignores HTTP Range requests (it sent the whole file for {target})",
                    status=200, hint="This format is read piece by piece; download the file itself and "
                    "give its local path instead."), False)
            if status >= 400:
                err = FetchError(url, f"HTTP {status} {response.reason or ''} for {url}".replace("  ", " "),
                                 status=status, hint=_HINT_429 if status == 429 else None)
                raise attempt_error(err, _retryable(status), _retry_after(response.headers.get("Retry-After")))
            declared = response.content_length
            if declared is not None and declared > MAX_BODY_BYTES:
                raise attempt_error(FetchError(url, f"{url} is larger than {MAX_BODY_BYTES} bytes"), False)
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.content.iter_any():
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise attempt_error(FetchError(url, f"{url} is larger than {MAX_BODY_BYTES} bytes"), False)
                chunks.append(chunk)
            return b"".join(chunks)
    except aiohttp.TooManyRedirects as exc:
        raise attempt_error(FetchError(url, f"TooManyRedirects while fetching {url}: {exc}", hint=(
            "The server redirects in a loop; the URL may need a login (-H 'Cookie: ...') or be wrong.")),
            False) from exc
    except (aiohttp.InvalidURL, ValueError, UnicodeError) as exc:
        raise attempt_error(FetchError(url, f"invalid URL {url[:200]}: {exc}"), False) from exc
    except TimeoutError as exc:
        raise attempt_error(FetchError(url, f"timeout while fetching {url}", hint=(
            "The server is slow: try a longer --timeout, fewer parallel requests (-n 4) and --retries 3.")),
            True) from exc
    except aiohttp.ClientError as exc:
        hint = None
        if isinstance(exc, aiohttp.ClientConnectorError) and not isinstance(exc, aiohttp.ClientSSLError):
            hint = "Check the host name and your connection (and proxies); --logging debug shows details."
        raise attempt_error(FetchError(url, f"{type(exc).__name__} while fetching {url}: {exc}", hint=hint),
                            True) from exc


def close_all() -> None:
    """Close every session of this process (at exit: a running loop closes its own, others are dropped)."""
    for loop, sessions in list(_sessions.items()):
        for session in list(sessions.values()):
            if session.closed:
                continue
            try:
                if loop.is_running():
                    asyncio.run_coroutine_threadsafe(session.close(), loop).result(2)
                else:
                    connector = session.connector
                    session.detach()
                    if connector is not None:
                        connector._close()
            except Exception:  # shutting down: never raise from here
                pass
        sessions.clear()


atexit.register(close_all)


def _retry_after(value: str | None) -> float | None:
    from .fetch import parse_retry_after

    return parse_retry_after(value)
