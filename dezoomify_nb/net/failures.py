"""What a failed request becomes: one wording, one hint and one retry rule for both transports.

The httpx path (:mod:`.fetch`) and the aiohttp path (:mod:`.aio`) both raise the :class:`_Attempt`\\ s
built here, so a message such as ``ConnectError while fetching URL: ...`` or ``HTTP 503 Service
Unavailable for URL`` and the decision to retry do not depend on the transport.
"""

from __future__ import annotations

import errno
import math
import os
import re
import socket
import time
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from ..errors import FetchError
from .config import format_size

#: client errors worth retrying (timeouts and rate limits); every other 4xx is final
_RETRY_4XX = frozenset({408, 425, 429})
#: the longest wait a ``Retry-After`` may impose (a longer one is shortened to this)
MAX_RETRY_AFTER = 60.0
_SECONDS = re.compile(r"\s*\d{1,12}(?:\.\d{1,6})?\s*\Z")
_HINT_429 = "The server limits the request rate: try -n 2 -i 500ms --retries 5 --retry-delay 5s."
_HINT_SLOW = "The server is slow: try a longer --timeout, fewer parallel requests (-n 4) and --retries 3."
_HINT_REDIRECTS = "The server redirects in a loop; the URL may need a login (-H 'Cookie: ...') or be wrong."
_HINT_CONNECT = "Check the host name and your connection (and proxies); --logging debug shows details."
_HINT_DNS = "Check the host name in the URL (a typo?) and your connection (DNS, proxies)."
#: errno -> the plain words of a connection failure
_CONNECT_WORDS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.ETIMEDOUT: "timed out",
    errno.ENETUNREACH: "network unreachable",
    errno.EHOSTUNREACH: "host unreachable",
    errno.EADDRNOTAVAIL: "address not available",
}
_DNS_WORDS = ("Name or service not known", "nodename nor servname", "getaddrinfo failed",
              "No address associated", "Temporary failure in name resolution", "Name does not resolve")


class _Attempt(Exception):
    """One failed attempt: carries the FetchError and whether another attempt may help."""

    def __init__(self, error: FetchError, retry: bool, wait: float | None = None) -> None:
        self.error, self.retry, self.wait = error, retry, wait


