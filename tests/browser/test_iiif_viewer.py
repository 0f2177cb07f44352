"""The IIIF tree's viewer.html in headless Chromium, opened from file:// as a user would.

Checks: OpenSeadragon loads, every tile it asks for exists (its own getTileUrl, run in the page, for
every tile of every level), no image request fails while zooming to full resolution, and the screenshot
shows the image's colours.
"""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pytest
from PIL import Image

import dezoomify_nb as dz
from dezoomify_nb.testing import TileServer

SHOTS = os.environ.get("SCREENSHOT_DIR")
#: four flat quadrants, 1300×900 (odd edge tiles at every level)
COLOURS = {"red": (220, 30, 30), "green": (30, 180, 60), "blue": (40, 70, 220), "yellow": (240, 220, 40)}


def quadrants(w: int = 1300, h: int = 900) -> np.ndarray:
    a = np.zeros((h, w, 3), np.uint8)
    a[: h // 2, : w // 2] = COLOURS["red"]
    a[: h // 2, w // 2 :] = COLOURS["green"]
    a[h // 2 :, : w // 2] = COLOURS["blue"]
    a[h // 2 :, w // 2 :] = COLOURS["yellow"]
    return a


@pytest.fixture(scope="module")
def quad_server():
    with TileServer(quadrants()) as s:
        yield s


def has_colour(shot: np.ndarray, rgb, tol: int = 40) -> bool:
    near = np.all(np.abs(shot.astype(np.int16) - np.array(rgb, np.int16)) < tol, axis=2)
    return near.mean() > 0.02


@pytest.mark.parametrize("kind", ["dzi-jpg", "iiif3"])  # byte-copied tiles; re-encoded tiles
def test_viewer_renders_from_file_url(page, quad_server, tmp_path, kind):
    folder = tmp_path / f"{kind}.iiif"
    assert dz.open(quad_server.url(kind)).save(folder, progress=False).ok

    failed: list[str] = []
    loaded: list[str] = []
    page.on("requestfailed", lambda r: failed.append(f"{r.url} {r.failure}"))
    page.on("requestfinished", lambda r: loaded.append(r.url) if r.resource_type == "image" else None)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(folder.joinpath("viewer.html").as_uri())
    page.wait_for_function("window.viewer && viewer.world.getItemCount() === 1 && "
                           "viewer.world.getItemAt(0).getFullyLoaded()")

    # OpenSeadragon's own tile URLs for every tile of every level must be files of the tree
    urls = page.evaluate("""() => {
        const ts = viewer.world.getItemAt(0).source, out = [];
        for (let l = ts.minLevel; l <= ts.maxLevel; l++) {
            const n = ts.getNumTiles(l);
            for (let y = 0; y < n.y; y++) for (let x = 0; x < n.x; x++) out.push(ts.getTileUrl(l, x, y));
        }
        return out;
    }""")
    assert urls and all(u.startswith("./") for u in urls)
    missing = [u for u in urls if not (folder / u[2:]).is_file()]
    assert not missing, missing[:5]
    # every file is a tile OpenSeadragon asks for, or a whole-image file of info.json's sizes / full/max
    info = json.loads((folder / "info.json").read_text())
    whole = {f"full/{s['width']},{s['height']}/0/default.jpg" for s in info["sizes"]} | {"full/max/0/default.jpg"}
    files = {p.relative_to(folder).as_posix() for p in folder.rglob("default.jpg")}
    assert files == {u[2:] for u in urls} | whole

    # zoom to full resolution in each quadrant: level-0 tiles load too
    for x, y in ((0.25, 0.2), (0.75, 0.5)):
        page.evaluate(f"""() => {{ const vp = viewer.viewport;
            vp.zoomTo(vp.getMaxZoom(), new OpenSeadragon.Point({x}, {y}), true);
            vp.panTo(new OpenSeadragon.Point({x}, {y}), true); }}""")
        page.wait_for_function("viewer.world.getItemAt(0).getFullyLoaded()")
    page.evaluate("() => viewer.viewport.goHome(true)")
    page.wait_for_function("viewer.world.getItemAt(0).getFullyLoaded()")
    page.wait_for_timeout(300)  # let the last frame be drawn

    assert not failed, failed[:5]
    assert not errors, errors
    assert any("/0/default.jpg" in u for u in loaded)
    full_res = {u for u in loaded if "/full/" not in u}
    assert full_res, "no tiled level was requested"

    png = page.screenshot()
    if SHOTS:
        os.makedirs(SHOTS, exist_ok=True)
        with open(os.path.join(SHOTS, f"iiif-viewer-{kind}.png"), "wb") as f:
            f.write(png)
    shot = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    for name, rgb in COLOURS.items():
        assert has_colour(shot, rgb), f"{name} {rgb} not on the screenshot"
