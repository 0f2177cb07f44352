"""Progress reporting for downloads: a tqdm bar on stderr, or any callable; and cancellation.

A download is cancelled through ``save(cancel=event)``: :func:`cancellable` makes every strip and tile-row
iterator of the writer's source check ``event.is_set()`` before and after each item, and raise
:class:`~dezoomify_nb.errors.DownloadCancelled` (the writers then remove their partial output, and the
tiles still being fetched ahead are cancelled).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from .errors import DownloadCancelled
from .lazy import events

#: progress(done: int, failed: int, total: int) — called after every tile
ProgressCallback = Callable[[int, int, int], None]


@contextmanager
def track(token: str, total: int, progress: bool | ProgressCallback | Any = True, desc: str = "tiles"):
    """Report tile progress of the store ``token`` while the block runs.

    ``progress`` is True (a tqdm bar on stderr), False (nothing), a callable ``(done, failed, total)``,
    or an object with ``update(n)`` (a tqdm/ipywidgets-like bar supplied by the caller).
    """
    events.reset(token)
    counts = [0, 0]
    bar = None
    callback: ProgressCallback | None = None
    if progress is True:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc=desc, unit="tile", file=sys.stderr, dynamic_ncols=True, leave=True)
    elif callable(progress):
        callback = progress
    elif progress not in (False, None) and hasattr(progress, "update"):
        bar = progress

    def listener(ok: bool, url: str, error: Exception | None) -> None:
        counts[0 if ok else 1] += 1
        if bar is not None:
            bar.update(1)
            if not ok and hasattr(bar, "set_postfix_str"):
                bar.set_postfix_str(f"{counts[1]} failed", refresh=False)
        if callback is not None:
            callback(counts[0], counts[1], total)

    unsubscribe = events.subscribe(token, listener)
    try:
        yield counts
    finally:
        unsubscribe()
        if bar is not None and progress is True:
            bar.close()


class CancelToken(Protocol):
    """What ``save(cancel=...)`` accepts: a :class:`threading.Event`, or anything with ``is_set()``."""

    def is_set(self) -> bool: ...


def _guard(method: Callable[..., Any], cancel: CancelToken) -> Callable[..., Iterator[Any]]:
    def checked(*args: Any, **kwargs: Any) -> Iterator[Any]:
        items = iter(method(*args, **kwargs))
        try:
            while True:
                if cancel.is_set():
                    raise DownloadCancelled("The download was cancelled")
                try:
                    item = next(items)
                except StopIteration:
                    return
                if cancel.is_set():
                    raise DownloadCancelled("The download was cancelled")
                yield item
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()  # a LevelStrips generator cancels the rows it fetches ahead

    return checked


def _patch(level: Any, cancel: CancelToken) -> None:
    level.strips = _guard(level.strips, cancel)
    raw = getattr(level, "raw", None)
    if raw is not None and hasattr(raw, "tile_rows"):
        raw.tile_rows = _guard(raw.tile_rows, cancel)


def cancellable(source: Any, cancel: CancelToken | None) -> Any:
    """``source`` (a writer's strip or level source, made for one download) checking ``cancel``.

    Its ``strips()``, and those of the levels its ``pyramid()`` returns (with their raw ``tile_rows``),
    raise :class:`~dezoomify_nb.errors.DownloadCancelled` once ``cancel.is_set()``. The source is patched
    in place (it belongs to one download) and returned.
    """
    if cancel is None:
        return source
    _patch(source, cancel)
    make = getattr(source, "pyramid", None)
    if make is not None:
        def pyramid(tile: int) -> Any:
            levels = make(tile)
            for lv in levels:
                _patch(lv, cancel)
            return levels

        source.pyramid = pyramid
    return source