def _retryable(status: int) -> bool:
    return status >= 500 or status in _RETRY_4XX


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delay-seconds or an HTTP date, at most
    :data:`MAX_RETRY_AFTER` (a date in the past: 0). ``None`` (the usual retry delay applies) if absent or
    invalid: negative, ``nan``, ``inf``, exponents, garbage, an unreadable date."""
    if not value or len(value) > 64:
        return None
    if _SECONDS.match(value):
        seconds = float(value)
    else:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, OverflowError, IndexError, AttributeError):
            return None
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def status_failure(url: str, status: int, reason: str | None, retry_after: str | None) -> _Attempt:
    """An HTTP error status (4xx, 5xx): retried if transient, after ``Retry-After`` when the server gives one.

    401/403 get :data:`~dezoomify_nb.errors.REFERER_HINT` from :class:`FetchError` itself.
    """
    text = f"HTTP {status} {reason} for {url}" if reason else f"HTTP {status} for {url}"
    err = FetchError(url, text, status=status, hint=_HINT_429 if status == 429 else None)
    return _Attempt(err, retry=_retryable(status), wait=parse_retry_after(retry_after))


def range_ignored(url: str, target: str) -> _Attempt:
    """A ``Range`` request answered with the whole file (200): this source cannot be read piece by piece."""
    return _Attempt(FetchError(
        url, f"the server ignores HTTP Range requests (it sent the whole file for {target})", status=200,
        hint="This format is read piece by piece; download the file itself and give its local path instead."),
        retry=False)


def too_large(url: str, cap: int, metadata: bool) -> _Attempt:
    """A body past its cap (decoded size, or a declared ``Content-Length``): no retry helps."""
    which, option, field = (("metadata", "--max-metadata-size", "max_metadata_bytes") if metadata
                            else ("tile", "--max-tile-size", "max_tile_bytes"))
    return _Attempt(FetchError(
        url, f"{url} is larger than the {which} size cap of {format_size(cap)} (decoded)",
        hint=f"If this {which} is genuine, raise the cap: {option} {format_size(cap * 4)} "
             f"(API: {field}=...)."), retry=False)


def unsupported_encoding(url: str, detail: str) -> _Attempt:
    """A ``Content-Encoding`` that cannot be decoded here: no retry helps."""
    return _Attempt(FetchError(
        url, f"{url}: the server sent {detail}",
        hint="Ask for plain bodies with -H 'Accept-Encoding: identity' (br needs the brotli package, "
             "zstd backports.zstd)."), retry=False)


def decode_failure(url: str, detail: str) -> _Attempt:
    """A compressed body that does not decode (damaged on the way?): retried like a network error."""
    return network_failure(url, "DecodingError", detail)


def deadline_failure(url: str, timeout: float) -> _Attempt:
    """The whole request (connect, headers, body) took longer than ``--timeout``: retried."""
    return network_failure(url, "Timeout", f"no complete response within --timeout {timeout:g}s")


def network_failure(url: str, kind: str, detail: object) -> _Attempt:
    """A request that got no HTTP status. ``kind`` is named as httpx names it (``ConnectError``,
    ``ConnectTimeout``, ``ReadTimeout``, ``TooManyRedirects``, ``RemoteProtocolError``, ``ReadError``…)
    whichever transport failed; ``detail`` is the transport's own description.

    A TLS failure (the detail names the certificate error) gets :data:`~dezoomify_nb.errors.TLS_HINT`
    from :class:`FetchError` itself. Everything but a redirect loop is retried.
    """
    if kind == "ConnectError":
        return _connect_failure(url, detail)
    if "Timeout" in kind:
        hint: str | None = _HINT_SLOW
    elif kind == "TooManyRedirects":
        hint = _HINT_REDIRECTS
    else:
        hint = None
    return _Attempt(FetchError(url, f"{kind} while fetching {url}: {detail}", hint=hint),
                    retry=kind != "TooManyRedirects")


def invalid_url(url: str, exc: Exception) -> _Attempt:
    """A URL the client cannot even send: no retry helps."""
    return _Attempt(FetchError(url, f"invalid URL {url[:200]}: {exc}"), retry=False)


def _os_error(detail: object) -> OSError | None:
    """The operating system's error under a transport's connection error (aiohttp: ``os_error``; httpx:
    the cause/context chain), or None."""
    seen: set[int] = set()
    todo: list[object] = [detail]
    while todo:
        exc = todo.pop(0)
        if exc is None or id(exc) in seen:
            continue
        seen.add(id(exc))
        if isinstance(exc, socket.gaierror) or (type(exc) in (OSError, ConnectionRefusedError, ConnectionResetError,
                                                              TimeoutError) and exc.errno is not None):
            return exc
        todo += [getattr(exc, "os_error", None), getattr(exc, "__cause__", None), getattr(exc, "__context__", None)]
    return None


def _host_port(url: str) -> str:
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        host = parts.hostname or "?"
    except ValueError:
        return url[:200]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _connect_failure(url: str, detail: object) -> _Attempt:
    """``could not connect to HOST:PORT: connection refused (URL)``, in plain words whichever transport
    failed. A host name that does not resolve is final (no retry helps within seconds)."""
    os_error = _os_error(detail)
    text = str(detail)
    where = _host_port(url)
    if isinstance(os_error, socket.gaierror) or any(w in text for w in _DNS_WORDS):
        host = where.rsplit(":", 1)[0]
        return _Attempt(FetchError(url, f"could not connect to {where}: the host name {host} does not resolve "
                                        f"(DNS) ({url})", hint=_HINT_DNS), retry=False)
    if os_error is not None and os_error.errno in _CONNECT_WORDS:
        words = _CONNECT_WORDS[os_error.errno]
        if os_error.strerror and os_error.strerror != os.strerror(os_error.errno) and not any(
                t in os_error.strerror for t in ("Connect call failed", "Multiple exceptions")):
            words += f" ({os_error.strerror[:200]})"  # a proxy's or a test router's own words
    elif "Connect call failed" in text or "Connection refused" in text:
        words = "connection refused"
    elif os_error is not None and os_error.strerror:
        words = os_error.strerror[:1].lower() + os_error.strerror[1:]
    else:
        words = text[:200] or "connection failed"
    hint = (f"Nothing answers at {where}: check that the server runs and the port is right."
            if words == "connection refused" else _HINT_CONNECT)
    return _Attempt(FetchError(url, f"could not connect to {where}: {words} ({url})", hint=hint), retry=True)
