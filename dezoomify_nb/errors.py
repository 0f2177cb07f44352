"""The exception tree of dezoomify_nb.

Every error raised on purpose by this package derives from :class:`DezoomifyError`::

    DezoomifyError(Exception)
    ├─ DezoomerError
    │   ├─ NoDezoomerFound          no dezoomer understood the input; carries every reason
    │   ├─ WrongDezoomer            one dezoomer does not recognise the input (internal to auto)
    │   ├─ NeedsData                control flow: a parser asks for more bytes (never reaches users)
    │   └─ MetadataError(ValueError)  the metadata was recognised but is broken or insane
    ├─ FetchError(OSError)          a URL (metadata or tile) could not be fetched; .url, .status
    │   └─ TileFetchError           ... a tile, after its retries
    ├─ LevelSelectionError(ValueError)  no level matches the requested constraints
    ├─ DownloadError                a download finished with missing tiles (.failed, .total, .path)
    ├─ DownloadCancelled            a download was cancelled through ``save(cancel=...)``
    ├─ CacheError
    ├─ BrowserError                 the browser mode cannot run (Playwright or Chromium missing) or failed
    └─ WriterError
        ├─ UnsupportedFormatError(ValueError)  no writer for that extension
        └─ ImageTooLargeError(ValueError)      e.g. JPEG over 65,500 px, memory over budget
            └─ MemoryBudgetError                 a level or canvas cannot fit the memory budget

Each carries a ``hint`` (a short suggestion for the user) that the CLI prints; :func:`hint_for` gives the
default of its class when a raise site set none, so every ``error:`` line has its ``hint:`` line.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

_HTTP_DENIED = re.compile(r"\bHTTP 40[13]\b")
_NOT_AN_IMAGE = re.compile(r"\bnot (?:an allowed image format|a readable \w+ image)\b")


class DezoomifyError(Exception):
    """Base class of every error raised on purpose by dezoomify_nb."""

    hint: str = ""

    def __init__(self, message: str = "", *, hint: str | None = None) -> None:
        super().__init__(message)
        if hint is not None:
            self.hint = hint


class DezoomerError(DezoomifyError):
    """A dezoomer could not produce an image."""


class WrongDezoomer(DezoomerError):
    """This dezoomer does not recognise the input; auto-detection tries the next one."""


class NeedsData(DezoomerError):
    """A parser needs the bytes of more URLs before it can go on.

    Raised by :meth:`~dezoomify_nb.dezoomers.base.Context.get`; the driver in
    :mod:`dezoomify_nb.resolve` fetches them and runs the parser again.
    """

    def __init__(self, urls: Sequence[str]) -> None:
        self.urls = tuple(dict.fromkeys(urls))
        super().__init__(f"needs data from {', '.join(self.urls)}")


class MetadataError(DezoomerError, ValueError):
    """The metadata was recognised but is malformed, inconsistent or over a sanity cap."""


class NoDezoomerFound(DezoomerError):
    """No dezoomer could open the input. ``reasons`` lists ``(dezoomer name, reason)``."""

    hint = (
        "Check that the URL points to the image's metadata (ImageProperties.xml, .dzi, info.json, ...) "
        "or force a dezoomer with --dezoomer; --logging debug shows every request."
    )

    def __init__(self, url: str, reasons: Sequence[tuple[str, str]]) -> None:
        self.url = url
        self.reasons = list(reasons)
        lines = "\n".join(f" - {name}: {reason}" for name, reason in self.reasons)
        super().__init__(f"No dezoomer could open {url!r}:\n{lines}" if lines else f"No dezoomer could open {url!r}")
        if any(_HTTP_DENIED.search(reason) for _, reason in self.reasons):
            self.hint = REFERER_HINT


#: The hint of a web page in which nothing was found, when a browser is installed (see dezoomify_nb.browser).
BROWSER_HINT = ("The viewer probably builds its image URL with JavaScript: try --browser (in Python: "
                "dz.open(url, browser=True)), which loads the page in headless Chromium and watches its requests.")
#: The hint of an HTTP 401/403: most such servers only serve their own viewer page.
REFERER_HINT = (
    "The server refused access. Many sites only serve tiles to their own viewer page: "
    "add -H \"Referer: <viewer page URL>\" (in Python: headers={\"Referer\": ...}), "
    "and -H \"Cookie: ...\" if you are logged in."
)
#: The hint of a TLS certificate that could not be verified.
TLS_HINT = (
    "The server's TLS certificate could not be verified. If you trust this server, retry with "
    "--accept-invalid-certs (in Python: accept_invalid_certs=True)."
)
_TLS_MARKERS = ("CERTIFICATE_VERIFY_FAILED", "certificate verify failed", "SSLError", "SSL:")


def _specific_hint(message: str, status: int | None) -> str | None:
    """A hint that depends on what went wrong (403, TLS), or None."""
    if status in (401, 403):
        return REFERER_HINT
    if status is None and any(m in message for m in _TLS_MARKERS):
        return TLS_HINT
    return None


class FetchError(DezoomifyError, OSError):
    """A URL could not be fetched. ``status`` is the HTTP status, or None for a network/IO error.

    ``url`` is the URL (or local path) that failed; ``attempts`` how many times it was tried. A 401/403
    gets :data:`REFERER_HINT` and a TLS failure :data:`TLS_HINT` unless a hint is given.
    """

    def __init__(self, url: str, message: str, *, status: int | None = None, attempts: int = 1,
                 hint: str | None = None) -> None:
        self.url = url
        self.status = status
        self.attempts = attempts
        specific = _specific_hint(message, status)
        if specific is not None and (hint is None or specific == TLS_HINT):
            hint = specific  # the TLS hint beats a generic "check your connection"
        super().__init__(message, hint=hint)

    def __reduce__(self):  # picklable across dask workers
        return (_rebuild_fetch_error, (type(self), self.url, str(self), self.status, self.attempts, self.hint))


def _rebuild_fetch_error(cls, url, message, status, attempts, hint):
    return cls(url, message, status=status, attempts=attempts, hint=hint)


class TileFetchError(FetchError):
    """A tile could not be fetched or decoded after all its retries."""


class LevelSelectionError(DezoomifyError, ValueError):
    """No zoom level matches the requested constraints."""


class GeoError(DezoomifyError, ValueError):
    """A bounding box or CRS that cannot be used: malformed, unknown, outside the image, or not a map."""

    hint = ("Give --bbox west,south,east,north in longitude/latitude degrees (or in the CRS of --bbox-crs "
            "EPSG:NNNN), inside the map's extent.")


class DownloadError(DezoomifyError):
    """Some tiles could not be downloaded; the image was still written with those areas empty."""

    hint = "Run again (with --tile-cache to keep what was fetched), or try --retries 5 --retry-delay 5s -n 2."

    def __init__(self, message: str, *, failed: int, total: int, path: str | None = None,
                 hint: str | None = None) -> None:
        self.failed = failed
        self.total = total
        self.path = path
        super().__init__(message, hint=hint)


#: The hint of tiles refused for their format (see :mod:`dezoomify_nb.imageformats`).
NOT_AN_IMAGE_HINT = (
    "The server answered tile requests with something that is not an image of an allowed format. Open one "
    "tile URL in a browser: an HTML page often means the site wants its viewer page as Referer or a login "
    "Cookie (-H \"Referer: ...\")."
)

#: The hint of tiles refused for their size (``dezoomify_nb.net.failures.too_large``).
TILE_CAP_HINT = ("Tiles larger than the tile size cap were refused; if they are genuine, raise it: "
                 "--max-tile-size 128MiB (API: max_tile_bytes=...).")
#: The hint of tiles that are local files (or non-http URLs) the source may not read (net/local.py).
LOCAL_TILES_HINT = ("Some tiles are local files or non-http(s) URLs, which were not read: a document fetched over "
                    "http(s) may only point to http(s) URLs, and a local input only to files in its own folder.")


#: The hint of tiles the server says do not exist (404, 410: never retried, so retries will not help).
NOT_FOUND_HINT = ("The server says these tiles do not exist (HTTP 404/410), so retrying will not help: the "
                  "image may have fewer tiles than its metadata claims; try another level (--zoom-level) or "
                  "--dezoomer.")
_HTTP_GONE = re.compile(r"\bHTTP 40[4]\b|\bHTTP 410\b")
#: log level of information the user should see (the CLI prints it plainly, ``-q`` hides it); not a warning
NOTICE = logging.INFO + 5
logging.addLevelName(NOTICE, "NOTICE")


def hint_for_failures(reasons: Sequence[str]) -> str | None:
    """:data:`REFERER_HINT` when some of these failure messages are an HTTP 401/403,
    :data:`NOT_AN_IMAGE_HINT` when tiles were refused for their format, :data:`TILE_CAP_HINT` when some
    tile was over its size cap, :data:`LOCAL_TILES_HINT` when some were local files not to be read, else None."""
    if any(_HTTP_DENIED.search(r) for r in reasons):
        return REFERER_HINT
    if any(_NOT_AN_IMAGE.search(r) for r in reasons):
        return NOT_AN_IMAGE_HINT
    if any("larger than the tile size cap" in r for r in reasons):
        return TILE_CAP_HINT
    if any(r.startswith("refusing ") or ": refusing " in r for r in reasons):
        return LOCAL_TILES_HINT
    if reasons and all(_HTTP_GONE.search(r) for r in reasons):
        return NOT_FOUND_HINT
    return None


class DownloadCancelled(DezoomifyError):
    """A download was cancelled (``save(cancel=event)`` with the event set); no output is left behind."""

    hint = "Start the download again when you want it."


class CacheError(DezoomifyError):
    """The tile cache is unusable (e.g. it belongs to another image)."""


class BrowserError(DezoomifyError):
    """The browser mode cannot run here (Playwright or Chromium missing) or the browser failed."""

    hint = ("The browser mode needs Playwright and Chromium: pip install 'dezoomify_nb[browser]' and "
            "apt-get install chromium, or --browser-path.")


class WriterError(DezoomifyError):
    """The output file could not be written."""


class UnsupportedFormatError(WriterError, ValueError):
    """No writer handles the requested output extension."""


class ImageTooLargeError(WriterError, ValueError):
    """The image does not fit the output format's limits or the memory budget."""


