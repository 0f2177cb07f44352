"""Network settings: a frozen, picklable recipe. Live clients are built from it per process and loop."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .._version import __version__
from .codecs import ACCEPT_ENCODING
from .cookies import CookieSet, cookie_header

USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    f"Chrome/120.0 Safari/537.36 dezoomify_nb/{__version__}"
)

DEFAULT_HEADERS: tuple[tuple[str, str], ...] = (
    ("User-Agent", USER_AGENT),
    ("Accept-Language", "en,en-US;q=0.8"),
    ("Accept", "*/*"),
    ("Accept-Encoding", ACCEPT_ENCODING),  # only what .codecs decodes (a capped, streaming decode)
)

MiB = 1024 * 1024
#: default cap of a metadata document's decoded body (info.json, XML, web pages, IIIF manifests): the
#: largest real ones (manifests of books of thousands of pages) are a few MiB
MAX_METADATA_BYTES = 16 * MiB
#: default cap of a tile's decoded body (real tiles: a few KiB to a few MiB)
MAX_TILE_BYTES = 32 * MiB
#: default budget of decoded body bytes held by all the requests in flight (per event loop or process)
MAX_INFLIGHT_BYTES = 256 * MiB

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|m|min|h|ns|us)?\s*$", re.IGNORECASE)
_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_duration(text: str | float | int) -> float:
    """``"10ms"`` → 0.01, ``"2s"`` → 2.0, ``"1m"``/``"1min"`` → 60.0; a bare number is seconds."""
    if isinstance(text, int | float):
        if text < 0:
            raise ValueError(f"negative duration: {text}")
        return float(text)
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"invalid duration {text!r} (examples: 50ms, 2s, 1m)")
    return float(m.group(1)) * _UNITS[(m.group(2) or "s").lower()]


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)


def parse_size(text: str | int) -> int:
    """``"16MiB"``, ``"16M"`` → 16777216, ``"512k"`` → 524288, ``"1GiB"``; a bare number is bytes
    (binary units: k = 1024)."""
    if isinstance(text, int):
        if text < 1:
            raise ValueError(f"size must be positive: {text}")
        return text
    m = _SIZE.match(text)
    if not m or (m.group(3) and not m.group(2) and m.group(3).lower() != "b"):
        raise ValueError(f"invalid size {text!r} (examples: 16MiB, 512k, 1G)")
    value = int(float(m.group(1)) * 1024 ** " kmgt".index(m.group(2).lower() or " "))
    if value < 1:
        raise ValueError(f"size must be positive: {text!r}")
    return value


def format_size(n: int) -> str:
    """``16777216`` → ``"16MiB"``, ``1536`` → ``"1.5KiB"``, ``100`` → ``"100B"``."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.4g}{unit}"
    return f"{n}B"


def parse_header(text: str) -> tuple[str, str]:
    """``"Name: value"`` → ``("Name", "value")``, split at the first colon, trimmed."""
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise ValueError(f"invalid header {text!r}: expected 'Name: value'")
    return name.strip(), value.strip()


def merge_headers(*groups: tuple[tuple[str, str], ...] | list[tuple[str, str]]) -> dict[str, str]:
    """Later groups override earlier ones, names compared case-insensitively."""
    merged: dict[str, tuple[str, str]] = {}
    for group in groups:
        for name, value in group:
            merged[name.lower()] = (name, value)
    return dict(merged.values())


