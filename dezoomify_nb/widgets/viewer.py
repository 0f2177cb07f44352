"""A deep-zoom viewer in the notebook: :class:`TileViewer`, OpenSeadragon through anywidget.

The browser shows the remote image from its tiles, panning and zooming like a museum's own viewer.
Every tile the viewer needs is asked of the kernel with a custom widget message ``{type: "tile", gen,
level, col, row}``; the kernel reads it through the image's normal tile path (its headers, decryption,
retries, tile cache), crops it to its box and answers with the re-encoded tile as a binary buffer. So the
viewer works for every source dezoomify_nb opens, whatever the browser could fetch by itself.

Tile replies are tied to the image and the request that asked for them: every image shown bumps
:attr:`TileViewer.gen` (requests still in flight for the previous one are cancelled), every request has an
id the browser never reuses, a reply echoes ``gen, level, col, row`` and is drawn only if it matches a
pending request of the image shown. A failed tile is asked again (three times, 0.4 s, 1.2 s, 3.6 s apart),
then drawn as a hatched "failed" marker, counted in :attr:`TileViewer.failed_tiles` and offered again by
the "Retry" chip (or :meth:`TileViewer.retry_failed`). Every image opens wholly visible and centred, and
stays fitted while the frame changes size until the user zooms or pans.

The controls are overlaid on the view (themed with JupyterLab's CSS variables, light and dark): zoom in
and out, fit, region, fullscreen, a zoom readout and a navigator (minimap, with the region on it). Keys,
once the view has the focus (a click): ``+`` / ``-`` zoom, ``0`` fit, ``f`` fullscreen, ``r`` draw a
region, ``Esc`` cancel the drawing or leave fullscreen. JupyterLab's own shortcuts are suppressed there.

Python API (traits are synced both ways unless noted):

- :meth:`~TileViewer.show` ``(image or None)``: show an image (fitted), clearing the region.
- :attr:`~TileViewer.region`: ``[x, y, w, h]`` in full-resolution pixels, ``[]`` for none; drawn with the
  mouse, moved and resized with its handles, or set from Python (clipped to the image). It is what
  ``img.save(region=...)`` takes; observe it (``viewer.observe(f, names="region")``) to follow the user.
- :attr:`~TileViewer.region_aspect`: width / height kept while drawing and resizing (0: free); the lock
  button on the region sets it; setting it reshapes the current region (same width).
- :attr:`~TileViewer.drawing`: True while the user draws a region; :meth:`~TileViewer.draw_region`
  starts it, :meth:`~TileViewer.clear_region` removes the region.
- :meth:`~TileViewer.fit`, :meth:`~TileViewer.zoom_by` ``(factor)``, :meth:`~TileViewer.retry_failed`.
- :attr:`~TileViewer.view` (browser → kernel): the visible part ``[x, y, w, h]`` in full-resolution
  pixels; :attr:`~TileViewer.zoom`: screen pixels per image pixel; :attr:`~TileViewer.failed_tiles`.
- :attr:`~TileViewer.height` (CSS height), :attr:`~TileViewer.navigator` (show the minimap),
  :attr:`~TileViewer.placeholder` (text of the empty view, e.g. "Opening…" or an error).

OpenSeadragon 6.1.1 (BSD-3-Clause) is the copy vendored for the IIIF writer
(``dezoomify_nb/writers/templates/openseadragon.min.js``), prepended to ``static/tiles.js`` (tile source, loader) and ``static/viewer.js`` (the view).
"""

from __future__ import annotations

import asyncio
import functools
import io
import threading
import uuid
from concurrent.futures import Future
from importlib import resources
from typing import TYPE_CHECKING, Any

import anywidget
import numpy as np
import traitlets

from ..lazy import events
from ..lazy.store import TilePyramidStore
from ..net import loop

if TYPE_CHECKING:
    from ..api import ZoomableImage


@functools.cache
def _esm_source() -> str:
    osd = resources.files("dezoomify_nb.writers").joinpath("templates/openseadragon.min.js").read_text("utf-8")
    osd = "\n".join(line for line in osd.splitlines() if not line.startswith("//# sourceMappingURL"))
    static = resources.files(__package__).joinpath("static")
    ours = "\n".join(static.joinpath(name).read_text("utf-8") for name in ("tiles.js", "viewer.js"))
    # OpenSeadragon's UMD footer must not register with an AMD loader a page may have (Voila's require.js)
    return f"const define = undefined;\n{osd}\n{ours}"


@functools.cache
def _css_source() -> str:
    return resources.files(__package__).joinpath("static/viewer.css").read_text("utf-8")


