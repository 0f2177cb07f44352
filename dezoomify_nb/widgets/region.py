"""The region's numeric fields: x, y, w, h in full-resolution pixels, bound both ways to the viewer.

:class:`RegionFields` shows the part of the image to download: the whole image (``0, 0, W, H``) until a
region is drawn in the viewer or typed here. Typing updates the viewer's ``region`` traitlet (which
clamps it into the image), drawing updates the fields. With *Lock aspect* on, changing ``w`` changes
``h`` (and the reverse) so the width/height ratio stays what it was when the lock was turned on.
Without a viewer (``viewer=False``) the fields alone hold the region.

For a map (an image with a CRS and a geotransform) a *Box* field shows the region as ``west, south, east,
north`` in longitude/latitude (in the map's CRS when it cannot be converted: pyproj missing), and a box typed
there becomes the region (the pixels under it, as ``--bbox`` cuts them).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import ipywidgets as W
import traitlets

from .. import geo
from ..errors import DezoomifyError


def clamp(region: Sequence[int], size: tuple[int, int]) -> list[int]:
    """``[x, y, w, h]`` moved and cut to lie inside an image of ``size`` (at least 1 × 1)."""
    full_w, full_h = size
    x, y = min(max(int(region[0]), 0), full_w - 1), min(max(int(region[1]), 0), full_h - 1)
    w, h = min(max(int(region[2]), 1), full_w - x), min(max(int(region[3]), 1), full_h - y)
    return [x, y, w, h]


class RegionFields(W.VBox):
    """x / y / w / h fields, a *Lock aspect* box and a *Whole image* button; see the module docstring."""

    #: the chosen region ``[x, y, w, h]`` (full-resolution pixels), ``[]`` for the whole image
    value = traitlets.List(traitlets.Int())

    def __init__(self) -> None:
        self.size: tuple[int, int] = (0, 0)
        #: a map's CRS and level-0 geotransform (None: not a map), and the CRS the Box field is written in
        self.crs: str | None = None
        self.transform: tuple[float, float, float, float, float, float] | None = None
        self.box_crs: str | None = None
        self._lock = threading.RLock()
        self._updating = False
        self._ratio = 1.0
        self._lock_from_viewer = False
        small = {"description_width": "14px"}
        self.fields = [W.IntText(description=name, value=0, continuous_update=False, style=small,
                                 layout=W.Layout(width="calc(50% - 4px)", margin="0"))
                       for name in ("x", "y", "w", "h")]
        for f, name in zip(self.fields, "xywh", strict=True):
            f.add_class(f"dz-region-{name}")
            f.observe(self._on_field, names="value")
        self.lock_aspect = W.Checkbox(value=False, description="Lock aspect", indent=False,
                                      layout=W.Layout(width="auto", margin="0 8px 0 0"))
        self.lock_aspect.add_class("dz-lock-aspect")
        self.lock_aspect.observe(self._on_lock, names="value")
        self.whole = W.Button(description="Whole image", tooltip="Forget the region: download all of the image",
                              layout=W.Layout(width="auto"))
        self.whole.add_class("dz-clear-region")
        self.whole.on_click(lambda _: self.clear())
        grid = W.HBox(self.fields, layout=W.Layout(flex_flow="row wrap", width="100%"))
        grid.add_class("dz-region-grid")
        self.box_label = W.HTML(value="", layout=W.Layout(display="none", margin="2px 0 0 0"))
        self.box_label.add_class("dz-region-box-label")
        self.box = W.Text(value="", continuous_update=False, placeholder="west, south, east, north",
                          layout=W.Layout(width="100%", display="none", margin="0"),
                          tooltip="The region as a box on the map: west, south, east, north (Enter to apply)")
        self.box.add_class("dz-region-box")
        self.box.observe(self._on_box, names="value")
        self.box_note = W.HTML(value="", layout=W.Layout(display="none", margin="0"))
        self.box_note.add_class("dz-region-box-note")
        super().__init__([grid, self.box_label, self.box, self.box_note,
                          W.HBox([self.lock_aspect, self.whole], layout=W.Layout(align_items="center"))],
                         layout=W.Layout(width="100%"))
        self.add_class("dz-region-fields")

    @contextlib.contextmanager
    def _updating_fields(self) -> Iterator[None]:
        with self._lock:
            old, self._updating = self._updating, True
            try:
                yield
            finally:
                self._updating = old

    def reset(self, size: tuple[int, int], *, crs: str | None = None,
              transform: tuple[float, float, float, float, float, float] | None = None) -> None:
        """A new image of ``size`` (full resolution): the whole of it, the lock off; a map (``crs`` and
        ``transform`` of level 0, north-up) also gets the Box field."""
        with self._lock:
            self.size = size
            north_up = transform is not None and not transform[2] and not transform[4]
            self.crs, self.transform = (crs, transform) if crs and north_up else (None, None)
            self.box_crs = None
            if self.crs is not None:
                try:  # lon/lat when it can be converted, else the map's own CRS
                    geo.transform_bbox((0.0, 0.0, 1.0, 1.0), geo.LONLAT, self.crs)
                    self.box_crs = geo.LONLAT
                except DezoomifyError:
                    self.box_crs = self.crs
            mapped = self.box_crs is not None
            self.box.layout.display = self.box_label.layout.display = "flex" if mapped else "none"
            unit = "lon/lat" if self.box_crs == geo.LONLAT else (self.box_crs or "")[:24]
            self.box_label.value = (f'<span class="dz-region-box-title">Box ({unit}): west, south, east, north'
                                    "</span>" if mapped else "")
            self.box.placeholder = "west, south, east, north"
            self._note("")
            self.lock_aspect.value = False
            self.value = []
            self._show([])

    def clear(self) -> None:
        """The whole image."""
        self.value = []

    def _show(self, region: Sequence[int]) -> None:
        shown = list(region) if len(region) == 4 else [0, 0, *self.size]
        with self._updating_fields(), self.hold_sync():
            for f, v in zip(self.fields, shown, strict=True):
                f.value = v
            if self.box_crs is not None:
                self.box.value = self._box_text(shown)

    def _note(self, text: str) -> None:
        self.box_note.value = f'<span class="dz-problem">{text}</span>' if text else ""
        self.box_note.layout.display = "flex" if text else "none"

    def _box_text(self, region: Sequence[int]) -> str:
        """``west, south, east, north`` of the pixels ``region`` in the Box field's CRS."""
        assert self.transform is not None and self.crs is not None and self.box_crs is not None
        c, a, _, f, _, e = self.transform
        x, y, w, h = region
        box = (c + a * x, f + e * (y + h), c + a * (x + w), f + e * y)
        try:
            box = geo.transform_bbox(box, self.crs, self.box_crs)
        except DezoomifyError:
            return ""
        digits = 5 if self.box_crs == geo.LONLAT else 1  # about 1 m; a pixel of zoom 17
        return ", ".join(f"{v:.{digits}f}" for v in box)

    def _on_box(self, change: dict[str, Any]) -> None:
        """A box typed in the Box field: the pixels under it become the region."""
        with self._lock:
            if self._updating or self.transform is None or self.crs is None or self.box_crs is None:
                return
            text = str(change["new"]).strip()
            if not text:
                self.value = []
                return
            unit = "degrees" if self.box_crs == geo.LONLAT else self.box_crs
            try:
                parsed = geo.parse_bbox(text)
            except DezoomifyError:
                self._note(f"Not a box: 4 numbers, west, south, east, north ({unit}), west &lt; east, south &lt; north.")
                return
            try:
                got = geo.pixel_box(self.transform, geo.transform_bbox(parsed, self.box_crs, self.crs), *self.size)
            except DezoomifyError as exc:
                self._note(f"This box cannot be placed on the map: {exc}.")
                return
            if got is None:
                self._note("This box is outside the map.")
                return
            self._note("")
            region = clamp(list(got), self.size)
            new = [] if region == [0, 0, *self.size] else region
            if new == self.value:
                self._show(new)
            else:
                self.value = new

    @traitlets.observe("value")
    def _on_value(self, change: dict[str, Any]) -> None:
        self._show(change["new"])

    def _on_lock(self, change: dict[str, Any]) -> None:
        if change["new"] and not self._lock_from_viewer:
            w, h = self.fields[2].value, self.fields[3].value
            self._ratio = w / h if w > 0 and h > 0 else 1.0

    def _on_field(self, change: dict[str, Any]) -> None:
        with self._lock:
            if self._updating or self.size == (0, 0):
                return
            x, y, w, h = (f.value for f in self.fields)
            if self.lock_aspect.value:
                if change["owner"] is self.fields[2]:
                    h = max(1, round(w / self._ratio))
                elif change["owner"] is self.fields[3]:
                    w = max(1, round(h * self._ratio))
            region = clamp([x, y, w, h], self.size)
            whole = region == [0, 0, *self.size]
            new = [] if whole else region
            if new == self.value:
                self._show(new)  # e.g. a value cut back into the image
            else:
                self.value = new

    def link(self, viewer: Any) -> Callable[[], None]:
        """Bind :attr:`value` and ``viewer.region`` both ways; returns the unlink."""
        def from_viewer(change: dict[str, Any]) -> None:
            if list(change["new"]) != list(self.value):
                self.value = list(change["new"])

        def to_viewer(change: dict[str, Any]) -> None:
            if list(change["new"]) != list(viewer.region):
                viewer.region = list(change["new"])

        viewer.observe(from_viewer, names="region")
        self.observe(to_viewer, names="value")
        # the aspect lock is the viewer's too (its lock button, and drawing or resizing with the handles)
        aspect = viewer.has_trait("region_aspect")

        def lock_from_viewer(change: dict[str, Any]) -> None:
            with self._lock:
                if change["new"] > 0:
                    self._ratio = float(change["new"])
                if self.lock_aspect.value != (change["new"] > 0):
                    self._lock_from_viewer = True
                    try:
                        self.lock_aspect.value = change["new"] > 0
                    finally:
                        self._lock_from_viewer = False

        def lock_to_viewer(change: dict[str, Any]) -> None:
            want = self._ratio if change["new"] else 0.0
            if abs(viewer.region_aspect - want) > 1e-9 and (change["new"] or viewer.region_aspect > 0):
                viewer.region_aspect = want

        if aspect:
            viewer.observe(lock_from_viewer, names="region_aspect")
            self.lock_aspect.observe(lock_to_viewer, names="value")

        def unlink() -> None:
            viewer.unobserve(from_viewer, names="region")
            self.unobserve(to_viewer, names="value")
            if aspect:
                viewer.unobserve(lock_from_viewer, names="region_aspect")
                self.lock_aspect.unobserve(lock_to_viewer, names="value")
        return unlink
