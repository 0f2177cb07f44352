"""All network I/O of dezoomify_nb: one layer on aiohttp (default) or httpx, and local files."""

from .config import DEFAULT_HEADERS, NetConfig, parse_duration, parse_header, parse_size
from .fetch import fetch, fetch_sync

__all__ = ["DEFAULT_HEADERS", "NetConfig", "fetch", "fetch_sync", "parse_duration", "parse_header",
           "parse_size"]
