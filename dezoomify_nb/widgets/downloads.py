"""The download half of the picker: the plan shown before (sizes, estimates, the code line), the download
itself on a background thread, and what is shown after (see :class:`~dezoomify_nb.widgets.picker.ImagePicker`,
which mixes :class:`Downloads` in)."""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from .. import api
from ..errors import DezoomifyError, DownloadCancelled, WriterError
from . import cards
from .advice import error_parts
from .bar import duration
from .common import parse_headers
from .html import megapixels
from .outputs import file_bytes, file_preview
from .plan import code_line, estimate, file_size
from .rate import Rate, from_download

if TYPE_CHECKING:
    import ipywidgets as W

    from ..collection import ImageCollection
    from .bar import ProgressBar
    from .status import StatusCard

log = logging.getLogger("dezoomify_nb")


class Picker(Protocol):
    """The picker as :class:`Downloads` uses it: its widgets, its state, the methods it calls (the picker's
    and this mixin's own). A Protocol, not :class:`~dezoomify_nb.widgets.picker.ImagePicker`: the picker
    imports this module to mix it in, so naming the picker here, even for the type checker alone, would tie
    the two modules in a circle. ``ImagePicker`` matches it."""

    directory: Path
    open_options: dict[str, Any]
    result: api.SaveResult | None
    _cancel: threading.Event | None
    _opened_url: str | None
    _opened_browser: bool
    _preview: Any
    file_box: W.Text
    format_select: W.Dropdown
    headers_box: W.Textarea
    image_select: W.Dropdown
    plan: W.HTML
    code: W.HTML
    status: StatusCard
    progress: ProgressBar

    @property
    def image(self) -> api.ZoomableImage | None: ...
    @property
    def collection(self) -> ImageCollection | None: ...
    @property
    def state(self) -> str: ...
    @property
    def level(self) -> int: ...
    @property
    def region(self) -> tuple[int, int, int, int] | None: ...
    @property
    def _lock(self) -> threading.RLock: ...
    @property
    def _measured(self) -> weakref.WeakKeyDictionary[api.ZoomableImage, Rate]: ...

    def _enter(self, state: str, card: str = "") -> None: ...
    def _spawn(self, target: Callable[..., None], *args: Any) -> None: ...
    def _update_name(self) -> None: ...
    # this mixin's methods that the others call
    def target_path(self) -> Path: ...
    def code_line(self) -> str: ...
    def _update_plan(self) -> None: ...
    def _done_card(self, result: api.SaveResult, seconds: float) -> str: ...
    def _problem(self, fmt: str, width: int, height: int) -> str: ...
    def _download_task(self, img: api.ZoomableImage, path: Path, options: dict[str, Any],
                       cancel: threading.Event) -> None: ...


P = TypeVar("P", bound=Picker)


def format_of(name: str, chosen: str) -> str:
    """The writer a download uses: the chosen format, else the file name's extension's (JPEG by default)."""
    if chosen:
        return chosen
    ext = Path(name).suffix.lower()
    return {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".tif": "tiff", ".tiff": "tiff",
            ".iiif": "iiif", ".zarr": "ome-zarr"}.get(ext, ext.lstrip(".") or "jpeg")


