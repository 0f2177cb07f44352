"""The picker notebook (notebooks/picker.ipynb) in Voila, driven by Debian's headless Chromium like a user.

Enter the manifest URL of the loopback gallery, choose another page (the viewer's pixels change to
that page's colours), choose a level, download (the progress bar reaches 100 %, the file's pixels are the
source level's); then in the deep-zoom viewer zoom in, draw a rectangle and download only that region
(the file's pixels are the source's window); then the whole image, saved to this computer by the file's
name in the done card and by its "Save to this computer" button (Voila serves no file of the kernel's
folder: the kernel sends the bytes, which must equal the file on disk, in several chunks). Screenshots go to ``test-artifacts/`` (``$SCREENSHOT_DIR``),
with the time from URL entry to the first page in the viewer in ``voila-picker-timing.txt``.
"""

from __future__ import annotations

import io
import re
import time

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Page, expect
from widgets.conftest import NOTEBOOKS, SHOTS, gallery  # noqa: F401 - a fixture of tests/widgets

from .jupyter_apps import JupyterApp, copy_notebook, jupyter_app, open_notebook


@pytest.fixture(scope="module")
def voila(tmp_path_factory):
    """Voila serving a copy of notebooks/picker.ipynb on 127.0.0.1 (each page load: a new kernel)."""
    with jupyter_app("voila", tmp_path_factory.mktemp("voila-picker")) as app:
        yield app, copy_notebook(NOTEBOOKS / "picker.ipynb", app, "picker")


def shot_rgb(page: Page, selector: str) -> np.ndarray:
    """The element as rendered (a real screenshot), as an RGB array."""
    return np.asarray(Image.open(io.BytesIO(page.locator(selector).screenshot())).convert("RGB"))


def mean_rgb(a: np.ndarray) -> np.ndarray:
    return a.reshape(-1, a.shape[-1])[:, :3].astype(float).mean(axis=0)


