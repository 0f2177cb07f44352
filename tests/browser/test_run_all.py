"""*Run All* of the quick start in JupyterLab (headless Chromium), then the widgets it shows still work: the
viewer pans and zooms and its new tiles are fetched from the notebook's sample server (which must still be
running: no cell of a top-to-bottom run stops it).

The sample server lives in the notebook's kernel; the test asks it how many tile requests it has seen
through a second client of that kernel (jupyter_client on its connection file), before and after the
pan/zoom. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import io
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Page, expect
from widgets.conftest import SHOTS

from .viewer_kit import jupyter_server

ROOT = Path(__file__).resolve().parents[2]
QUICK_START = ROOT / "notebooks" / "01-quick-start.ipynb"
#: the tile requests (not metadata documents) the kernel's sample servers have seen
TILES = "sum(s.count(lambda p: not p.split('?')[0].endswith(('.xml', '.json'))) for s in gallery.servers)"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    pytest.importorskip("jupyterlab")
    work = tmp_path_factory.mktemp("lab-run-all")
    with jupyter_server(work, "jupyterlab") as server:
        yield (*server, work)


def kernel_value(work: Path, expression: str) -> str:
    """``expression`` evaluated in the (only) kernel of the Lab server, through a second client."""
    from jupyter_client import BlockingKernelClient

    files = sorted((work / "runtime").glob("kernel-*.json"))
    assert len(files) == 1, files
    client = BlockingKernelClient(connection_file=str(files[0]))
    client.load_connection_file()
    client.start_channels()
    try:
        reply = client.execute_interactive("", user_expressions={"v": expression}, timeout=30)
        value = reply["content"]["user_expressions"]["v"]
        assert value["status"] == "ok", value
        return value["data"]["text/plain"]
    finally:
        client.stop_channels()


def stage_pixels(page: Page, index: int) -> np.ndarray:
    png = page.locator(".dz-viewer-stage").nth(index).screenshot(animations="disabled")
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def drawn(shot: np.ndarray) -> float:
    """The share of the stage showing picture (not the dark empty stage)."""
    return float((shot.astype(int).sum(axis=2) > 120).mean())


def test_run_all_then_pan_and_zoom_still_loads_tiles(page: Page, lab):
    base, token, root, work = lab
    shutil.copy(QUICK_START, root / QUICK_START.name)
    page.set_viewport_size({"width": 1280, "height": 1000})
    page.route(lambda url: not url.startswith("http://127.0.0.1"), lambda route: route.abort())
    page.goto(f"{base}/lab/tree/{QUICK_START.name}?reset&token={token}")
    expect(page.locator("#jp-main-statusbar")).to_contain_text("| Idle", timeout=90_000)
    page.locator("li.lm-MenuBar-item", has_text="Run").first.click()
    page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()

    # the run ends: the last code cell has run (its execution count is set), the kernel is idle again
    last = page.locator(".jp-CodeCell").last
    expect(last.locator(".jp-InputPrompt")).to_have_text(re.compile(r"\[\d+\]"), timeout=180_000)
    expect(page.locator("#jp-main-statusbar")).to_contain_text("| Idle", timeout=60_000)
    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']",
                          has_text="Traceback")
    assert errors.count() == 0, errors.first.inner_text()
    assert (root / "output" / "quick-start" / "detail.png").is_file()

    # the first viewer (the picker that `img` shows): on screen, its picture drawn
    stage = page.locator(".dz-viewer-stage").first
    stage.scroll_into_view_if_needed()
    deadline = time.monotonic() + 30
    while drawn(stage_pixels(page, 0)) < 0.2:
        assert time.monotonic() < deadline, "the viewer shows no picture after Run All"
        page.wait_for_timeout(200)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "run-all-lab-after-run.png"))

    before = int(kernel_value(work, TILES))
    # zoom in twice (toolbar and wheel), then pan by dragging: new tiles of deeper levels are needed
    page.locator(".dz-zoom-in").first.click()
    box = stage.bounding_box()
    assert box is not None
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx, cy)
    page.mouse.wheel(0, -600)
    page.wait_for_timeout(500)
    page.mouse.down()
    page.mouse.move(cx - 200, cy - 120, steps=8)
    page.mouse.up()
    deadline = time.monotonic() + 30
    while (after := int(kernel_value(work, TILES))) <= before:
        assert time.monotonic() < deadline, "no tile request reached the sample server after Run All"
        page.wait_for_timeout(300)
    page.wait_for_timeout(1500)  # the new tiles are drawn
    shot = stage_pixels(page, 0)
    page.locator(".dz-viewer").first.screenshot(path=str(SHOTS / "run-all-lab-zoomed.png"))
    assert drawn(shot) > 0.9, f"after pan/zoom only {drawn(shot):.0%} of the viewer shows the picture"
    assert "failed" not in page.locator(".dz-viewer").first.inner_text().lower()
    print(f"\n{after - before} tile requests reached the sample server after Run All (pan/zoom)")