class Downloads:
    """Mixed into :class:`~dezoomify_nb.widgets.picker.ImagePicker` (whose widgets and state it uses)."""

    # set by a download (the picker starts them at None)
    result: api.SaveResult | None
    _cancel: threading.Event | None

    def target_path(self: Picker) -> Path:
        """Where Download writes: the file box's name in :attr:`directory` (unless absolute)."""
        path = Path(self.file_box.value.strip() or "dezoomified").expanduser()
        return path if path.is_absolute() or self.directory == Path(".") else self.directory / path

    def code_line(self: Picker) -> str:
        """The line of code doing what Download would do now (``import dezoomify_nb as dz`` included)."""
        img = self.image
        if img is None:
            return ""
        url, index = self._opened_url or img.url, None
        if self.collection is not None:  # the collection's URL (also when it was given, not typed) and the page
            url, index = self._opened_url or self.collection.url, int(self.image_select.value or 0)
        try:
            headers = parse_headers(self.headers_box.value)
        except ValueError:
            headers = []
        return "import dezoomify_nb as dz; " + code_line(
            url, image_index=index, headers=headers, path=self.target_path(),
            open_options={**self.open_options, **({"browser": True} if self._opened_browser else {})},
            level=self.level, region=self.region, fmt=self.format_select.value)

    def _update_plan(self: Picker) -> None:
        """The output's size, the estimates and the code line, for the current choices."""
        img = self.image
        if img is None:
            return
        with self._lock:
            fmt = format_of(self.file_box.value, self.format_select.value)
            try:
                est = estimate(img, self.level, self.region, fmt=fmt, measured=self._measured.get(img),
                               preview=self._preview)
            except (DezoomifyError, ValueError, IndexError) as exc:
                self.plan.value = f'<div class="dz-muted">{escape(str(exc))}</div>'
                return
            size = f"≈ {file_size(est.size_bytes)}" if est.size_bytes is not None else "size unknown yet"
            rate = self._measured.get(img)
            how = f"{rate.latency * 1000:.0f} ms a tile measured" if rate is not None else "guessed rate"
            net = img.net
            pace = f", ≥ {net.min_interval:g} s apart" if net.min_interval > 0 else ""
            problem = self._problem(fmt, est.width, est.height)
            self.plan.value = (
                f"<div><b>{est.width} × {est.height} px</b> · {megapixels(est.width, est.height)} MP</div>"
                f"<div>{size} as {escape(fmt.upper())} · {est.tiles} tile{'s' if est.tiles != 1 else ''}</div>"
                f"<div>≈ {duration(est.seconds) if est.seconds >= 1 else '1 s'} "
                f'<span class="dz-muted">({how}, {net.parallelism} at a time{pace})</span></div>{problem}')
            line = escape(self.code_line())
            self.code.value = (f'<span class="dz-code-label">Same in code:</span><code title="{line}">{line}</code>'
                               '<span class="dz-code-label">(click it to select it all)</span>')

    def _problem(self: Picker, fmt: str, width: int, height: int) -> str:
        """Why this download would fail before fetching anything (a format's limits), said now; else ``""``."""
        from ..writers import writer_named

        try:
            writer = writer_named(fmt)
            if self.region is not None and writer.pyramid:
                raise WriterError(f"The {writer.name} format saves whole levels, not a region.",
                                  hint="Save the region as PNG, JPEG or TIFF, or press 'Whole image'.")
            writer.check(width, height, 4 if "A" in (self.image.mode if self.image else "") else 3)
        except (DezoomifyError, ValueError) as exc:
            parts = error_parts(exc)
            return f'<div class="dz-problem">{escape(parts.sentence)} {escape(parts.advice)}</div>'
        return ""

    @property
    def downloading(self: Picker) -> bool:
        return self._cancel is not None

    def download(self: P) -> P:
        """Start downloading the chosen image, level and region to the file box's path; returns self."""
        img = self.image
        if img is None:
            self._enter("failed" if self.state != "opening" else self.state,
                        cards.error(error_parts(DezoomifyError("Open an image first.",
                                                               hint="Paste its URL above and press Enter."))))
            return self
        with self._lock:
            if self._cancel is not None:
                return self
            self._cancel = cancel = threading.Event()
            self._update_name()  # the proposed name may have been taken meanwhile
        path = self.target_path()
        options = {"level": self.level, "region": self.region, "format": self.format_select.value or None}
        try:
            expected: float | None = estimate(img, self.level, self.region, measured=self._measured.get(img),
                                              fmt=format_of(self.file_box.value, self.format_select.value),
                                              preview=self._preview).seconds
        except (DezoomifyError, ValueError, IndexError):
            expected = None
        self.progress.start(expected=expected)
        self._enter("downloading", cards.quiet(f"Downloading to {path}…"))
        self._spawn(self._download_task, img, path, options, cancel)
        return self

    def cancel(self: Picker) -> None:
        """Stop the running download (nothing is left on disk)."""
        with self._lock:
            if self._cancel is not None:
                self._cancel.set()
                self.status.value = cards.quiet("Cancelling…")

    def _download_task(self: Picker, img: api.ZoomableImage, path: Path, options: dict[str, Any],
                       cancel: threading.Event) -> None:
        t0 = time.monotonic()
        state, card = "failed", ""
        try:
            result = img.save(path, progress=self.progress, cancel=cancel, allow_partial=True, **options)
        except DownloadCancelled:
            state, card = "cancelled", cards.cancelled()
        except Exception as exc:  # noqa: BLE001 - shown in plain words
            if not isinstance(exc, DezoomifyError):
                log.debug("download error", exc_info=exc)
            card = cards.error(error_parts(exc))
        else:
            seconds = time.monotonic() - t0
            self.result = result
            before = self._measured.get(img)
            if result.tiles and seconds > 0 and (before is None or result.tiles >= before.tiles):
                self._measured[img] = from_download(result.tiles, seconds, img.net.parallelism, img.net.min_interval)
            state = "done"
            card = self._done_card(result, seconds)
        finally:
            with self._lock:
                self._cancel = None
        with self._lock:
            if img is self.image:
                self._enter(state, card)
                self._update_name()
                self._update_plan()
            elif state == "done" and self.state != "done":  # another image meanwhile: no card, no offer
                self.status.offer(None)

    def _done_card(self: Picker, result: api.SaveResult, seconds: float) -> str:
        """The done card; the file is offered to the browser ("Save to this computer") unless too large."""
        offer = self.status.offer(result.path)
        size = file_size(file_bytes(result.path))
        save = note = ""
        if offer is not None and offer.kind == "file":
            save = cards.save_button(result.path.name, size)
        elif offer is not None:
            note = cards.save_note(offer.kind, size, file_size(self.status.max_bytes))
        return cards.done(path=result.path, href=cards.link_href(result.path), size=(result.width, result.height),
                          level=result.level, seconds=f"{seconds:.1f} s" if seconds < 10 else duration(seconds),
                          file_bytes=size, tiles=result.tiles, failed=len(result.failed),
                          preview_png=file_preview(result.path), save=save, note=note)

    @property
    def path(self: Picker) -> Path | None:
        """The last downloaded file (or folder), or None."""
        return self.result.path if self.result is not None else None

    def to_dask(self: Picker, level: int | None = None) -> Any:
        """The chosen image as a lazy dask array (the chosen level unless ``level`` is given)."""
        if self.image is None:
            raise RuntimeError("no image is open yet")
        return self.image.to_dask(self.level if level is None else level)


