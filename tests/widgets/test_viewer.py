"""The viewer's kernel side: tile requests from the browser answered with the right pixels, the region trait."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
import traitlets
from PIL import Image

import dezoomify_nb as dz
from dezoomify_nb.widgets.viewer import TileViewer, _esm_source, encode_tile


class Recorder(TileViewer):
    """A viewer whose messages to the browser are kept instead of sent."""

    def __init__(self, *args, **kwargs) -> None:
        self.sent: list[tuple[dict, list]] = []
        super().__init__(*args, **kwargs)

    def send(self, content, buffers=None):  # noqa: D102 - the browser side of the test
        self.sent.append((content, list(buffers or [])))

    def ask(self, **msg) -> tuple[dict, list]:
        n = len(self.sent)
        self._on_msg(self, {"type": "tile", "id": f"t{n}", "gen": self.gen, **msg}, [])
        deadline = time.monotonic() + 30
        while len(self.sent) == n and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(self.sent) == n + 1, "no answer"
        return self.sent[-1]


def test_tiles_answered_with_their_pixels(gallery):
    img = dz.open(gallery.url(2, "dzi-png"), min_interval=0)
    viewer = Recorder(img)
    lv = img.levels
    assert viewer.levels == [[v.width, v.height, v.tile_width, v.tile_height] for v in lv]
    content, buffers = viewer.ask(level=1, col=2, row=1)  # an edge tile of level 1 (600 × 450, 254-px tiles)
    assert content["error"] == "" and content["mime"] == "image/jpeg"
    tile = np.asarray(Image.open(io.BytesIO(buffers[0])).convert("RGB")).astype(int)
    x, y, w, h = lv[1].tile_box(2, 1)
    expected = gallery.level_image(2, "dzi-png", 1)[y : y + h, x : x + w].astype(int)
    assert tile.shape == expected.shape == (196, 92, 3)  # cropped to the tile's box (no overlap, no padding)
    assert np.abs(tile - expected).mean() < 4  # JPEG q90 to the browser
    assert viewer.tiles_served == 1


def test_bad_and_stale_requests_get_an_error(gallery):
    viewer = Recorder(dz.open(gallery.url(0, "iiif2"), min_interval=0))
    content, buffers = viewer.ask(level=0, col=99, row=0)
    assert "no tile 99,0" in content["error"] and not buffers
    content, _ = viewer.ask(level=42, col=0, row=0)
    assert content["error"]
    old = viewer.gen
    viewer.show(dz.open(gallery.url(1, "iiif2"), min_interval=0))
    assert viewer.gen == old + 1
    viewer._on_msg(viewer, {"type": "tile", "id": "late", "gen": old, "level": 0, "col": 0, "row": 0}, [])
    assert viewer.sent[-1][0]["id"] == "late" and "no longer shown" in viewer.sent[-1][0]["error"]
    viewer._on_msg(viewer, {"type": "something else"}, [])
    viewer._on_msg(viewer, "not even a dict", [])
    assert viewer.sent[-1][0]["id"] == "late"  # ignored


def test_failed_tile_is_reported(gallery):
    server = gallery.servers[0]
    viewer = Recorder(dz.open(gallery.url(0, "zoomify"), min_interval=0, retries=0))
    server.missing("TileGroup0/0-0-0")
    try:
        content, buffers = viewer.ask(level=len(viewer.levels) - 1, col=0, row=0)
    finally:
        server.clear_faults()
    assert "404" in content["error"] and not buffers


def test_region_is_checked_and_clipped(gallery):
    viewer = TileViewer(dz.open(gallery.url(0, "iiif2")))
    viewer.region = [1100, 800, 500, 500]
    assert viewer.region == [1100, 800, 100, 100]  # clipped to the 1200 × 900 image
    viewer.region = []
    with pytest.raises(traitlets.TraitError):
        viewer.region = [1, 2, 3]
    viewer.show(None)
    assert viewer.levels == [] and viewer.region == []


def test_front_end_bundle():
    esm = _esm_source()
    assert "openseadragon 6.1.1" in esm and "export default { render }" in esm
    assert "sourceMappingURL" not in esm and esm.startswith("const define = undefined;")
    data, mime = encode_tile(np.full((256, 256, 4), 200, np.uint8), 100, 50)
    assert mime == "image/png" and Image.open(io.BytesIO(data)).size == (100, 50)


def test_replies_echo_the_request_and_stale_ones_say_so(gallery):
    viewer = Recorder(dz.open(gallery.url(0, "iiif2"), min_interval=0))
    content, buffers = viewer.ask(level=1, col=0, row=0)
    assert {k: content[k] for k in ("gen", "level", "col", "row")} == {"gen": viewer.gen, "level": 1, "col": 0, "row": 0}
    assert content["stale"] is False and buffers
    old = viewer.gen
    viewer.show(dz.open(gallery.url(1, "iiif2"), min_interval=0))
    viewer._on_msg(viewer, {"type": "tile", "id": "late", "gen": old, "level": 0, "col": 0, "row": 0}, [])
    assert viewer.sent[-1][0]["stale"] is True and viewer.sent[-1][0]["gen"] == old


def test_show_cancels_the_previous_images_requests(gallery):
    server = gallery.servers[2]
    viewer = Recorder(dz.open(gallery.url(2, "iiif2"), min_interval=0))
    server.delay("/iiif2/", 5.0)  # every tile of page 3 hangs
    try:
        n = len(viewer.sent)
        viewer._on_msg(viewer, {"type": "tile", "id": "slow", "gen": viewer.gen, "level": 0, "col": 0, "row": 0}, [])
        assert list(viewer._inflight) == ["slow"]
        t0 = time.monotonic()
        viewer.show(None)
        deadline = time.monotonic() + 3
        while len(viewer.sent) == n and time.monotonic() < deadline:
            time.sleep(0.01)
        assert time.monotonic() - t0 < 2, "the request was not cancelled"
        content, buffers = viewer.sent[-1]
        assert content["id"] == "slow" and content["stale"] is True and not buffers
        assert viewer._inflight == {}
    finally:
        server.clear_faults()


def test_aspect_lock_and_commands(gallery):
    viewer = Recorder(dz.open(gallery.url(0, "iiif2")))
    viewer.region = [100, 100, 400, 100]
    viewer.region_aspect = 2.0
    assert viewer.region == [100, 100, 400, 200]
    viewer.region_aspect = 0
    assert viewer.region == [100, 100, 400, 200]
    with pytest.raises(traitlets.TraitError):
        viewer.region_aspect = -1
    with pytest.raises(ValueError):
        viewer.zoom_by(0)
    viewer.draw_region()
    assert viewer.drawing
    viewer.clear_region()
    assert viewer.region == []