def encode_tile(tile: np.ndarray, width: int, height: int) -> tuple[bytes, str]:
    """The top-left ``width × height`` of a decoded tile as JPEG (PNG with alpha): ``(bytes, mime)``."""
    from PIL import Image

    a = np.ascontiguousarray(tile[:height, :width])
    if a.shape[2] == 1:
        a = a[:, :, 0]
    pil = Image.fromarray(a)
    buf = io.BytesIO()
    if pil.mode in ("RGBA", "LA"):
        pil.save(buf, format="PNG", compress_level=1)
        return buf.getvalue(), "image/png"
    pil.save(buf, format="JPEG", quality=90)
    return buf.getvalue(), "image/jpeg"


class TileViewer(anywidget.AnyWidget):
    """Pan and zoom a :class:`~dezoomify_nb.api.ZoomableImage` in the notebook; draw a region.

    >>> viewer = TileViewer(dz.open(url))   # doctest: +SKIP
    >>> viewer                               # displays it; then viewer.region, viewer.view
    """

    _esm = _esm_source()
    _css = _css_source()

    #: ``[[width, height, tile_width, tile_height], …]``, full resolution first
    levels = traitlets.List(traitlets.List(traitlets.Int())).tag(sync=True)
    #: bumped for every new image, so late tiles of the previous one are dropped
    gen = traitlets.Int(0).tag(sync=True)
    #: the drawn region ``[x, y, w, h]`` in full-resolution pixels, ``[]`` when none
    region = traitlets.List(traitlets.Int()).tag(sync=True)
    #: the visible part of the image ``[x, y, w, h]`` in full-resolution pixels (set by the browser)
    view = traitlets.List(traitlets.Int()).tag(sync=True)
    #: screen pixels per full-resolution pixel (set by the browser)
    zoom = traitlets.Float(0.0).tag(sync=True)
    #: CSS height of the viewing area (fullscreen: the whole screen)
    height = traitlets.Unicode("420px").tag(sync=True)
    #: the region's width / height kept while it is drawn or resized (0: free); set with the lock button too
    region_aspect = traitlets.Float(0.0).tag(sync=True)
    #: True while the user draws a region (the ``r`` key or the region button); set it to start drawing
    drawing = traitlets.Bool(False).tag(sync=True)
    #: show the navigator (the minimap at the bottom right, with the region on it)
    navigator = traitlets.Bool(True).tag(sync=True)
    #: text shown in the empty view (no image), e.g. "Opening…" or why it failed
    placeholder = traitlets.Unicode("No image").tag(sync=True)
    #: how many tiles are shown as failed after their retries (set by the browser); see :meth:`retry_failed`
    failed_tiles = traitlets.Int(0).tag(sync=True)

    def __init__(self, image: ZoomableImage | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.image: ZoomableImage | None = None
        self._store: TilePyramidStore | None = None
        self._lock = threading.Lock()
        #: tile requests being answered (request id → future), cancelled when the image changes
        self._inflight: dict[str, Future[tuple[bytes, str]]] = {}
        #: tiles sent to the browser so far (all images)
        self.tiles_served = 0
        self.on_msg(self._on_msg)
        if image is not None:
            self.show(image)

    @traitlets.validate("region")
    def _valid_region(self, proposal: dict[str, Any]) -> list[int]:
        r = [int(v) for v in proposal["value"]]
        if not r:
            return r
        if len(r) != 4 or not self.levels:
            raise traitlets.TraitError("region is [] or [x, y, w, h] of a shown image")
        full_w, full_h = self.levels[0][0], self.levels[0][1]
        x, y = min(max(r[0], 0), full_w - 1), min(max(r[1], 0), full_h - 1)
        w, h = min(max(r[2], 1), full_w - x), min(max(r[3], 1), full_h - y)
        return [x, y, w, h]

    @traitlets.validate("region_aspect")
    def _valid_aspect(self, proposal: dict[str, Any]) -> float:
        value = float(proposal["value"])
        if not value >= 0 or value == float("inf"):
            raise traitlets.TraitError("region_aspect is a width / height ratio > 0, or 0 (free)")
        return value

    @traitlets.observe("region_aspect")
    def _aspect_changed(self, change: dict[str, Any]) -> None:
        """Locking the aspect reshapes the region: same width, the height that fits (clipped)."""
        k, r = change["new"], self.region
        if k > 0 and len(r) == 4 and abs(r[2] / r[3] - k) > 1e-3:
            self.region = [r[0], r[1], r[2], max(1, round(r[2] / k))]

    # --- commands ------------------------------------------------------------------------------------
    def _command(self, name: str, **args: Any) -> None:
        if self.comm is not None:
            self.send({"type": "command", "name": name, **args})

    def fit(self) -> None:
        """Show the whole image, centred (the ``0`` key, the fit button)."""
        self._command("fit")

    def zoom_by(self, factor: float) -> None:
        """Zoom in (``factor`` > 1) or out (< 1) about the centre of the view."""
        if not factor > 0:
            raise ValueError("the zoom factor must be > 0")
        self._command("zoom", factor=float(factor))

    def retry_failed(self) -> None:
        """Ask again for the tiles shown as failed (the Retry button of the "N tiles failed" chip)."""
        self._command("retry")

    def draw_region(self) -> None:
        """Let the user draw a region with the mouse (as the ``r`` key does)."""
        self.drawing = True

    def clear_region(self) -> None:
        """Forget the region (the whole image is downloaded)."""
        self.region = []

    def show(self, image: ZoomableImage | None) -> None:
        """Show ``image`` (None: nothing), wholly visible and centred; the region is cleared.

        The generation :attr:`gen` is bumped: tile requests of the previous image still in flight are
        cancelled, and their late replies are dropped by the browser."""
        if image is None:
            store = None
            levels: list[list[int]] = []
        else:
            store = TilePyramidStore(image.image, image.net, mode=image.mode, on_error="fill",
                                     token=f"viewer-{uuid.uuid4().hex}", cache=image.cache)
            levels = [[lv.width, lv.height, lv.tile_width, lv.tile_height] for lv in image.levels]
        with self._lock:
            self.image, self._store = image, store
            stale, self._inflight = self._inflight, {}
        for fut in stale.values():
            fut.cancel()
        with self.hold_sync():
            self.region = []
            self.view = []
            self.levels = levels
            self.gen += 1

    # --- tiles for the browser ---------------------------------------------------------------------
    def _on_msg(self, _widget: Any, content: Any, buffers: Any) -> None:
        if not isinstance(content, dict) or content.get("type") != "tile":
            return
        msg_id = str(content.get("id", ""))
        try:
            asked = {name: int(content[name]) for name in ("gen", "level", "col", "row")}
        except (KeyError, TypeError, ValueError):
            self._reply(msg_id, {}, error="a tile request needs gen, level, col and row")
            return
        with self._lock:
            store, gen = self._store, self.gen
        if store is None or asked["gen"] != gen:
            self._reply(msg_id, asked, error="this tile belongs to an image no longer shown", stale=True)
            return
        k, col, row = asked["level"], asked["col"], asked["row"]
        if not 0 <= k < len(store.image.levels):
            self._reply(msg_id, asked, error=f"no level {k}")
            return
        lv = store.image.levels[k]
        if not (0 <= col < lv.cols and 0 <= row < lv.rows):
            self._reply(msg_id, asked, error=f"no tile {col},{row} in level {k}")
            return
        fut = asyncio.run_coroutine_threadsafe(self._tile(store, k, col, row), loop.get_loop())
        with self._lock:
            if self._store is store:
                self._inflight[msg_id] = fut
            else:  # the image changed meanwhile
                fut.cancel()
        fut.add_done_callback(functools.partial(self._done, msg_id, asked))

    @staticmethod
    async def _tile(store: TilePyramidStore, k: int, col: int, row: int) -> tuple[bytes, str]:
        tile = await store.read_tile(k, col, row)
        if tile is None:
            failed = events.stats(store.token).failed
            raise RuntimeError(failed[-1][1] if failed else "the tile could not be fetched")
        _, _, w, h = store.image.levels[k].tile_box(col, row)
        return await asyncio.to_thread(encode_tile, tile, w, h)

    def _done(self, msg_id: str, asked: dict[str, int], fut: Future[tuple[bytes, str]]) -> None:
        with self._lock:
            self._inflight.pop(msg_id, None)
        if fut.cancelled():
            self._reply(msg_id, asked, error="this tile belongs to an image no longer shown", stale=True)
            return
        try:
            data, mime = fut.result()
        except Exception as exc:  # noqa: BLE001 - reported to the browser, which retries, then marks it failed
            self._reply(msg_id, asked, error=str(exc) or type(exc).__name__)
            return
        with self._lock:
            self.tiles_served += 1
        self._reply(msg_id, asked, data=data, mime=mime)

    def _reply(self, msg_id: str, asked: dict[str, int], *, data: bytes | None = None, mime: str = "",
               error: str = "", stale: bool = False) -> None:
        """Answer request ``msg_id``, echoing what it asked (``gen``, ``level``, ``col``, ``row``): the
        browser checks the echo against its own record of the request before drawing anything."""
        if self.comm is None:  # closed
            return
        content = {"type": "tile", "id": msg_id, **asked, "mime": mime, "error": error, "stale": stale}
        self.send(content, [data] if data is not None else None)
