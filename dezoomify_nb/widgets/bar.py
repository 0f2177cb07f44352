"""A download progress bar widget: tiles done / total, rate and ETA; usable as ``save(progress=bar)``.

Tiles are counted on the I/O thread; :class:`ProgressBar` is called from there and updates its widgets
under a lock, at most :data:`UPDATES_PER_SECOND` times a second (and always for the last tile), so a
fast download does not flood the browser with messages.
"""

from __future__ import annotations

import logging
import threading
import time

import ipywidgets as W

log = logging.getLogger("dezoomify_nb")

UPDATES_PER_SECOND = 10
#: tiles after which the ETA is the measured rate's alone (before: blended with the plan's estimate)
STEADY_TILES = 32


def duration(seconds: float) -> str:
    """``"4 s"``, ``"2 min 05 s"``, ``"1 h 02 min"``."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


class ProgressBar(W.HBox):
    """``IntProgress`` + a label ``"37 / 120 tiles · 85 tiles/s · ETA 1 s"``.

    Call it as ``bar(done, failed, total)`` (the ``progress`` callback of
    :meth:`~dezoomify_nb.api.ZoomableImage.save`); :meth:`start` before a download.
    """

    def __init__(self) -> None:
        self.bar = W.IntProgress(value=0, min=0, max=1, description="", layout=W.Layout(width="50%"))
        self.bar.add_class("dz-progress")
        self.text = W.Label(value="")
        self.text.add_class("dz-progress-text")
        super().__init__([self.bar, self.text])
        self._lock = threading.Lock()
        self._t0 = time.monotonic()
        self._last = 0.0
        self._expected: float | None = None
        self.done = self.failed = self.total = 0

    def start(self, total: int = 0, expected: float | None = None) -> None:
        """Begin a download of ``total`` tiles (0: told by the first tile), ``expected`` to take that many
        seconds (the plan's estimate: the ETA until tiles tell better)."""
        with self._lock:
            self._expected = expected
            self._t0 = time.monotonic()
            self._last = 0.0
            self.done = self.failed = 0
            self.total = total
            self.bar.bar_style = ""
            self.bar.max = max(1, total)
            self.bar.value = 0
            self.text.value = "starting…" + (f" · ≈ {duration(expected)}" if expected else "")

    def __call__(self, done: int, failed: int, total: int) -> None:
        now = time.monotonic()
        with self._lock:
            self.done, self.failed, self.total = done, failed, total
            if done + failed < total and now - self._last < 1 / UPDATES_PER_SECOND:
                return
            self._last = now
            try:
                self._show(now)
            except Exception:  # noqa: BLE001 - a display problem must never fail a tile
                log.debug("progress display failed", exc_info=True)

    def _show(self, now: float) -> None:
        done, failed, total = self.done, self.failed, self.total
        count = done + failed
        with self.bar.hold_sync():
            self.bar.max = max(1, total)
            self.bar.value = min(count, self.bar.max)
            if failed:
                self.bar.bar_style = "warning"
        elapsed = now - self._t0
        parts = [f"{count} / {total} tiles"]
        if failed:
            parts.append(f"{failed} failed")
        if elapsed > 0 and count:
            rate = count / elapsed
            parts.append(f"{rate:.0f} tiles/s" if rate >= 10 else f"{rate:.1f} tiles/s")
            if count < total:
                parts.append(f"ETA {duration(self._eta(count, total, elapsed))}")
            else:
                parts.append(f"in {duration(elapsed)}")
        self.text.value = " · ".join(parts)

    def _eta(self, count: int, total: int, elapsed: float) -> float:
        """Seconds left: from the rate measured so far, leaning on the plan's estimate while few tiles have
        come (the first ones, all at once or after the setup, tell little of the rate)."""
        measured = (total - count) * elapsed / count
        if self._expected is None:
            return measured
        trust = min(1.0, count / max(1, min(total, STEADY_TILES)))
        return trust * measured + (1 - trust) * max(0.0, self._expected - elapsed)

    def finish(self, style: str = "success") -> None:
        """Show the final counts; ``style`` is an ipywidgets bar style (``success``, ``danger``, ``""``)."""
        with self._lock:
            self._show(time.monotonic())
            self.bar.bar_style = style if not (style == "success" and self.failed) else "warning"
