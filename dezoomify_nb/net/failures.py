"""What a failed request becomes: one wording, one hint and one retry rule for both transports.

The httpx path (:mod:`.fetch`) and the aiohttp path (:mod:`.aio`) both raise the :class:`_Attempt`\\ s
built here, so a message such as ``ConnectError while fetching URL: ...`` or ``HTTP 503 Service
Unavailable for URL`` and the decision to retry do not depend on the transport.
"""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime

from ..errors import FetchError
from .config import MAX_BODY_BYTES

#: client errors worth retrying (timeouts and rate limits); every other 4xx is final
_RETRY_4XX = frozenset({408, 425, 429})
_MAX_RETRY_AFTER = 120.0
_HINT_429 = "The server limits the request rate: try -n 2 -i 500ms --retries 5 --retry-delay 5s."
_HINT_SLOW = "The server is slow: try a longer --timeout, fewer parallel requests (-n 4) and --retries 3."
_HINT_REDIRECTS = "The server redirects in a loop; the URL may need a login (-H 'Cookie: ...') or be wrong."
_HINT_CONNECT = "Check the host name and your connection (and proxies); --logging debug shows details."


class _Attempt(Exception):
    """One failed attempt: carries the FetchError and whether another attempt may help."""

    def __init__(self, error: FetchError, retry: bool, wait: float | None = None) -> None:
        self.error, self.retry, self.wait = error, retry, wait


def _retryable(status: int) -> bool:
    return status >= 500 or status in _RETRY_4XX


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (seconds or an HTTP date), capped; None if absent."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), _MAX_RETRY_AFTER)


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


def too_large(url: str) -> _Attempt:
    return _Attempt(FetchError(url, f"{url} is larger than {MAX_BODY_BYTES} bytes"), retry=False)


def network_failure(url: str, kind: str, detail: object) -> _Attempt:
    """A request that got no HTTP status. ``kind`` is named as httpx names it (``ConnectError``,
    ``ConnectTimeout``, ``ReadTimeout``, ``TooManyRedirects``, ``RemoteProtocolError``, ``ReadError``…)
    whichever transport failed; ``detail`` is the transport's own description.

    A TLS failure (the detail names the certificate error) gets :data:`~dezoomify_nb.errors.TLS_HINT`
    from :class:`FetchError` itself. Everything but a redirect loop is retried.
    """
    if "Timeout" in kind:
        hint: str | None = _HINT_SLOW
    elif kind == "TooManyRedirects":
        hint = _HINT_REDIRECTS
    elif kind == "ConnectError":
        hint = _HINT_CONNECT
    else:
        hint = None
    return _Attempt(FetchError(url, f"{kind} while fetching {url}: {detail}", hint=hint),
                    retry=kind != "TooManyRedirects")


def invalid_url(url: str, exc: Exception) -> _Attempt:
    """A URL the client cannot even send: no retry helps."""
    return _Attempt(FetchError(url, f"invalid URL {url[:200]}: {exc}"), retry=False)
