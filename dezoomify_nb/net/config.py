"""Network settings: a frozen, picklable recipe. Live clients are built from it per process and loop."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from .._version import __version__

USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    f"Chrome/120.0 Safari/537.36 dezoomify_nb/{__version__}"
)

DEFAULT_HEADERS: tuple[tuple[str, str], ...] = (
    ("User-Agent", USER_AGENT),
    ("Accept-Language", "en,en-US;q=0.8"),
    ("Accept", "*/*"),
)

#: Largest response body accepted (metadata or tile); a hostile server cannot make us buffer more.
MAX_BODY_BYTES = 256 * 1024 * 1024

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
    timeout: float = 30.0
    connect_timeout: float = 6.0
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

    def request_headers(self, level_headers: tuple[tuple[str, str], ...] = ()) -> dict[str, str]:
        """Defaults < Referer (input URL) < level headers < user headers (a fresh dict)."""
        return dict(_request_headers(self, level_headers))


@functools.lru_cache(maxsize=256)
def _request_headers(config: NetConfig, level_headers: tuple[tuple[str, str], ...]) -> dict[str, str]:
    """:meth:`NetConfig.request_headers`, memoised (looked up for every tile)."""
    referer = (("Referer", config.referer),) if config.referer and config.referer.startswith("http") else ()
    return merge_headers(DEFAULT_HEADERS, referer, level_headers, config.headers)
