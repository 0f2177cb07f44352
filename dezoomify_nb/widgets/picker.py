"""The notebook picker: paste a URL, see the image, choose what to download, watch it come.

``dz.widget(url=None)`` returns an :class:`ImagePicker` (an ``ipywidgets.VBox``) with a URL box (and an
optional HTTP headers box), an image dropdown when the source holds several images (manifest pages by
title), a level dropdown (size, megapixels, tiles), a thumbnail, the deep-zoom :class:`TileViewer`
where a region can be drawn, the output file name and format, Download and Cancel buttons, a
progress bar (tiles done / total, rate, ETA) and a status line that shows errors in plain words.

Network work (opening, thumbnails, downloads) runs on background threads, so the kernel stays free;
widget updates from those threads are made under one lock. :meth:`ImagePicker.wait` waits for them
(scripts and tests). After a download, :attr:`ImagePicker.result` is the
:class:`~dezoomify_nb.api.SaveResult` (``.path``) and ``picker.image.to_dask(level)`` the lazy array.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

import ipywidgets as W

from .. import api
from ..collection import ImageCollection
from ..errors import DezoomifyError, DownloadCancelled
from .bar import ProgressBar, duration
from .common import EXTENSIONS, FORMATS, free_name, message_of, parse_headers
from .html import megapixels
from .thumbnail import thumbnail_png
from .viewer import TileViewer

log = logging.getLogger("dezoomify_nb")

class ImagePicker(W.VBox):
    """See the module docstring. Build it with :func:`widget`."""

    def __init__(
        self,
        url: str | None = None,
        *,
        image: api.ZoomableImage | ImageCollection | None = None,
        headers: Mapping[str, str] | Sequence[str] | None = None,
        viewer: bool = True,
        directory: str | Path = ".",
        open_options: Mapping[str, Any] | None = None,
    ) -> None:
        #: where downloads go when the file name is not absolute
        self.directory = Path(directory)
        self.open_options = dict(open_options or {})
        #: the opened collection (several images), else None
        self.collection: ImageCollection | None = None
        #: the chosen image (a :class:`~dezoomify_nb.api.ZoomableImage`), once known
        self.image: api.ZoomableImage | None = None
        #: the last download's :class:`~dezoomify_nb.api.SaveResult`
        self.result: api.SaveResult | None = None
        #: seconds from the URL entry to ``opened`` (metadata) and ``thumbnail`` (preview shown)
        self.timings: dict[str, float] = {}
        self._lock = threading.RLock()
        self._local = threading.local()
        self._tasks: list[threading.Thread] = []
        self._gen = 0
        self._t_open = 0.0
        self._cancel: threading.Event | None = None
        self._user_named = False

        full = W.Layout(width="100%")
        self.url_box = W.Text(description="URL", continuous_update=False, layout=W.Layout(flex="1"),
                              placeholder="Paste the URL of a zoomable image: info.json, .dzi, "
                                          "ImageProperties.xml, a IIIF manifest, a museum page…")
        self.open_button = W.Button(description="Open", tooltip="Open (or reload) the URL")
        self.headers_box = W.Textarea(placeholder="Referer: https://museum.example/viewer\nCookie: …",
                                      layout=W.Layout(width="100%", height="4em"))
        headers_panel = W.Accordion([self.headers_box], selected_index=None, layout=full)
        headers_panel.set_title(0, "HTTP headers (optional: one 'Name: value' per line)")
        self.image_select = W.Dropdown(description="Image", options=[], layout=W.Layout(width="100%",
                                                                                       display="none"))
        self.level_select = W.Dropdown(description="Level", options=[], layout=W.Layout(width="100%"))
        self.thumb = W.Image(format="png", layout=W.Layout(max_width="256px", max_height="256px",
                                                            display="none", border="1px solid #ccc",
                                                            margin="0 16px 0 0"))
        self.info = W.HTML(value="")
        self.viewer: TileViewer | None = TileViewer(height="400px") if viewer else None
        self.region_text = W.Label(value="Region: whole image")
        self.clear_region = W.Button(description="Whole image", tooltip="Forget the drawn region")
        self.file_box = W.Text(description="File", layout=W.Layout(flex="1"))
        self.format_select = W.Dropdown(description="Format", options=[(lbl, n) for lbl, n, _ in FORMATS],
                                        value="", layout=W.Layout(width="18em"))
        self.download_button = W.Button(description="Download", button_style="primary", disabled=True)
        self.cancel_button = W.Button(description="Cancel", button_style="warning", disabled=True)
        self.progress = ProgressBar()
        self.status = W.HTML(value="Paste a URL and press Enter.")
        for w, cls in ((self.url_box, "dz-url"), (self.open_button, "dz-open"), (self.headers_box, "dz-headers"),
                       (self.image_select, "dz-image"), (self.level_select, "dz-level"), (self.thumb, "dz-thumb"),
                       (self.info, "dz-info"), (self.region_text, "dz-region"), (self.clear_region, "dz-clear-region"),
                       (self.file_box, "dz-file"), (self.format_select, "dz-format"),
                       (self.download_button, "dz-download"), (self.cancel_button, "dz-cancel"),
                       (self.status, "dz-status")):
            w.add_class(cls)

        rows: list[W.Widget] = [
            W.HBox([self.url_box, self.open_button], layout=full), headers_panel, self.image_select,
            self.level_select, W.HBox([self.thumb, self.info]),
        ]
        if self.viewer is not None:
            self.viewer.add_class("dz-viewer")
            rows += [self.viewer, W.HBox([self.region_text, self.clear_region])]
        rows += [W.HBox([self.file_box, self.format_select], layout=full),
                 W.HBox([self.download_button, self.cancel_button]), self.progress, self.status]
        super().__init__(rows, layout=full)
        self.add_class("dz-picker")

        self.url_box.observe(self._on_url, names="value")
        self.open_button.on_click(lambda _: self.open_url(self.url_box.value))
        self.image_select.observe(self._on_image, names="value")
        self.level_select.observe(self._on_level, names="value")
        self.format_select.observe(self._on_format, names="value")
        self.file_box.observe(self._on_file, names="value")
        self.download_button.on_click(lambda _: self.download())
        self.cancel_button.on_click(lambda _: self.cancel())
        self.clear_region.on_click(lambda _: self._clear_region())
        if self.viewer is not None:
            self.viewer.observe(self._on_region, names="region")

        if headers:
            items = headers.items() if isinstance(headers, Mapping) else (h.split(":", 1) for h in headers)
            self.headers_box.value = "\n".join(f"{k.strip()}: {v.strip()}" for k, v in items)
        if image is not None:
            with self._quiet():
                self.url_box.value = image.url
            self._start_open(None, given=image)
        elif url:
            self.url_box.value = url  # opens it

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        """The widget, with an HTML summary for renderers without widget state (nbconvert, GitHub)."""
        from .html import picker_bundle

        return picker_bundle(self, super()._repr_mimebundle_(**kwargs) or {})

    # --- helpers -----------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _quiet(self) -> Iterator[None]:
        """Changes made inside do not trigger this picker's own observers (in this thread)."""
        old = getattr(self._local, "quiet", False)
        self._local.quiet = True
        try:
            yield
        finally:
            self._local.quiet = old

    def _is_quiet(self) -> bool:
        return getattr(self._local, "quiet", False)

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        t = threading.Thread(target=target, args=args, daemon=True, name=f"dezoomify-widget-{target.__name__}")
        with self._lock:
            self._tasks = [x for x in self._tasks if x.is_alive()] + [t]
        t.start()

    def wait(self, timeout: float | None = None) -> ImagePicker:
        """Wait for the background work started so far (opening, thumbnail, download); returns self."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                alive = [t for t in self._tasks if t.is_alive() and t is not threading.current_thread()]
            if not alive:
                return self
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise TimeoutError("the picker is still busy")
            alive[0].join(left)

    def _set_status(self, text: str, *, error: bool = False) -> None:
        body = "<br>".join(escape(line) for line in text.splitlines())
        with self._lock:
            self.status.value = f'<span style="color: #b00020;">{body}</span>' if error else body

    def _fail(self, exc: BaseException) -> None:
        if not isinstance(exc, DezoomifyError):
            log.debug("widget error", exc_info=exc)
        self._set_status(message_of(exc), error=True)

    def _current(self, gen: int) -> bool:
        with self._lock:
            return gen == self._gen

    # --- opening -----------------------------------------------------------------------------------
    def _on_url(self, change: dict[str, Any]) -> None:
        if not self._is_quiet():
            self.open_url(change["new"])

    def open_url(self, url: str) -> ImagePicker:
        """Open ``url`` in the background (what pressing Enter in the URL box does); returns self."""
        url = (url or "").strip()
        if not url:
            return self
        if self.url_box.value != url:
            with self._quiet():
                self.url_box.value = url
        self._start_open(url)
        return self

    def _start_open(self, url: str | None, given: Any = None) -> None:
        with self._lock:
            self._gen += 1
            gen = self._gen
            self._t_open = time.monotonic()
            self.timings = {}
            self.collection = None
            self.image = None
            with self._quiet():
                self.image_select.options = []
                self.image_select.layout.display = "none"
                self.level_select.options = []
                self.thumb.layout.display = "none"
                self.info.value = ""
                self.download_button.disabled = True
        if self.viewer is not None:
            self.viewer.show(None)
        self._set_status(f"Opening {url}…" if url else "Reading the image…")
        self._spawn(self._open_task, gen, url, given, self.headers_box.value)

    def _open_task(self, gen: int, url: str | None, given: Any, headers: str) -> None:
        try:
            opened = given if given is not None else api.open(url, headers=parse_headers(headers),
                                                              **self.open_options)
        except Exception as exc:  # noqa: BLE001 - shown in the status line
            if self._current(gen):
                self._fail(exc)
            return
        if not self._current(gen):
            return
        self.timings["opened"] = time.monotonic() - self._t_open
        if isinstance(opened, ImageCollection):
            with self._lock, self._quiet():
                self.collection = opened
                self.image_select.options = [(f"{i + 1}. {it.title}", i) for i, it in enumerate(opened)]
                self.image_select.layout.display = "flex" if len(opened) > 1 else "none"
                self.image_select.value = 0 if len(opened) else None
            if not len(opened):
                self._set_status("This source lists no image.", error=True)
                return
            self._show_image(gen, opened[0])
        else:
            self._show_image(gen, opened)

    def _on_image(self, change: dict[str, Any]) -> None:
        if self._is_quiet() or change["new"] is None or self.collection is None:
            return
        with self._lock:
            self._gen += 1
            gen = self._gen
            self._t_open = time.monotonic()
            self.image = None
            self.download_button.disabled = True
        self._set_status("Reading the image…")
        self._spawn(self._show_image, gen, self.collection[change["new"]])

    def _show_image(self, gen: int, img: api.ZoomableImage) -> None:
        """Levels, info, file name, viewer, then the thumbnail (runs on a background thread)."""
        try:
            levels = img.levels  # a collection image's metadata is fetched here
        except Exception as exc:  # noqa: BLE001
            if self._current(gen):
                self._fail(exc)
            return
        with self._lock:
            if gen != self._gen:
                return
            self.image = img
            with self._quiet():
                self.level_select.options = [
                    (f"{k}: {lv.width} × {lv.height} px · {megapixels(lv.width, lv.height)} MP · "
                     f"{lv.n_tiles} tile{'s' if lv.n_tiles != 1 else ''}", k) for k, lv in enumerate(levels)]
                self.level_select.value = 0
            full = levels[0]
            self.info.value = (f"<b>{escape(img.title or 'Untitled image')}</b><br>{escape(img.dezoomer)} · "
                               f"{full.width} × {full.height} px · {len(levels)} levels")
            self.download_button.disabled = False
            self._update_name()
        self._update_region_text()
        self._set_status("Loading the preview…")
        try:
            png = thumbnail_png(img)  # before the viewer asks for its tiles
        except Exception as exc:  # noqa: BLE001
            png = None
            if self._current(gen):
                self._fail(exc)
        with self._lock:
            if gen != self._gen:
                return
            if png is not None:
                self.thumb.value = png
                self.thumb.layout.display = "block"
                self.timings["thumbnail"] = time.monotonic() - self._t_open
        if self.viewer is not None:
            self.viewer.show(img)
        if png is not None:
            self._set_status(f"Ready (preview in {self.timings['thumbnail']:.1f} s): choose a level, "
                             "draw a region in the viewer if you want only a part, then Download.")
        elif "thumbnail" not in self.timings and self._current(gen) and "color" not in self.status.value:
            self._set_status("Ready (this source has no small level to preview).")

    # --- choices -----------------------------------------------------------------------------------
    @property
    def level(self) -> int:
        """The chosen level (0 = full resolution)."""
        return int(self.level_select.value or 0)

    @property
    def region(self) -> tuple[int, int, int, int] | None:
        """The drawn region ``(x, y, w, h)`` in full-resolution pixels, or None (whole image)."""
        r = self.viewer.region if self.viewer is not None else []
        return (r[0], r[1], r[2], r[3]) if len(r) == 4 else None

    @region.setter
    def region(self, value: Sequence[int] | None) -> None:
        if self.viewer is None:
            raise AttributeError("this picker has no viewer (viewer=False)")
        self.viewer.region = list(value) if value else []

    def _clear_region(self) -> None:
        if self.viewer is not None:
            self.viewer.region = []

    def _on_level(self, change: dict[str, Any]) -> None:
        if not self._is_quiet():
            self._update_name()
            self._update_region_text()

    def _on_region(self, change: dict[str, Any]) -> None:
        self._update_name()
        self._update_region_text()

    def _on_file(self, change: dict[str, Any]) -> None:
        if not self._is_quiet():
            self._user_named = bool(change["new"].strip())
            if not self._user_named:
                self._update_name()

    def _on_format(self, change: dict[str, Any]) -> None:
        ext = EXTENSIONS.get(change["new"])
        if self._is_quiet() or not ext:
            return
        if not self._user_named:
            self._update_name()
            return
        name = self.file_box.value.strip()
        suffix = Path(name).suffix
        with self._quiet():
            self.file_box.value = (name[: -len(suffix)] if suffix else name) + ext

    def output_size(self) -> tuple[int, int]:
        """Width and height of what Download writes (the region, or the whole level)."""
        img = self.image
        if img is None:
            return (0, 0)
        if self.region is not None:
            _, _, w, h = img.region_in_level(self.region, self.level)
            return (w, h)
        lv = img.levels[self.level]
        return (lv.width, lv.height)

    def _update_name(self) -> None:
        """Propose a free file name from the title and size, unless the user typed one."""
        img = self.image
        if img is None:
            return
        with self._lock:
            if self._user_named:
                return
            name = free_name(self.directory, img.file_title, self.output_size(), self.format_select.value)
            with self._quiet():
                self.file_box.value = name

    def _update_region_text(self) -> None:
        img, region = self.image, self.region
        if img is None or region is None:
            text = "Region: whole image (draw one in the viewer with 'Select region')"
        else:
            x, y, w, h = region
            ow, oh = self.output_size()
            text = f"Region: x {x}, y {y}, {w} × {h} px at full resolution → {ow} × {oh} px at level {self.level}"
        with self._lock:
            self.region_text.value = text

    # --- downloading -------------------------------------------------------------------------------
    @property
    def downloading(self) -> bool:
        return self._cancel is not None

    def download(self) -> ImagePicker:
        """Start downloading the chosen image, level and region to the file box's path; returns self."""
        img = self.image
        if img is None:
            self._set_status("Open an image first.", error=True)
            return self
        with self._lock:
            if self._cancel is not None:
                return self
            self._cancel = cancel = threading.Event()
            self.download_button.disabled = True
            self.cancel_button.disabled = False
        name = self.file_box.value.strip() or "dezoomified"
        path = Path(name).expanduser()
        if not path.is_absolute():
            path = self.directory / path
        options = {"level": self.level, "region": self.region, "format": self.format_select.value or None}
        self.progress.start()
        self._set_status(f"Downloading to {path}…")
        self._spawn(self._download_task, img, path, options, cancel)
        return self

    def cancel(self) -> None:
        """Stop the running download (nothing is left on disk)."""
        with self._lock:
            if self._cancel is not None:
                self._cancel.set()
        self._set_status("Cancelling…")

    def _download_task(self, img: api.ZoomableImage, path: Path, options: dict[str, Any],
                       cancel: threading.Event) -> None:
        t0 = time.monotonic()
        try:
            result = img.save(path, progress=self.progress, cancel=cancel, allow_partial=True, **options)
        except DownloadCancelled:
            self.progress.finish("")
            self._set_status("Cancelled: nothing was written.")
        except Exception as exc:  # noqa: BLE001 - shown in plain words
            self.progress.finish("danger")
            self._fail(exc)
        else:
            self.result = result
            self.progress.finish("success")
            text = (f"Saved {result.path} ({result.width} × {result.height} px, level {result.level}) "
                    f"in {duration(time.monotonic() - t0)}.")
            if result.failed:
                text += f" {len(result.failed)} of {result.tiles} tiles failed and were left black."
            text += f"\nLazy array: picker.image.to_dask({result.level}); the file: picker.result.path"
            self._set_status(text, error=bool(result.failed))
        finally:
            with self._lock:
                self._cancel = None
                self.cancel_button.disabled = True
                self.download_button.disabled = self.image is None
            self._update_name()

    @property
    def path(self) -> Path | None:
        """The last downloaded file (or folder), or None."""
        return self.result.path if self.result is not None else None

    def to_dask(self, level: int | None = None) -> Any:
        """The chosen image as a lazy dask array (the chosen level unless ``level`` is given)."""
        if self.image is None:
            raise RuntimeError("no image is open yet")
        return self.image.to_dask(self.level if level is None else level)


def widget(
    url: str | None = None,
    *,
    image: api.ZoomableImage | ImageCollection | None = None,
    headers: Mapping[str, str] | Sequence[str] | None = None,
    viewer: bool = True,
    directory: str | Path = ".",
    **open_options: Any,
) -> ImagePicker:
    """The notebook picker (see :class:`ImagePicker`): ``dz.widget()`` then paste a URL, or
    ``dz.widget(url)``. ``open_options`` go to :func:`dezoomify_nb.open` (``parallelism=4``, …)."""
    return ImagePicker(url, image=image, headers=headers, viewer=viewer, directory=directory,
                       open_options=open_options)
