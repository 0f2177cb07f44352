"""The notebook picker: paste a URL, see the image, choose what to download, watch it come.

``dz.widget(url=None)`` returns an :class:`ImagePicker` (an ``ipywidgets.VBox``), compact and centred on
the deep-zoom :class:`TileViewer`: a URL row (HTTP headers behind a toggle); the viewer, with a strip
of page thumbnails on its left when the source holds several images, and a side panel on its right (the
image and level menus, the region's x/y/w/h fields bound to the viewer, the output's size and estimates);
then the file name, format, Download and Cancel, the same download as one line of code, and one status
area. Without a viewer (``viewer=False``) a 256 px thumbnail takes its place.

The picker is always in one of :data:`~dezoomify_nb.widgets.cards.STATES` (:attr:`ImagePicker.state`,
also a ``dz-state-…`` CSS class): ``empty``, ``opening``, ``ready``, ``downloading``, ``cancelled``,
``done``, ``failed``; each has its own look, and nothing of a previous state (an old tile count, a
dead viewer) stays on screen. Errors are one sentence, advice in a notebook's words and a details section.

Network work (opening, thumbnails, downloads) runs on background threads, so the kernel stays free;
widget updates from those threads are made under one lock. :meth:`ImagePicker.wait` waits for them
(scripts and tests). After a download, :attr:`ImagePicker.result` is the
:class:`~dezoomify_nb.api.SaveResult` (``.path``) and ``picker.image.to_dask(level)`` the lazy array.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from html import escape
from importlib import resources
from pathlib import Path
from typing import Any

import ipywidgets as W
import traitlets

from .. import api
from ..collection import ImageCollection
from ..errors import BROWSER_HINT, DezoomifyError, NoDezoomerFound
from . import cards
from .advice import error_parts
from .bar import ProgressBar
from .common import EXTENSIONS, FORMATS, free_name, parse_headers
from .downloads import Downloads
from .html import megapixels
from .rate import Rate, probe
from .region import RegionFields
from .status import StatusCard
from .strip import PageStrip
from .thumbnail import from_png, thumbnail_array, thumbnail_level, thumbnail_png, to_png
from .viewer import TileViewer

log = logging.getLogger("dezoomify_nb")

#: height of the deep-zoom view (the picker fits a 1280 × 800 window in JupyterLab)
VIEWER_HEIGHT = "380px"


@functools.cache
def _style() -> str:
    return "<style>" + resources.files(__package__).joinpath("static/picker.css").read_text("utf-8") + "</style>"


def strip_labels(titles: list[str]) -> list[str]:
    """``"12. f. 6r"``: the number and the title without the part every title starts with (the manifest's
    label, up to a separator ``" - "``, ``": "`` or ``" / "``)."""
    prefix = os.path.commonprefix(titles) if len(titles) > 1 else ""
    n = max((prefix.rfind(sep) + len(sep) for sep in (" - ", ": ", " / ") if sep in prefix), default=0)
    return [f"{i + 1}. {t[n:] or t}" for i, t in enumerate(titles)]


def _strip_thumbnail(collection: ImageCollection, index: int) -> bytes | None:
    """The strip's thumbnail of page ``index``: its metadata and the tiles of a level of ~96 px."""
    arr = thumbnail_array(collection[index], box=96, min_side=96)
    return None if arr is None else to_png(arr)


