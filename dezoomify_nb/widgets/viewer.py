"""A deep-zoom viewer in the notebook: :class:`TileViewer`, OpenSeadragon through anywidget.

The browser shows the remote image from its tiles, panning and zooming like a museum's own viewer.
Every tile the viewer needs is asked of the kernel with a custom widget message ``{type: "tile", gen,
level, col, row}``; the kernel reads it through the image's normal tile path (its headers, decryption,
retries, tile cache), crops it to its box and answers with the re-encoded tile as a binary buffer. So the
viewer works for every source dezoomify_nb opens, whatever the browser could fetch by itself.

The user can draw a rectangle (``Select region``): :attr:`TileViewer.region` becomes its box
``[x, y, w, h]`` in full-resolution pixels (``[]`` when none), which ``img.save(region=...)`` takes.
:attr:`TileViewer.view` is the visible part of the image in full-resolution pixels, and
:attr:`TileViewer.zoom` the screen pixels per image pixel.

OpenSeadragon 6.1.1 (BSD-3-Clause) is the copy vendored for the IIIF writer
(``dezoomify_nb/writers/templates/openseadragon.min.js``), prepended to ``static/viewer.js``.
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
    ours = resources.files(__package__).joinpath("static/viewer.js").read_text("utf-8")
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
    #: CSS height of the viewing area
    height = traitlets.Unicode("420px").tag(sync=True)

    def __init__(self, image: ZoomableImage | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.image: ZoomableImage | None = None
        self._store: TilePyramidStore | None = None
        self._lock = threading.Lock()
        #: tiles sent to the browser so far (all images)
        self.tiles_served = 0
        self.on_msg(self._on_msg)
        if image is not None:
            self.show(image)

    @traitlets.validate("region")
    def _valid_region(self, proposal: dict[str, Any]) -> list[int]:
        r = list(proposal["value"])
        if not r:
            return r
        if len(r) != 4 or not self.levels:
            raise traitlets.TraitError("region is [] or [x, y, w, h] of a shown image")
        full_w, full_h = self.levels[0][0], self.levels[0][1]
        x, y = min(max(r[0], 0), full_w - 1), min(max(r[1], 0), full_h - 1)
        w, h = min(max(r[2], 1), full_w - x), min(max(r[3], 1), full_h - y)
        return [x, y, w, h]

    def show(self, image: ZoomableImage | None) -> None:
        """Show ``image`` (None: nothing); the region is cleared."""
        if image is None:
            store = None
            levels: list[list[int]] = []
        else:
            store = TilePyramidStore(image.image, image.net, mode=image.mode, on_error="fill",
                                     token=f"viewer-{uuid.uuid4().hex}", cache=image.cache)
            levels = [[lv.width, lv.height, lv.tile_width, lv.tile_height] for lv in image.levels]
        with self._lock:
            self.image, self._store = image, store
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
        with self._lock:
            store, gen = self._store, self.gen
        try:
            if store is None or content.get("gen") != gen:
                raise ValueError("this tile belongs to an image no longer shown")
            k, col, row = (int(content[name]) for name in ("level", "col", "row"))
            lv = store.image.levels[k]
            if k < 0 or not (0 <= col < lv.cols and 0 <= row < lv.rows):
                raise ValueError(f"no tile {col},{row} in level {k}")
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            self._reply(msg_id, error=str(exc))
            return
        fut = asyncio.run_coroutine_threadsafe(self._tile(store, k, col, row), loop.get_loop())
        fut.add_done_callback(functools.partial(self._done, msg_id))

    @staticmethod
    async def _tile(store: TilePyramidStore, k: int, col: int, row: int) -> tuple[bytes, str]:
        tile = await store.read_tile(k, col, row)
        if tile is None:
            failed = events.stats(store.token).failed
            raise RuntimeError(failed[-1][1] if failed else "the tile could not be fetched")
        _, _, w, h = store.image.levels[k].tile_box(col, row)
        return await asyncio.to_thread(encode_tile, tile, w, h)

    def _done(self, msg_id: str, fut: Future[tuple[bytes, str]]) -> None:
        try:
            data, mime = fut.result()
        except Exception as exc:  # noqa: BLE001 - reported to the browser, which shows no tile there
            self._reply(msg_id, error=str(exc) or type(exc).__name__)
            return
        with self._lock:
            self.tiles_served += 1
        self._reply(msg_id, data=data, mime=mime)

    def _reply(self, msg_id: str, *, data: bytes | None = None, mime: str = "", error: str = "") -> None:
        if self.comm is None:  # closed
            return
        content = {"type": "tile", "id": msg_id, "mime": mime, "error": error}
        self.send(content, [data] if data is not None else None)