@dataclass(frozen=True)
class NetConfig:
    """How to talk to servers. Durations in seconds. Hashable: it keys the per-loop client registry."""

    parallelism: int = 16
    min_interval: float = 0.05
    #: the whole request's deadline: connect, headers and body (a server dripping bytes fails after it)
    timeout: float = 30.0
    connect_timeout: float = 6.0
    #: the longest silence between two reads of a response; ``None``: ``timeout``
    read_timeout: float | None = None
    retries: int = 1
    retry_delay: float = 2.0
    headers: tuple[tuple[str, str], ...] = field(default=())
    accept_invalid_certs: bool = False
    #: idle (keep-alive) connections kept per host, at least one per ``parallelism`` slot; 0: none, a new
    #: connection for every request
    max_idle_per_host: int = 32
    #: the page the image was found on (sent as Referer unless headers override it)
    referer: str | None = None
    #: never touch the network: metadata and tiles come from the tile cache (or local files) only
    offline: bool = False
    #: on a dask.distributed cluster: at most this many requests per host at once across every worker
    #: (a ``distributed.Semaphore`` per host, held from worker threads: requests then go through httpx);
    #: ``None``: each process keeps its own ``parallelism``
    cluster_parallelism: int | None = None
    #: ``"aiohttp"`` (default: requests on the event loop, ~0.1 ms of CPU per request) or ``"httpx"`` (a sync
    #: client shared by worker threads, ~0.6–1.7 ms per request); same messages, retries and limits
    transport: str = "aiohttp"
    #: cap of a metadata document's body, decoded (what the dezoomers read: info.json, XML, pages…)
    max_metadata_bytes: int = MAX_METADATA_BYTES
    #: cap of a tile's body, decoded
    max_tile_bytes: int = MAX_TILE_BYTES
    #: decoded body bytes held by the requests in flight, all hosts together (per event loop for aiohttp,
    #: per process for httpx); a request past it waits for another to end (the oldest always proceeds)
    max_inflight_bytes: int = MAX_INFLIGHT_BYTES
    #: the folder (a real path) under which local files may be read: set by :func:`dezoomify_nb.open` only
    #: when the user gives a local path as the input (its folder), carried unchanged to the images and
    #: collection items found from it, and dropped as soon as a document fetched over http(s) is read.
    #: ``None``: no local file is ever read (see :mod:`.local`)
    local_root: str | None = None
    #: the host whose site receives the user's ``headers`` (``-H``): set from the input URL; other hosts get
    #: only the default and dezoomer headers (see :func:`same_site`). ``None``: not scoped yet (the first
    #: http(s) URL resolved sets it)
    header_host: str | None = None
    #: send the user's ``headers`` to every host (``--header-all-hosts``)
    header_all_hosts: bool = False
    #: a 429 or 503 halves the host's parallel requests and doubles its pacing, recovered slowly after
    #: successes (additive increase, multiplicative decrease); ``False``: a fixed rate
    adaptive: bool = True
    #: cookies to send (``--cookies``), as data: each goes to the hosts its domain matches (see :mod:`.cookies`)
    cookies: CookieSet | None = None

    def __post_init__(self) -> None:
        if self.parallelism < 1:
            raise ValueError("parallelism must be at least 1")
        if self.retries < 0:
            raise ValueError("retries must be at least 0")
        if self.transport not in ("httpx", "aiohttp"):
            raise ValueError(f"transport must be 'httpx' or 'aiohttp', not {self.transport!r}")
        if self.cluster_parallelism is not None and self.cluster_parallelism < 1:
            raise ValueError("cluster_parallelism must be at least 1 (or None)")
        for name in ("min_interval", "timeout", "connect_timeout", "retry_delay"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.read_timeout is not None and self.read_timeout <= 0:
            raise ValueError("read_timeout must be positive (or None)")
        for name in ("max_metadata_bytes", "max_tile_bytes", "max_inflight_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")

    def request_headers(self, level_headers: tuple[tuple[str, str], ...] = (), host: str = "") -> dict[str, str]:
        """Defaults < Referer (input URL) < level headers < user headers (a fresh dict).

        The user headers are left out when ``host`` (a request's ``netloc``) is not on the input's site
        (:meth:`sends_user_headers`).
        """
        return dict(_request_headers(self, level_headers, self.sends_user_headers(host)))

    def cookie_header(self, url: str, host: str) -> str | None:
        """The ``Cookie`` header of a request to ``url`` (whose ``netloc`` is ``host``), if any cookie matches."""
        if self.cookies is None:
            return None
        own = self.header_all_hosts or self.header_host is None or same_site(self.header_host, host)
        path = urlsplit(url).path or "/"
        return cookie_header(self.cookies, url.startswith("https:"), _hostname(host), path, own)

    def sends_user_headers(self, host: str) -> bool:
        """Do the user's ``headers`` go to ``host``? Yes on the input's site, or with ``header_all_hosts``."""
        if not self.headers or self.header_all_hosts or self.header_host is None:
            return True
        return same_site(self.header_host, host)


#: user headers that carry no secret and go to every host like the defaults do (a Referer or User-Agent
#: the site checks on its tile server, often on another site)
PUBLIC_HEADERS = frozenset({"user-agent", "referer", "accept", "accept-language"})


@functools.lru_cache(maxsize=512)
def _request_headers(config: NetConfig, level_headers: tuple[tuple[str, str], ...], user: bool) -> dict[str, str]:
    """:meth:`NetConfig.request_headers`, memoised (looked up for every tile)."""
    referer = (("Referer", config.referer),) if config.referer and config.referer.startswith("http") else ()
    mine = config.headers if user else tuple(h for h in config.headers if h[0].lower() in PUBLIC_HEADERS)
    return merge_headers(DEFAULT_HEADERS, referer, level_headers, mine)


def user_header_names(config: NetConfig) -> frozenset[str]:
    """Lower-case names of the user's headers that are scoped to the input's site."""
    return frozenset(n.lower() for n, _ in config.headers if n.lower() not in PUBLIC_HEADERS)


#: second-level labels under which a two-letter country code sells domains (``example.co.uk``, ``x.com.au``,
#: ``u.ac.jp``): there the site is the last three labels
_SECOND_LEVEL = frozenset({
    "ac", "co", "com", "ed", "edu", "go", "gob", "gouv", "gov", "govt", "gv", "lg", "ltd", "mil", "ne", "net",
    "nhs", "nic", "nom", "or", "org", "plc", "sch",
})
#: shared hosting domains whose sub-domains belong to different owners: there too, three labels
_SHARED = frozenset({
    "github.io", "gitlab.io", "blogspot.com", "herokuapp.com", "appspot.com", "netlify.app", "vercel.app",
    "pages.dev", "workers.dev", "azurewebsites.net", "cloudfront.net", "amazonaws.com", "web.app",
    "firebaseapp.com", "glitch.me", "onrender.com", "fly.dev", "wordpress.com", "wixsite.com",
})


def _hostname(netloc: str) -> str:
    """``netloc`` without user info, port and trailing dot, lower-case (IPv6 literals keep no brackets)."""
    host = netloc.rpartition("@")[2].lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host[1:]
    return host.rpartition(":")[0].rstrip(".") if ":" in host else host.rstrip(".")


def site_of(host: str) -> str | None:
    """The registrable domain of ``host`` as far as can be told without the public-suffix list, or None
    for a host compared only exactly (an IP address, ``localhost``, a single label).

    The site is the last two labels (``images.example.org`` → ``example.org``), or the last three when
    the top-level domain has two letters and the second-to-last label is a generic one (``co.uk``,
    ``com.au``, ``ac.jp``, ``gouv.fr``…) or the last two are a shared hosting domain (``github.io``…).
    """
    host = _hostname(host)
    if not host or host == "localhost" or host.endswith(".localhost") or ":" in host:
        return None
    labels = host.split(".")
    if len(labels) < 2 or labels[-1].isdigit():  # a single label, or an IPv4 address
        return None
    tail = ".".join(labels[-2:])
    if (len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL) or tail in _SHARED:
        return ".".join(labels[-3:]) if len(labels) >= 3 else None
    return tail


@functools.lru_cache(maxsize=1024)
def same_site(a: str, b: str) -> bool:
    """Are hosts (or netlocs) ``a`` and ``b`` the same host, or on the same site (:func:`site_of`)?"""
    ha, hb = _hostname(a), _hostname(b)
    if ha == hb:
        return True
    site = site_of(ha)
    return site is not None and site == site_of(hb)