def wait_for(check, what: str, page: Page, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        page.wait_for_timeout(100)


def viewer_shows(page: Page, gallery, index: int) -> bool:  # noqa: F811
    """The middle of the viewer has page ``index``'s colours (nearer them than any other page's)."""
    if not page.locator(".dz-viewer").is_visible():
        return False
    a = shot_rgb(page, ".dz-viewer")
    h, w = a.shape[:2]
    seen = mean_rgb(a[int(h * 0.4): int(h * 0.6), int(w * 0.4): int(w * 0.6)])
    dist = [np.abs(seen - mean_rgb(gallery.image(i))).max() for i in range(len(gallery))]
    return int(np.argmin(dist)) == index and dist[index] < 30


def read(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def choose_level(page: Page, start: str) -> None:
    select = page.locator(".dz-level select")
    labels = [t for t in select.locator("option").all_inner_texts() if t.replace("\xa0", " ").startswith(start)]
    assert len(labels) == 1, select.locator("option").all_inner_texts()
    select.select_option(label=labels[0])


def download(page: Page, path) -> None:
    page.locator(".dz-file input").fill(str(path))
    page.locator(".dz-download").click()
    expect(page.locator(".dz-status .dz-card-done")).to_contain_text(f"Saved {path.name}", timeout=60_000)
    expect(page.locator(".dz-status")).to_contain_text(re.compile(r"\d+ tiles? in"))


def test_pick_download_and_region_in_voila(page: Page, voila: tuple[JupyterApp, str], gallery,  # noqa: F811
                                           tmp_path):
    page.set_viewport_size({"width": 1000, "height": 1300})
    page.route(lambda url: not url.startswith("http://127.0.0.1"), lambda route: route.abort())
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    open_notebook(page, *voila)
    url_box = page.locator(".dz-url input")
    expect(url_box).to_be_visible(timeout=90_000)

    # 1. URL → page 1 in the viewer (its colours), timed
    url_box.fill(gallery.manifest_url)
    t0 = time.monotonic()
    url_box.press("Enter")
    page1, page2 = mean_rgb(gallery.image(0)), mean_rgb(gallery.image(1))
    assert np.abs(page1 - page2).max() > 30  # the pages really look different
    wait_for(lambda: viewer_shows(page, gallery, 0), "the viewer to show page 1", page)
    to_thumbnail = time.monotonic() - t0
    expect(page.locator(".dz-status")).to_contain_text("Ready")
    assert not page.locator(".dz-thumb").is_visible()  # the viewer is the preview: no second copy

    # 2. another page: the viewer's pixels follow the choice
    image_select = page.locator(".dz-image select")
    expect(image_select).to_be_visible()
    image_select.select_option(label="2. Sample gallery - Page 2")
    wait_for(lambda: viewer_shows(page, gallery, 1), "the viewer to show page 2", page)
    expect(page.locator(".dz-info")).to_contain_text("Page 2")

    # 3. level 1, download: progress to 100 %, the file holds that level's pixels
    choose_level(page, "1: 600 × 450 px")
    out = tmp_path / "page2-level1.png"
    download(page, out)
    np.testing.assert_array_equal(read(out), gallery.level_image(1, "iiif2", 1))

    # 4. the viewer: zoom in, draw a region, download only that region at full resolution
    readout = page.locator(".dz-viewer-readout")
    expect(readout).to_contain_text("zoom")
    zoom_of = lambda: float(re.search(r"zoom ([\d.]+) %", readout.inner_text()).group(1))  # noqa: E731
    fitted = zoom_of()
    page.locator(".dz-zoom-in").click()
    page.locator(".dz-zoom-in").click()
    wait_for(lambda: zoom_of() > 3 * fitted, "the viewer to zoom in", page)
    page.wait_for_timeout(400)  # the zoom animation ends
    page.locator(".dz-select").click()
    stage = page.locator(".dz-viewer-stage").bounding_box()
    assert stage is not None
    x0, y0 = stage["x"] + stage["width"] * 0.3, stage["y"] + stage["height"] * 0.3
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x0 + 120, y0 + 60, steps=5)
    page.mouse.move(x0 + 240, y0 + 120, steps=5)
    page.mouse.up()
    field = lambda name: int(page.locator(f".dz-region-{name} input").input_value())  # noqa: E731
    wait_for(lambda: field("w") < 1200, "the region fields to follow the drawing", page)
    x, y, w, h = (field(name) for name in "xywh")
    # 240 × 120 screen px at more than 3× the fitted zoom: a small part of the 1200 × 900 image
    assert 0 < w < 600 and 0 < h < 300 and abs(w / h - 2) < 0.2
    choose_level(page, "0: 1200 × 900 px")
    crop = tmp_path / "page2-region.png"
    download(page, crop)
    np.testing.assert_array_equal(read(crop), gallery.level_image(1, "iiif2", 0)[y : y + h, x : x + w])

    # 5. the whole image to this computer: the file name (no dead link in Voila) and the button both save
    # the file's very bytes (1.5 MB: sent in two chunks)
    page.locator(".dz-clear-region").click()
    expect(page.locator(".dz-region-w input")).to_have_value("1200")
    full = tmp_path / "page2-full.png"
    download(page, full)
    assert full.stat().st_size > 1024 * 1024
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "voila-picker-done.png"), full_page=True)
    for n, target in enumerate((".dz-status .dz-file-link", ".dz-status .dz-save-copy")):
        with page.expect_download(timeout=20_000) as info:
            page.locator(target).click()
        got = tmp_path / f"got-{n}.png"
        info.value.save_as(got)
        assert info.value.suggested_filename == full.name
        assert got.read_bytes() == full.read_bytes(), target
        expect(page.locator(".dz-save-label")).to_have_text("✓ In your downloads")
    page.screenshot(path=str(SHOTS / "voila-picker-saved.png"), full_page=True)

    page.screenshot(path=str(SHOTS / "voila-picker.png"), full_page=True)
    (SHOTS / "voila-picker-timing.txt").write_text(
        f"URL entry to page 1 seen in the viewer (loopback, Voila, headless Chromium): {to_thumbnail:.2f} s\n")
    print(f"\nURL entry to the first page in the viewer: {to_thumbnail:.2f} s; screenshot {SHOTS / 'voila-picker.png'}")
    assert not errors, errors
