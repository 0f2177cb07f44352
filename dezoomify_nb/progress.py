"""Progress reporting for downloads: a tqdm bar on stderr, or any callable."""

from __future__ import annotations

import sys
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

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