class ImagePicker(Downloads, W.VBox):
    """See the module docstring. Build it with :func:`widget`."""

    #: one of :data:`~dezoomify_nb.widgets.cards.STATES`
    state = traitlets.Unicode("empty")

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
        api.warm_up(str(self.open_options.get("transport", "aiohttp")))  # while the user types a URL
        #: the opened collection (several images), else None
        self.collection: ImageCollection | None = None
        #: the chosen image (a :class:`~dezoomify_nb.api.ZoomableImage`), once known
        self.image: api.ZoomableImage | None = None
        #: the last download's :class:`~dezoomify_nb.api.SaveResult`
        self.result: api.SaveResult | None = None
        #: seconds from the URL entry to ``opened`` (metadata) and ``thumbnail`` (preview made)
        self.timings: dict[str, float] = {}
        self._lock = threading.RLock()
        self._local = threading.local()
        self._tasks: list[threading.Thread] = []
        self._gen = 0
        self._t_open = 0.0
        self._cancel: threading.Event | None = None
        self._user_named = False
        self._opened_url: str | None = None
        self._opened_browser = False  # the image was found by the browser mode (the code line says so)
        self._preview: Any = None  # the thumbnail's pixels (estimates)
        #: measured rates of each image's server (a probe after the preview, then the last download)
        self._measured: weakref.WeakKeyDictionary[api.ZoomableImage, Rate] = weakref.WeakKeyDictionary()

        self.url_box = W.Text(continuous_update=False, layout=W.Layout(flex="1"),
                              placeholder="Paste the URL of a zoomable image: info.json, .dzi, "
                                          "ImageProperties.xml, a IIIF manifest, a museum page…")
        self.open_button = W.Button(description="Open", tooltip="Open (or reload) the URL", button_style="primary",
                                    layout=W.Layout(width="auto"))
        self.headers_toggle = W.ToggleButton(description="Headers", value=False, icon="",
                                             tooltip="HTTP headers to send (Referer, Cookie…)",
                                             layout=W.Layout(width="auto"))
        self.headers_box = W.Textarea(placeholder="HTTP headers, one 'Name: value' per line, e.g.\n"
                                                  "Referer: https://museum.example/viewer",
                                      layout=W.Layout(width="100%", height="4.5em", display="none"))
        self.image_select = W.Dropdown(options=[], layout=W.Layout(width="100%", display="none"),
                                       tooltip="The image of the source (also: the strip on the left)")
        self.level_select = W.Dropdown(options=[], layout=W.Layout(width="100%"), tooltip="Level (size) to download")
        self.thumb = W.Image(format="png", layout=W.Layout(max_width="256px", max_height="256px", display="none",
                                                           margin="auto"))
        self.info = W.HTML(value="")
        self.placeholder = W.HTML(value=cards.placeholder_empty(), layout=W.Layout(width="100%"))
        self.viewer: TileViewer | None = TileViewer(height=VIEWER_HEIGHT) if viewer else None
        self.region_fields = RegionFields()
        self.strip = PageStrip(layout=W.Layout(width="120px", flex="0 0 120px", display="none",
                                               height=VIEWER_HEIGHT if viewer else "256px"))
        self.plan = W.HTML(value="")
        self.file_box = W.Text(description="File", layout=W.Layout(flex="1 1 auto", min_width="12em"),
                               style={"description_width": "32px"})
        self.format_select = W.Dropdown(options=[(lbl, n) for lbl, n, _ in FORMATS], value="",
                                        tooltip="Output format", layout=W.Layout(width="12em"))
        self.download_button = W.Button(description="Download", button_style="primary", disabled=True,
                                        icon="download", layout=W.Layout(width="auto", min_width="8em"))
        self.cancel_button = W.Button(description="Cancel", disabled=True, layout=W.Layout(width="auto"))
        self.code = W.HTML(value="")
        self.progress = ProgressBar()
        self.status = StatusCard()
        #: shown when the page alone told nothing and a browser is installed (see :mod:`dezoomify_nb.browser`)
        self.browser_button = W.Button(description="Look with a browser", button_style="primary",
                                       tooltip="Load the page in headless Chromium and open what its viewer requests",
                                       layout=W.Layout(width="auto", display="none", margin="8px 0 0 0",
                                                       align_self="flex-start"))
        self.browser_button.add_class("dz-browser")
        for w, cls in ((self.url_box, "dz-url"), (self.open_button, "dz-open"), (self.headers_box, "dz-headers"),
                       (self.headers_toggle, "dz-headers-toggle"), (self.image_select, "dz-image"),
                       (self.level_select, "dz-level"), (self.thumb, "dz-thumb"), (self.info, "dz-info"),
                       (self.placeholder, "dz-placeholder"), (self.plan, "dz-plan"), (self.file_box, "dz-file"),
                       (self.format_select, "dz-format"), (self.download_button, "dz-download"),
                       (self.cancel_button, "dz-cancel"), (self.code, "dz-code"), (self.strip, "dz-strip"), (self.progress, "dz-progress-row"),
                       (self.status, "dz-status")):
            w.add_class(cls)

        head = functools.partial(W.HTML, layout=W.Layout(margin="0"))
        self.side = W.VBox([self.info, self.image_select, head(value='<div class="dz-side-head">Level</div>'),
                            self.level_select, head(value='<div class="dz-side-head">Region (full-resolution px)</div>'),
                            self.region_fields, head(value='<div class="dz-side-head">Output</div>'), self.plan],
                           layout=W.Layout(display="none"))
        self.side.add_class("dz-side")
        centre_items: list[W.Widget] = [self.placeholder, self.browser_button]
        if self.viewer is not None:
            self.viewer.add_class("dz-viewer")
            self.viewer.layout.display = "none"
            self.region_unlink = self.region_fields.link(self.viewer)
            centre_items.append(self.viewer)
        else:
            centre_items.append(self.thumb)
        self.centre = W.VBox(centre_items)
        self.centre.add_class("dz-centre")
        self.stage = W.HBox([self.strip, self.centre, self.side])
        self.stage.add_class("dz-stage")
        self.actions = W.HBox([self.file_box, self.format_select, self.download_button, self.cancel_button],
                              layout=W.Layout(display="none"))
        self.actions.add_class("dz-actions")
        top = W.HBox([self.url_box, self.open_button, self.headers_toggle])
        top.add_class("dz-top")
        self.progress.layout.display = "none"
        self.code.layout.display = "none"
        super().__init__([W.HTML(_style(), layout=W.Layout(display="none")), top, self.headers_box, self.stage,
                          self.actions, self.code, self.progress, self.status], layout=W.Layout(width="100%"))
        self.add_class("dz-picker")
        self.add_class("dz-state-empty")

        self.url_box.observe(self._on_url, names="value")
        self.open_button.on_click(lambda _: self.open_url(self.url_box.value))
        self.headers_toggle.observe(self._on_headers_toggle, names="value")
        self.image_select.observe(self._on_image, names="value")
        self.level_select.observe(self._on_choice, names="value")
        self.format_select.observe(self._on_format, names="value")
        self.file_box.observe(self._on_file, names="value")
        self.region_fields.observe(self._on_choice, names="value")
        self.strip.observe(self._on_strip, names="selected")
        self.download_button.on_click(lambda _: self.download())
        self.cancel_button.on_click(lambda _: self.cancel())
        self.browser_button.on_click(lambda _: self.look_with_browser())

        if headers:
            items = headers.items() if isinstance(headers, Mapping) else (h.split(":", 1) for h in headers)
            self.headers_box.value = "\n".join(f"{k.strip()}: {v.strip()}" for k, v in items)
            self.headers_toggle.value = True
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

    def _current(self, gen: int) -> bool:
        with self._lock:
            return gen == self._gen

    def _on_headers_toggle(self, change: dict[str, Any]) -> None:
        self.headers_box.layout.display = "flex" if change["new"] else "none"

    # --- states ------------------------------------------------------------------------------------
    def _enter(self, state: str, card: str = "") -> None:
        """Show ``state``: which parts are visible, the buttons, the status card; nothing of the last state."""
        assert state in cards.STATES, state
        with self._lock:
            image, collection = self.image, self.collection
            many = collection is not None and len(collection) > 1
            shown = image is not None or many  # the viewer area has something to show (or is switching)
            if self.viewer is not None:
                centre_card = not shown
                self.viewer.layout.display = "none" if centre_card else "flex"
                thumb_shown = False
            else:
                thumb_shown = image is not None and bool(self.thumb.value) and state != "opening"
                centre_card = not thumb_shown
                self.thumb.layout.display = "block" if thumb_shown else "none"
            if centre_card:  # no image: the card takes the viewer's place
                self.placeholder.value = card or cards.placeholder_empty()
                self.status.value = ""
            else:
                self.status.value = card
            self.placeholder.layout.display = "flex" if centre_card else "none"
            self.side.layout.display = "flex" if shown else "none"
            self.strip.layout.display = "flex" if many else "none"
            self.stage.layout.min_height = VIEWER_HEIGHT if shown and self.viewer is not None else ""
            self.actions.layout.display = "flex" if image is not None else "none"
            self.code.layout.display = "block" if image is not None and state != "downloading" else "none"
            self.progress.layout.display = "flex" if state == "downloading" else "none"
            self.download_button.disabled = image is None or state in ("downloading", "opening")
            self.cancel_button.disabled = state != "downloading"
            for w in (self.level_select, self.format_select, self.file_box):
                w.disabled = state == "downloading"
            if state != "done":  # the last file is offered to the browser only while its card shows
                self.status.offer(None)
            with self.hold_sync():  # last: who watches the state sees its whole look
                self.remove_class(f"dz-state-{self.state}")
                self.add_class(f"dz-state-{state}")
                self.state = state

    def _fail(self, exc: BaseException) -> None:
        if not isinstance(exc, DezoomifyError):
            log.debug("widget error", exc_info=exc)
        with self._lock:
            if self.image is None:  # an image that could not be read: nothing of the last one stays
                with self._quiet():
                    self.level_select.options = []
                    self.info.value = self.plan.value = self.code.value = ""
                if self.viewer is not None:
                    self.viewer.show(None)
            self._enter("failed", cards.error(error_parts(exc)))
            browser_may_help = isinstance(exc, NoDezoomerFound) and exc.hint == BROWSER_HINT
            self.browser_button.layout.display = "flex" if browser_may_help else "none"

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

    def look_with_browser(self) -> ImagePicker:
        """Open the last URL again in headless Chromium (the "Look with a browser" button); returns self."""
        if self._opened_url:
            self._start_open(self._opened_url, browser=True)
        return self

    def _start_open(self, url: str | None, given: Any = None, browser: bool = False) -> None:
        with self._lock:
            self._gen += 1
            gen = self._gen
            self._t_open = time.monotonic()
            self.timings = {}
            self.collection = None
            self.image = None
            self._preview = None
            self._opened_url = url
            self._opened_browser = browser
            with self._quiet():
                self.image_select.options = []
                self.image_select.layout.display = "none"
                self.level_select.options = []
                self.thumb.value = b""
                self.info.value = ""
                self.plan.value = ""
                self.code.value = ""
        if self.viewer is not None:
            self.viewer.show(None)
        self.browser_button.layout.display = "none"
        what = f"Looking at {url} in a headless browser…" if browser else f"Opening {url}…" if url else "Reading the image…"
        self._enter("opening", cards.opening(what))
        self._spawn(self._open_task, gen, url, given, self.headers_box.value, browser)

    def _open_task(self, gen: int, url: str | None, given: Any, headers: str, browser: bool = False) -> None:
        options = {**self.open_options, "browser": True} if browser else self.open_options
        try:
            opened = given if given is not None else api.open(url, headers=parse_headers(headers), **options)
        except Exception as exc:  # noqa: BLE001 - shown in the status card
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
                self.strip.reset(strip_labels(opened.titles),
                                 functools.partial(_strip_thumbnail, opened) if len(opened) > 1 else None)
            if not len(opened):
                self._fail(DezoomifyError("This source lists no image.",
                                          hint="Check that the URL is the manifest or page of an image."))
                return
            self._show_image(gen, opened[0])
        else:
            self._show_image(gen, opened)

    def _on_image(self, change: dict[str, Any]) -> None:
        if self._is_quiet() or change["new"] is None or self.collection is None:
            return
        self.select_image(int(change["new"]))

    def _on_strip(self, change: dict[str, Any]) -> None:
        if not self._is_quiet() and self.collection is not None and 0 <= change["new"] < len(self.collection):
            if change["new"] != self.image_select.value or self.image is None:
                self.select_image(int(change["new"]))

    def select_image(self, index: int) -> None:
        """Show image ``index`` of the collection (what the menu and the strip do)."""
        if self.collection is None or not 0 <= index < len(self.collection):
            raise IndexError(index)
        with self._lock:
            self._gen += 1
            gen = self._gen
            self._t_open = time.monotonic()
            self.image = None
            self._preview = None
            with self._quiet():
                self.image_select.value = index
                self.strip.selected = index
        self._enter("opening", cards.opening(f"Reading image {index + 1}…"))
        self._spawn(self._show_image, gen, self.collection[index])

    def _show_image(self, gen: int, img: api.ZoomableImage) -> None:
        """Levels, info, file name, the viewer, then the preview (on a background thread)."""
        try:
            levels = img.levels  # a collection image's metadata is fetched here
        except Exception as exc:  # noqa: BLE001
            if self._current(gen):
                self._fail(exc)
            return
        full = levels[0]
        with self._lock:
            if gen != self._gen:
                return
            self.image = img
            with self._quiet():
                self.level_select.options = [
                    (f"{k}: {lv.width} × {lv.height} px · {megapixels(lv.width, lv.height)} MP · "
                     f"{lv.n_tiles} tile{'s' if lv.n_tiles != 1 else ''}", k) for k, lv in enumerate(levels)]
                self.level_select.value = 0
                self.region_fields.reset((full.width, full.height), crs=img.crs, transform=img.transform)
            self.info.value = (f'<div class="dz-title">{escape(img.title or "Untitled image")}</div>'
                               f'<div class="dz-muted">{escape(img.dezoomer)} · {full.width} × {full.height} px · '
                               f"{len(levels)} level{'s' if len(levels) != 1 else ''}</div>")
            self._update_name()
            if self.viewer is not None:
                self.viewer.show(img)
            self._enter("ready", cards.quiet("Ready: choose a level, draw a region in the viewer if you want "
                                             "only a part, then Download."))
            self._update_plan()
        self._load_preview(gen, img)

    def _load_preview(self, gen: int, img: api.ZoomableImage) -> None:
        """The thumbnail (shown without a viewer) and the throughput it measured (the estimates)."""
        try:
            k = thumbnail_level(img)
            png = thumbnail_png(img) if k is not None else None  # shared with the HTML summary
            arr = from_png(png) if png is not None else None
        except Exception as exc:  # noqa: BLE001 - the image itself may still download; say why no preview
            log.debug("no preview", exc_info=exc)
            return
        with self._lock:
            if gen != self._gen:
                return
            self._preview = arr
            if png is not None:
                self.thumb.value = png
                self.timings["thumbnail"] = time.monotonic() - self._t_open
            if self.viewer is None and self.state == "ready":
                self._enter("ready", self.status.value)
            self._update_plan()
            measured = img in self._measured
        if not measured:  # on warm connections now: the latency the download will meet
            rate = probe(img, k)
            with self._lock:
                if rate is not None and img not in self._measured:
                    self._measured[img] = rate
                if gen == self._gen:
                    self._update_plan()

    # --- choices -----------------------------------------------------------------------------------
    @property
    def level(self) -> int:
        """The chosen level (0 = full resolution)."""
        return int(self.level_select.value or 0)

    @property
    def region(self) -> tuple[int, int, int, int] | None:
        """The chosen region ``(x, y, w, h)`` in full-resolution pixels, or None (whole image)."""
        r = self.region_fields.value
        return (r[0], r[1], r[2], r[3]) if len(r) == 4 else None

    @region.setter
    def region(self, value: Sequence[int] | None) -> None:
        if self.image is None:
            raise RuntimeError("no image is open yet")
        self.region_fields.value = list(value) if value else []

    def _on_choice(self, change: dict[str, Any]) -> None:
        if not self._is_quiet():
            self._update_name()
            self._update_plan()

    def _on_file(self, change: dict[str, Any]) -> None:
        if not self._is_quiet():
            self._user_named = bool(change["new"].strip())
            if not self._user_named:
                self._update_name()
            self._update_plan()

    def _on_format(self, change: dict[str, Any]) -> None:
        ext = EXTENSIONS.get(change["new"])
        if self._is_quiet():
            return
        if ext and self._user_named:
            name = self.file_box.value.strip()
            suffix = Path(name).suffix
            with self._quiet():
                self.file_box.value = (name[: -len(suffix)] if suffix else name) + ext
        elif ext:
            self._update_name()
        self._update_plan()

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
