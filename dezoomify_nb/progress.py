"""Progress reporting for downloads: a tqdm bar on stderr, or any callable; and cancellation.

A download is cancelled through ``save(cancel=event)``: :func:`cancellable` makes every strip and tile-row
iterator of the writer's source check ``event.is_set()`` before and after each item, and raise
:class:`~dezoomify_nb.errors.DownloadCancelled` (the writers then remove their partial output, and the
tiles still being fetched ahead are cancelled).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from .errors import DownloadCancelled
from .lazy import events

#: progress(done: int, failed: int, total: int) — called after every tile
ProgressCallback = Callable[[int, int, int], None]

#: how ``progress=True`` is shown: "auto" (tqdm.auto: a widget in a notebook, a bar elsewhere), "bar" (a
#: terminal bar), "plain" (a line every few seconds, for logs) or "none"; the CLI sets it (``--progress``)
MODES = ("auto", "bar", "plain", "none")
_mode = "auto"


def get_mode() -> str:
    """How ``progress=True`` is shown now (see :func:`set_mode`)."""
    return _mode


def set_mode(mode: str) -> None:
    """How ``progress=True`` is shown from now on (one of :data:`MODES`)."""
    global _mode
    if mode not in MODES:
        raise ValueError(f"progress mode {mode!r}: expected one of {', '.join(MODES)}")
    _mode = mode


def format_duration(seconds: float) -> str:
    """``45s``, ``1m10s``, ``2h05m``."""
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


class PlainProgress:
    """Progress as whole lines every ``every`` seconds (and one at the end), for a stderr that is no terminal
    (CI logs, ``nohup``, a notebook ``!`` cell): ``tiles 1200/4096 (29 %) 41 tiles/s ETA 1m10s``."""

    def __init__(self, total: int, desc: str = "tiles", every: float = 5.0, file: Any = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.total, self.desc, self.every = total, desc, every
        self.file = file if file is not None else sys.stderr
        self.clock = clock
        self.n = 0
        self.failed = 0
        #: bytes of the tiles so far (set by :func:`track`)
        self.nbytes = 0
        self.start = self.last = clock()
        self.closed = False

    def line(self) -> str:
        elapsed = max(self.clock() - self.start, 1e-9)
        rate = self.n / elapsed
        pct = 100 * self.n // self.total if self.total else 100
        text = f"{self.desc} {self.n}/{self.total} ({pct} %)"
        if self.nbytes:
            text += f" {self.nbytes / 1e6:.1f} MB"
        if self.failed:
            text += f" {self.failed} failed"
        text += f" {rate:.0f} tiles/s" if rate >= 10 else f" {rate:.1f} tiles/s"
        if self.n < self.total and rate > 0:
            text += f" ETA {format_duration((self.total - self.n) / rate)}"
        elif self.n >= self.total:
            text += f" in {format_duration(elapsed)}"
        return text

    def _say(self) -> None:
        try:
            print(self.line(), file=self.file, flush=True)
        except (OSError, ValueError):  # stderr gone (the terminal closed)
            pass

    def update(self, n: int = 1) -> None:
        self.n += n
        now = self.clock()
        if now - self.last >= self.every and self.n < self.total:  # the last line is close()'s
            self.last = now
            self._say()

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        if text.endswith(" failed"):
            self.failed = int(text.split()[0])

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._say()


def _plain_every() -> float:
    """Seconds between two plain progress lines: ``$DEZOOMIFY_NB_PROGRESS_EVERY`` (default 5)."""
    try:
        every = float(os.environ.get("DEZOOMIFY_NB_PROGRESS_EVERY", "5"))
    except ValueError:
        return 5.0
    return every if every >= 0 else 5.0


def _default_bar(total: int, desc: str) -> Any:
    mode = _mode
    if mode == "none":
        return None
    if mode == "plain":
        return PlainProgress(total, desc, every=_plain_every())
    if mode == "bar":
        from tqdm import tqdm
    else:
        from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, unit="tile", file=sys.stderr, dynamic_ncols=True, leave=True)


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
        bar = _default_bar(total, desc)
    elif callable(progress):
        callback = progress
    elif progress not in (False, None) and hasattr(progress, "update"):
        bar = progress

    def listener(ok: bool, url: str, error: Exception | None) -> None:
        counts[0 if ok else 1] += 1
        if isinstance(bar, PlainProgress):
            bar.nbytes = events.stats(token).nbytes
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


#: a bulk run's bar titles are cut to this many characters, so its two bars line up
TITLE_CHARS = 28
#: a notebook bar: its title alone on the left (in a box of the same width for both bars, so they line up),
#: the figures on the right (tqdm cuts the text at ``|{bar}|``; its text form, for static renderers, keeps them)
_NOTEBOOK_FORMAT = ("{desc}|{bar}| {percentage:3.0f}% · {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_noinv_fmt}"
                    "{postfix}]")
#: a terminal bar: its title padded, so the run's bars start at one column
_TERMINAL_FORMAT = "{desc}{percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_noinv_fmt}{postfix}]"
_TITLE_WIDTH = "16em"


def short_title(title: str) -> str:
    """``title`` cut to :data:`TITLE_CHARS` (``…`` at the cut)."""
    return title if len(title) <= TITLE_CHARS else title[:TITLE_CHARS - 1].rstrip() + "…"


class _Bar:
    """A tqdm bar of a bulk run (``tqdm.auto``: a widget in a notebook). In a notebook it is shown with a
    display id and shown again when closed, so the saved notebook keeps its final state as text (what
    nbconvert and GitHub show instead of the widget: ``images: 100%|██████████| 3/3``), not the empty bar it
    started as. The titles of the run's bars take the same width, so the bars line up: in a terminal padded
    to :data:`TITLE_CHARS`, in a notebook in a box of one width (tqdm turns spaces into figure spaces, wide as
    a digit: the title's spaces are made no-break spaces first, which it leaves as they are)."""

    def __init__(self, total: int, desc: str, unit: str, position: int, leave: bool,
                 note: str | None = None) -> None:
        if _mode == "bar":
            from tqdm import tqdm
        else:
            from tqdm.auto import tqdm
        self.handle: Any = None
        self.notebook = any(cls.__module__ == "tqdm.notebook" for cls in tqdm.__mro__)  # tqdm.auto in a notebook
        unit = f" {unit}s"  # "12.5 tiles/s", not "12.5tile/s"; "0.38 images/s", never tqdm's "2.61s/image"
        if self.notebook:
            from IPython.display import display

            self.tqdm = tqdm(total=total, desc=self.title(desc), unit=unit, leave=True, display=False,
                             bar_format=self.layout(note))
            title = self.tqdm.container.children[0]
            title.layout.width = title.layout.min_width = _TITLE_WIDTH
            title.layout.overflow = "hidden"
            self.handle = display(self.tqdm.container, display_id=True)
        else:
            self.tqdm = tqdm(total=total, desc=self.title(desc), unit=unit, file=sys.stderr, dynamic_ncols=True,
                             position=position, leave=leave, bar_format=self.layout(note))

    def title(self, desc: str) -> str:
        """How the bar shows ``desc``: in a notebook its spaces unbreakable (and not widened by tqdm); in a
        terminal padded to the width every title of the run gets."""
        return desc.replace(" ", "\u00a0") if self.notebook else f"{desc}:".ljust(TITLE_CHARS + 2)

    def layout(self, note: str | None) -> str | None:
        """The bar's ``bar_format``: counting tiles (``note`` None), or waiting with ``note`` (no figures yet:
        ``0/0 [00:00<?, ? tiles/s]`` would say nothing)."""
        if note is None:
            return _NOTEBOOK_FORMAT if self.notebook else _TERMINAL_FORMAT
        note = note.replace("{", "{{").replace("}", "}}")
        return "{desc}|{bar}| " + note if self.notebook else "{desc}" + note

    def close(self, keep: bool = True, style: str = "") -> None:
        """The bar's end (in ``style``, see :meth:`style`, if given); ``keep=False``: a notebook bar is removed
        (as a terminal's ``leave=False`` bar), from the saved notebook too."""
        self.tqdm.close()
        if style:
            self.style(style)
        if self.handle is not None:
            if keep:
                self.handle.update(self.tqdm.container)
            else:
                self.handle.update({"text/plain": ""}, raw=True)

    @property
    def failed(self) -> bool:
        """The notebook bar is red."""
        container = getattr(self.tqdm, "container", None)
        return container is not None and container.children[1].bar_style == "danger"

    def style(self, bar_style: str) -> None:
        """The notebook bar's colour (``""``, ``"warning"``, ``"danger"``), its figures' too when it is not
        ``""``; a terminal bar has none (its postfix says it)."""
        container = getattr(self.tqdm, "container", None)
        if container is not None:
            container.children[1].bar_style = bar_style
            colour = {"warning": "var(--jp-warn-color0, #bf5b00)", "danger": "var(--jp-error-color1, #d32f2f)"}
            container.children[2].style.text_color = colour.get(bar_style)


class ImageBar:
    """The ``save(progress=...)`` callback of one image of a bulk run. The run's current-image bar
    (:class:`BulkProgress`) was restarted for this image when it began (its title, no count yet: nothing of
    the previous image stays, even when this one fails before its first tile); the first tile gives it its
    total, the next ones move it."""

    def __init__(self, owner: BulkProgress, desc: str) -> None:
        self.owner, self.desc = owner, desc
        self._seen = -1

    def __call__(self, done: int, failed: int, total: int) -> None:
        if self._seen < 0:
            self._seen = 0
            self.owner._start_image(total, self.desc)
        bar = self.owner.current
        if bar is None:
            return
        count = done + failed
        if count > self._seen:
            bar.tqdm.update(count - self._seen)
            self._seen = count
        if failed:
            bar.tqdm.set_postfix_str(f"{failed} failed", refresh=False)


class BulkProgress:
    """Progress of a bulk run: one overall bar (images done / total) and the current image's bar (its tiles,
    one bar restarted for each image), with ``tqdm.auto`` — ipywidgets in a notebook, text bars in a
    terminal — when ``progress is True`` and the mode (:func:`set_mode`) is ``auto`` or ``bar``. Otherwise
    each image gets ``progress`` as given (plain lines, nothing, or the caller's callback)."""

    def __init__(self, total: int, progress: bool | ProgressCallback | Any = True) -> None:
        self.progress = progress
        self.bars = progress is True and _mode in ("auto", "bar")
        self.overall: _Bar | None = None
        self.current: _Bar | None = None
        self.failed = 0
        self._lock = threading.Lock()
        if self.bars:
            self.overall = _Bar(total, "images", "image", position=0, leave=True)

    def image(self, title: str) -> bool | ProgressCallback | Any:
        """What ``save(progress=...)`` gets for the next image (called before each, as the image begins:
        the current-image bar is restarted now, with the image's title and no count yet)."""
        if not self.bars:
            return self.progress
        desc = short_title(title)
        self._start_image(0, desc, "reading…")
        return ImageBar(self, desc)

    def _start_image(self, total: int, desc: str, note: str = "") -> None:
        with self._lock:
            if self.current is None:
                self.current = _Bar(total, desc, "tile", position=1, leave=False, note=None if total else note)
            bar = self.current
            bar.tqdm.set_description_str(bar.title(desc), refresh=False)
            bar.tqdm.set_postfix_str("", refresh=False)
            bar.tqdm.bar_format = bar.layout(None if total else note)
            bar.tqdm.reset(total=total)  # also the notebook bar's colour, and its unknown-total look
            bar.style("")
            bar.tqdm.refresh()

    def image_done(self, ok: bool) -> None:
        """The current image ended (``ok``: saved, possibly partial; else failed: its bar says so, red in
        a notebook, whether or not a tile had come)."""
        with self._lock:
            if self.current is not None:
                if not ok:  # said after its figures, or alone when it failed before its first tile
                    self.current.tqdm.set_postfix_str("failed", refresh=False)
                    if not self.current.tqdm.total:
                        self.current.tqdm.bar_format = self.current.layout("failed")
                    self.current.style("danger")
                self.current.tqdm.refresh()  # its last tiles, shown before the bar restarts for the next image
        if self.overall is not None:
            self.failed += not ok
            if self.failed:
                self.overall.tqdm.set_postfix_str(f"{self.failed} failed", refresh=False)
            self.overall.tqdm.update(1)
            self.overall.tqdm.refresh()  # each image counted as it ends, even within tqdm's redraw interval

    def close(self) -> None:
        with self._lock:
            current, overall, self.current, self.overall = self.current, self.overall, None, None
        if current is not None:  # the last image's bar goes, unless that image failed
            current.close(keep=current.failed)
        if overall is not None:  # tqdm makes a finished bar green: amber when images failed, red when all did
            overall.close(style="" if not self.failed else "danger" if self.failed >= overall.tqdm.total
                          else "warning")