class MemoryBudgetError(ImageTooLargeError):
    """Downloading or writing would need more memory than the budget (``$DEZOOMIFY_NB_MEMORY_BUDGET``).

    ``need`` and ``budget`` are in bytes. Raised before anything is fetched.
    """

    def __init__(self, message: str, *, need: int, budget: int, hint: str | None = None) -> None:
        self.need = need
        self.budget = budget
        super().__init__(message, hint=hint)


#: The hint printed for an error that carries none, by class (the nearest class in the error's MRO wins).
#: A last resort: errors are meant to be raised with a hint that says what to do about *that* failure.
DEFAULT_HINTS: dict[type[BaseException], str] = {
    DezoomifyError: "Run again with --logging debug to see what was done.",
    DezoomerError: "Check the URL in a browser, or force a dezoomer with --dezoomer; --logging debug shows every request.",
    MetadataError: (
        "The image's metadata is broken, inconsistent or over a sanity cap. Check the URL in a browser, try "
        "--dezoomer auto or another dezoomer; --logging debug shows every request."
    ),
    FetchError: "Check the URL (and your connection); --logging debug shows every request.",
    TileFetchError: "Run again (with --tile-cache to keep what was fetched), or try --retries 5 --retry-delay 5s -n 2.",
    LevelSelectionError: "Run without --zoom-level/--max-width/--max-height to see the levels, then choose one.",
    CacheError: "Give another --tile-cache directory (or remove this one).",
    WriterError: "Check that the output folder is writable and has free space, or choose another output path or format.",
    ImageTooLargeError: "Save as PNG (.png is streamed, any size), choose a smaller level (--max-width) or --region.",
}
#: The hint of an operating-system error (disk full, permission denied, …) that is not one of ours.
OS_HINT = "Check the output path and free disk space; --logging debug shows details."


def hint_for(exc: BaseException) -> str:
    """``exc.hint``, else the default hint of its class (:data:`DEFAULT_HINTS`), else :data:`OS_HINT` for an
    ``OSError``; ``""`` for anything else. The CLI prints it after every ``error:`` line."""
    hint = getattr(exc, "hint", "")
    if hint:
        return hint
    for cls in type(exc).__mro__:
        if cls in DEFAULT_HINTS:
            return DEFAULT_HINTS[cls]
    return OS_HINT if isinstance(exc, OSError) else ""


__all__ = [
    "BrowserError",
    "CacheError",
    "DezoomerError",
    "DezoomifyError",
    "DownloadCancelled",
    "DownloadError",
    "FetchError",
    "ImageTooLargeError",
    "LevelSelectionError",
    "MemoryBudgetError",
    "MetadataError",
    "NeedsData",
    "NoDezoomerFound",
    "TileFetchError",
    "UnsupportedFormatError",
    "WriterError",
    "WrongDezoomer",
]
