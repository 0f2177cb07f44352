"""A strip of page thumbnails for sources with many images (a 300-page manifest): :class:`PageStrip`.

The browser draws only the rows in view and asks the kernel for the thumbnails of the rows in view once
scrolling pauses (``{type: "want", gen, indices}``); the kernel makes them with ``fetch(index)`` (a
small preview: the page's metadata and one or two small tiles) on :data:`WORKERS` threads, newest
requests first, drops the queued requests of rows scrolled away, and answers each with the PNG bytes.
So a manifest of 300 pages costs the requests of the dozen thumbnails seen, not 300 metadata fetches.
:attr:`PageStrip.selected` is the chosen page (a click, or the arrow keys in the strip).
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from importlib import resources
from typing import Any

import anywidget
import traitlets

log = logging.getLogger("dezoomify_nb")

#: thumbnails made at once
WORKERS = 2


@functools.cache
def _source(name: str) -> str:
    return resources.files(__package__).joinpath(f"static/{name}").read_text("utf-8")


class PageStrip(anywidget.AnyWidget):
    """Page thumbnails with labels, virtualised; see the module docstring."""

    _esm = _source("strip.js")
    _css = _source("strip.css")

    #: one label per page
    labels = traitlets.List(traitlets.Unicode()).tag(sync=True)
    #: the chosen page (-1: none)
    selected = traitlets.Int(-1).tag(sync=True)
    #: bumped for every new list, so late thumbnails of the last one are dropped
    gen = traitlets.Int(0).tag(sync=True)

    def __init__(self, fetch: Callable[[int], bytes | None] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._fetch = fetch
        self._cond = threading.Condition()
        self._queue: list[int] = []  # wanted, not started; the newest request last
        self._cache: dict[int, bytes | None] = {}
        self._running: set[int] = set()
        self._workers: list[threading.Thread] = []
        #: indices whose thumbnail was made (fetched) for this list, in order
        self.fetched: list[int] = []
        self.on_msg(self._on_msg)

    def reset(self, labels: list[str], fetch: Callable[[int], bytes | None] | None, selected: int = 0) -> None:
        """A new list of pages; queued thumbnails of the last list are forgotten."""
        with self._cond:
            self._fetch = fetch
            self._queue.clear()
            self._cache.clear()
            self.fetched = []
        with self.hold_sync():
            self.labels = list(labels)
            self.selected = selected
            self.gen += 1

    def _on_msg(self, _widget: Any, content: Any, buffers: Any) -> None:
        if not isinstance(content, dict) or content.get("type") != "want" or content.get("gen") != self.gen:
            return
        try:
            wanted = [int(i) for i in content.get("indices", [])][:64]
        except (TypeError, ValueError):
            return
        n = len(self.labels)
        with self._cond:
            # rows scrolled away are no longer wanted: only what is in view now is queued
            self._queue = [i for i in wanted if 0 <= i < n and i not in self._running]
            ready = [i for i in self._queue if i in self._cache]
            self._queue = [i for i in self._queue if i not in self._cache][::-1]  # pop() takes the first row
            self._cond.notify_all()
            self._workers = [t for t in self._workers if t.is_alive()]
            while len(self._workers) < min(WORKERS, len(self._queue)):
                t = threading.Thread(target=self._work, daemon=True, name="dezoomify-strip")
                self._workers.append(t)
                t.start()
        for i in ready:
            self._reply(self.gen, i, self._cache[i])

    def _work(self) -> None:
        while True:
            with self._cond:
                if not self._queue:
                    return
                i, gen, fetch = self._queue.pop(), self.gen, self._fetch
                self._running.add(i)
            data: bytes | None = None
            try:
                data = fetch(i) if fetch is not None else None
            except Exception:  # noqa: BLE001 - a page without a preview shows "no preview"
                log.debug("no thumbnail for page %d", i, exc_info=True)
            with self._cond:
                self._running.discard(i)
                if gen != self.gen:
                    continue
                self._cache[i] = data
                self.fetched.append(i)
            self._reply(gen, i, data)

    def wait(self, timeout: float = 30.0) -> None:
        """Wait until no thumbnail is queued or being made (tests)."""
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._cond:
                if not self._queue and not self._running:
                    return
            time.sleep(0.02)
        raise TimeoutError("the strip is still making thumbnails")

    def _reply(self, gen: int, index: int, data: bytes | None) -> None:
        if self.comm is None:
            return
        content = {"type": "thumb", "gen": gen, "index": index, "mime": "image/png",
                   "error": "" if data else "no preview"}
        self.send(content, [data] if data else None)
