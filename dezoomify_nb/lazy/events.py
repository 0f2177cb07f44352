"""Process-local progress and failure bookkeeping for stores (which themselves only carry a token)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

#: callback(ok: bool, url: str, error: Exception | None)
Listener = Callable[[bool, str, Exception | None], None]


@dataclass
class TileStats:
    done: int = 0
    #: of ``done``, tiles read from the tile cache instead of the network
    cached: int = 0
    #: bytes of the tiles of ``done`` as served (network or cache)
    nbytes: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (url, reason)
    #: where each of ``failed`` is, ``(level, col, row)``, when the store knew it (None: only its URL)
    failed_at: list[tuple[int, int, int] | None] = field(default_factory=list)
    listeners: list[Listener] = field(default_factory=list)


_lock = threading.Lock()
_stats: dict[str, TileStats] = {}


def stats(token: str) -> TileStats:
    with _lock:
        s = _stats.get(token)
        if s is None:
            s = _stats[token] = TileStats()
        return s


def subscribe(token: str, listener: Listener) -> Callable[[], None]:
    """Call ``listener`` for every tile this store fetches in this process; returns an unsubscribe."""
    s = stats(token)
    with _lock:
        s.listeners.append(listener)

    def unsubscribe() -> None:
        with _lock:
            if listener in s.listeners:
                s.listeners.remove(listener)

    return unsubscribe


def reset(token: str) -> None:
    with _lock:
        s = _stats.get(token)
        if s is not None:
            s.done = 0
            s.cached = 0
            s.nbytes = 0
            s.failed.clear()
            s.failed_at.clear()


def forget(token: str) -> None:
    """Drop everything recorded under ``token`` (a finished task's private token)."""
    with _lock:
        _stats.pop(token, None)


def emit(token: str, ok: bool, url: str, error: Exception | None = None, *, cached: bool = False,
         nbytes: int = 0, tile: tuple[int, int, int] | None = None) -> None:
    s = stats(token)
    with _lock:
        if ok:
            s.done += 1
            s.cached += cached
            s.nbytes += nbytes
        else:
            s.failed.append((url, str(error)))
            s.failed_at.append(tile)
        listeners = list(s.listeners)
    for listener in listeners:
        listener(ok, url, error)
