"""The deep-zoom viewer in a real browser (Debian's headless Chromium), in Voila and in JupyterLab.

The test notebook (:mod:`viewer_kit`) serves six flat-coloured 2400 × 1800 images as a IIIF manifest and
shows the picker, so every tile on screen can be checked by its colour: a tile of another image, a black
hole or a failure marker shows up in the pixels. Checked: every image opens wholly visible and centred
(fit to the frame, not to its width); after 20 quick random image switches (and switches from code)
every visible tile has the shown image's colour; a failed tile is drawn as failed, then recovers on
retry; no console error. Screenshots go to ``test-artifacts/``; the time from URL entry to the first
visible tile is printed (loopback; not a pass/fail timing).
"""

from __future__ import annotations

import io
import random
import re
import time

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Page, expect
from widgets.conftest import SHOTS

from .jupyter_apps import JupyterApp, copy_notebook, jupyter_app, open_notebook
from .viewer_kit import (
    BORDER,
    COLOURS,
    HEIGHT,
    WIDTH,
    bbox,
    near,
    run_code,
    stage_shot,
    wait_stable,
    write_notebook,
    wrong_cells,
)

#: hides the overlaid controls while the pixels of the image are checked
NO_OVERLAYS = ".dz-ov { visibility: hidden !important; }"


@pytest.fixture(scope="module")
def notebook(tmp_path_factory):
    return write_notebook(tmp_path_factory.mktemp("viewer-nb") / "viewer.ipynb")


@pytest.fixture(scope="module")
def voila(notebook, tmp_path_factory):
    """Voila and the test notebook's name in it (each page load runs it in a new kernel)."""
    with jupyter_app("voila", tmp_path_factory.mktemp("voila-viewer")) as app:
        yield app, copy_notebook(notebook, app, "viewer")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    pytest.importorskip("jupyterlab")
    with jupyter_app("lab", tmp_path_factory.mktemp("lab-viewer")) as app:
        yield app


def open_voila(page: Page, voila: tuple[JupyterApp, str]) -> None:
    open_notebook(page, *voila)
    expect(page.locator(".dz-url input")).to_be_visible(timeout=90_000)


def open_lab(page: Page, app: JupyterApp, notebook) -> None:
    """Lab or Notebook 7: a fresh copy of the notebook (a fresh kernel), run all."""
    open_notebook(page, app, copy_notebook(notebook, app, "viewer"))
    expect(page.locator(".jp-OutputArea .dz-url input")).to_be_visible(timeout=90_000)


def our_errors(seen: list[str]) -> list[str]:
    # the CDN fonts that the page route refuses, and resources of Lab/Voila that are not ours
    noise = ("net::ERR_FAILED", "Failed to load resource", "ERR_NAME_NOT_RESOLVED")
    return [e for e in seen if not any(n in e for n in noise)
            # Notebook 7.6's own start-up error (a settings schema it looks up), thrown by its core bundle
            and not ("reading 'schema'" in e and "/static/notebook/notebook_core" in e)]


def image_box(shot: np.ndarray) -> tuple[int, int, int, int]:
    """The image on screen: the pixels of any of the images' colours."""
    mask = np.zeros(shot.shape[:2], bool)
    for rgb in COLOURS:
        mask |= near(shot, rgb)
    box = bbox(mask)
    assert box is not None, "no image on screen"
    return box


def assert_fitted(shot: np.ndarray, what: str) -> None:
    """The whole image is visible, centred, as large as the frame allows (fit to the frame)."""
    sh, sw = shot.shape[:2]
    left, top, right, bottom = image_box(shot)
    w, h = right - left, bottom - top
    scale = min(sw / WIDTH, sh / HEIGHT)
    detail = f"{what}: image at {left},{top}-{right},{bottom} in a {sw} × {sh} frame"
    assert abs(w / h - WIDTH / HEIGHT) < 0.03, f"{detail}: cut off (aspect {w / h:.2f})"
    assert abs(left - (sw - right)) <= 3 and abs(top - (sh - bottom)) <= 3, f"{detail}: not centred"
    # as large as fits, give or take a margin of a few per cent
    assert 0.9 * scale * WIDTH <= w <= scale * WIDTH + 2, f"{detail}: not fitted ({w / WIDTH:.3f} vs {scale:.3f})"


def assert_all_tiles(page: Page, index: int, what: str) -> np.ndarray:
    """Every visible cell of the image is image ``index``'s colour (no foreign tile, no hole)."""
    style = page.add_style_tag(content=NO_OVERLAYS)
    try:
        shot = wait_stable(page)
    finally:
        style.evaluate("e => e.remove()")
    bad = wrong_cells(shot, image_box(shot), COLOURS[index]) if any(near(shot, c).any() for c in COLOURS) else [0]
    if bad:
        SHOTS.mkdir(parents=True, exist_ok=True)
        Image.fromarray(shot).save(SHOTS / "viewer-failure.png")
    assert not bad, f"{what}: {len(bad)} cells not of image {index + 1}'s colour {COLOURS[index]}: {bad[:6]}"
    return shot


def select_image(page: Page, index: int) -> None:
    page.locator(".dz-image select").select_option(index=index)


def open_manifest(page: Page) -> tuple[float, float]:
    """Enter the gallery's manifest URL; returns the seconds until the first tile is visible: as the page
    saw it (the frame after the first tile loaded) and as screenshots saw it (polled, so a bit later)."""
    url = run_code(page, "answer = gallery.manifest_url").strip("'")
    box = page.locator(".dz-url input")
    box.fill(url)
    t0 = time.monotonic()
    page.evaluate("() => { window.dzT0 = performance.now(); }")
    box.press("Enter")
    deadline = t0 + 30
    while not near(stage_shot(page), COLOURS[0]).any():
        assert time.monotonic() < deadline, "no tile of image 1 within 30 s"
        page.wait_for_timeout(20)
    polled = time.monotonic() - t0
    in_page = page.evaluate("() => (Number(document.querySelector('.dz-viewer-root').dataset.firstTile)"
                            " - window.dzT0) / 1000")
    return in_page, polled


def switching_scenario(page: Page, env: str) -> None:
    in_page, polled = open_manifest(page)
    line = (f"[{env}] URL entry to first visible tile (loopback, 50 ms per tile): {in_page:.2f} s in the page, "
            f"{polled:.2f} s by screenshots")
    print("\n" + line)
    SHOTS.mkdir(parents=True, exist_ok=True)
    with open(SHOTS / "viewer-timing.txt", "a") as f:
        f.write(line + "\n")
    run_code(page, "picker.wait(60)")
    shot = assert_all_tiles(page, 0, "image 1 after opening")
    assert_fitted(shot, "image 1 on open")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.locator(".dz-viewer").screenshot(path=str(SHOTS / f"viewer-{env}-open.png"))

    # 20 quick random switches through the dropdown (0-150 ms apart), then every tile is checked
    rng = random.Random(16)
    choice = 0
    for _ in range(20):
        choice = rng.choice([i for i in range(len(COLOURS)) if i != choice])
        select_image(page, choice)
        page.wait_for_timeout(rng.randint(0, 150))
    run_code(page, "picker.wait(60)")
    shot = assert_all_tiles(page, choice, f"after 20 switches (last: image {choice + 1})")
    assert_fitted(shot, f"image {choice + 1} after switching")

    # from code, as the quick start does: no black hole may be left
    run_code(page, "import time\nfor i in (1, 0, 1, 3, 1):\n"
                   "    picker.image_select.value = i\n    time.sleep(0.05)\npicker.wait(60)")
    assert_all_tiles(page, 1, "after switching from code")
    run_code(page, "for i in (4, 2, 5, 2):\n    viewer.show(picker.collection[i])\npicker.wait(60)")
    shot = assert_all_tiles(page, 2, "after viewer.show() from code")
    assert_fitted(shot, "image 3 shown from code")
    page.locator(".dz-viewer").screenshot(path=str(SHOTS / f"viewer-{env}-switched.png"))


def test_switching_and_fit_in_voila(page: Page, voila, errors):
    page.set_viewport_size({"width": 1000, "height": 1300})
    open_voila(page, voila)
    switching_scenario(page, "voila")
    assert not our_errors(errors), our_errors(errors)


def test_switching_and_fit_in_lab(page: Page, lab, notebook, errors):
    page.set_viewport_size({"width": 1280, "height": 1400})
    open_lab(page, lab, notebook)
    switching_scenario(page, "lab")
    assert not our_errors(errors), our_errors(errors)


# --- the controls, the keys, the region, failed tiles --------------------------------------------------
def root_state(page: Page) -> dict:
    return page.evaluate("""() => { const r = document.querySelector('.dz-viewer-root');
        return {drawing: r.classList.contains('dz-drawing'), failed: Number(r.dataset.failed || 0),
                region: r.dataset.region || '', full: document.fullscreenElement === r,
                zoom: r.dzViewer.viewport.getZoom(true)}; }""")


def zoom_percent(page: Page) -> float:
    return float(re.search(r"zoom ([\d.]+) %", page.locator(".dz-viewer-readout").inner_text()).group(1))


def kernel_region(page: Page) -> list[int]:
    return eval(run_code(page, "answer = list(viewer.region)"))  # noqa: S307 - a list of ints from our kernel


def screen_geometry(page: Page) -> tuple[float, float, float, dict]:
    """``(left, top, scale)`` of the fitted image in page coordinates, and the stage's box."""
    style = page.add_style_tag(content=NO_OVERLAYS)
    try:
        shot = wait_stable(page, quiet=0.5)
    finally:
        style.evaluate("e => e.remove()")
    stage = page.locator(".dz-viewer-stage").bounding_box()
    left, top, right, _ = image_box(shot)
    return stage["x"] + BORDER + left, stage["y"] + BORDER + top, (right - left) / WIDTH, stage


def drag(page: Page, x0: float, y0: float, x1: float, y1: float) -> None:
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2, steps=4)
    page.mouse.move(x1, y1, steps=4)
    page.mouse.up()


def wait_region(page: Page, check, what: str) -> list[int]:
    deadline = time.monotonic() + 10
    while not check(r := kernel_region(page)):
        assert time.monotonic() < deadline, f"{what}: the region is {r}"
        page.wait_for_timeout(100)
    return r


def controls_scenario(page: Page, env: str) -> None:
    open_manifest(page)
    run_code(page, "picker.wait(60)")
    assert_all_tiles(page, 0, "image 1")
    stage = page.locator(".dz-viewer-stage")
    root = page.locator(".dz-viewer-root")

    # keys, once the view has the focus (a click in it)
    box = stage.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    fitted = zoom_percent(page)
    page.keyboard.press("+")
    page.keyboard.press("+")
    page.wait_for_timeout(600)
    assert zoom_percent(page) > 2 * fitted, "+ did not zoom in"
    page.keyboard.press("-")
    page.wait_for_timeout(600)
    assert fitted < zoom_percent(page) < 2 * fitted, "- did not zoom out"
    page.keyboard.press("0")
    deadline = time.monotonic() + 5  # the animation to the fitted view ends (slower on a busy machine)
    while abs(zoom_percent(page) - fitted) >= 0.6:
        assert time.monotonic() < deadline, f"0 did not fit: zoom {zoom_percent(page)} %, fitted {fitted} %"
        page.wait_for_timeout(100)
    page.keyboard.press("r")
    expect(root).to_have_class(re.compile("dz-drawing"))
    expect(page.locator(".dz-hint")).to_be_visible()
    assert run_code(page, "answer = viewer.drawing") == "True"
    page.locator(".dz-viewer").screenshot(path=str(SHOTS / f"viewer-{env}-drawing.png"))
    root.focus()  # the code box had it
    page.keyboard.press("Escape")
    expect(root).not_to_have_class(re.compile("dz-drawing"))
    page.keyboard.press("f")
    page.wait_for_function("() => document.fullscreenElement !== null")
    assert root_state(page)["full"]
    page.wait_for_timeout(600)
    page.screenshot(path=str(SHOTS / f"viewer-{env}-fullscreen.png"))
    shot = assert_all_tiles(page, 0, "fullscreen")
    assert_fitted(shot, "fullscreen")  # refitted to the whole screen
    page.keyboard.press("f")
    page.wait_for_function("() => document.fullscreenElement === null")
    page.wait_for_timeout(400)
    assert_fitted(assert_all_tiles(page, 0, "after fullscreen"), "after fullscreen")

    # region: drawn with the mouse (the button), then moved and resized with handles; the trait follows
    left, top, scale, sbox = screen_geometry(page)
    page.locator(".dz-select").click()
    x0, y0 = left + 600 * scale, top + 300 * scale
    drag(page, x0, y0, x0 + 800 * scale, y0 + 600 * scale)
    tol = 2 / scale + 2  # a screen pixel or two, in image pixels
    r = wait_region(page, lambda r: len(r) == 4, "drawn")
    assert np.allclose(r, [600, 300, 800, 600], atol=tol), r
    assert not root_state(page)["drawing"]
    rb = page.locator(".dz-viewer-region").bounding_box()
    cx, cy = rb["x"] + rb["width"] / 2, rb["y"] + rb["height"] / 2
    drag(page, cx, cy, cx + 200 * scale, cy + 100 * scale)  # move
    r = wait_region(page, lambda r: abs(r[0] - 800) < tol + 2, "moved")
    assert np.allclose(r, [800, 400, 800, 600], atol=tol + 2), r
    hb = page.locator(".dz-handle-se").bounding_box()
    hx, hy = hb["x"] + hb["width"] / 2, hb["y"] + hb["height"] / 2
    drag(page, hx, hy, hx + 200 * scale, hy + 100 * scale)  # resize by the bottom-right corner
    r = wait_region(page, lambda r: abs(r[2] - 1000) < tol + 4, "resized")
    assert np.allclose(r, [800, 400, 1000, 700], atol=tol + 4), r
    hb = page.locator(".dz-handle-w").bounding_box()
    hx, hy = hb["x"] + hb["width"] / 2, hb["y"] + hb["height"] / 2
    drag(page, hx, hy, hx - 100 * scale, hy)  # the left edge
    r = wait_region(page, lambda r: abs(r[0] - 700) < tol + 4, "left edge")
    assert np.allclose(r, [700, 400, 1100, 700], atol=tol + 6), r
    # the navigator shows it
    nav = page.locator(".dz-navigator").bounding_box()
    nr = page.locator(".dz-nav-region").bounding_box()
    assert nav and nr and nav["x"] <= nr["x"] and nr["x"] + nr["width"] <= nav["x"] + nav["width"] + 1
    assert abs(nr["width"] / nr["height"] - 1100 / 700) < 0.15, nr
    page.locator(".dz-viewer").screenshot(path=str(SHOTS / f"viewer-{env}-region.png"))

    # set from Python: the box moves there
    run_code(page, "viewer.region = [1200, 600, 600, 300]")
    expected = (left + 1200 * scale, top + 600 * scale, 600 * scale, 300 * scale)
    deadline = time.monotonic() + 10
    while True:
        rb = page.locator(".dz-viewer-region").bounding_box()
        got = (rb["x"], rb["y"], rb["width"], rb["height"])
        if np.allclose(got, expected, atol=3):
            break
        assert time.monotonic() < deadline, (got, expected)
        page.wait_for_timeout(100)
    # aspect lock: 2:1 is kept while resizing by a corner
    page.locator(".dz-viewer-lock").click()
    assert abs(float(run_code(page, "answer = viewer.region_aspect")) - 2) < 1e-6
    hb = page.locator(".dz-handle-se").bounding_box()
    hx, hy = hb["x"] + hb["width"] / 2, hb["y"] + hb["height"] / 2
    drag(page, hx, hy, hx + 300 * scale, hy + 20 * scale)
    r = wait_region(page, lambda r: r[2] > 800, "resized with the lock")
    assert abs(r[2] / r[3] - 2) < 0.02 and abs(r[2] - 900) < tol + 4, r
    page.locator(".dz-viewer").screenshot(path=str(SHOTS / f"viewer-{env}-region-locked.png"))
    page.locator(".dz-viewer-clear").click()
    wait_region(page, lambda r: r == [], "cleared")
    expect(page.locator(".dz-viewer-region")).to_be_hidden()


def failed_tiles_scenario(page: Page, env: str) -> None:
    open_manifest(page)
    run_code(page, "picker.wait(60)")
    # every tile whose region starts at 0,0 (the top-left tile of each level) of page 2 fails
    run_code(page, "gallery.servers[1].missing('/0,0,')")
    select_image(page, 1)
    chip = page.locator(".dz-failed")
    expect(chip).to_be_visible(timeout=30_000)  # after three retries, 0.4 + 1.2 + 3.6 s apart
    expect(chip).to_contain_text("failed")
    style = page.add_style_tag(content=NO_OVERLAYS)
    shot = wait_stable(page)
    style.evaluate("e => e.remove()")
    left, top, right, bottom = image_box(shot)
    corner = shot[top + 4: top + 24, left + 4: left + 24].reshape(-1, 3).mean(axis=0)
    # the top-left tile is drawn as failed (the grey hatching), never left black, never another image
    assert not near(corner[None, None], COLOURS[1])[0, 0], corner
    assert corner.min() > 50 and abs(corner[0] - corner[2]) < 30, f"not the failure marker: {corner}"
    assert int(run_code(page, "import time\ntime.sleep(0.5)\nanswer = viewer.failed_tiles")) >= 1
    page.locator(".dz-viewer").screenshot(path=str(SHOTS / f"viewer-{env}-failed-tiles.png"))
    run_code(page, "gallery.servers[1].clear_faults()")
    page.locator(".dz-retry").click()
    expect(chip).to_be_hidden(timeout=20_000)
    assert_all_tiles(page, 1, "after Retry")
    assert run_code(page, "import time\ntime.sleep(0.5)\nanswer = viewer.failed_tiles") == "0"


def test_controls_keys_and_region_in_voila(page: Page, voila, errors):
    page.set_viewport_size({"width": 1000, "height": 1300})
    open_voila(page, voila)
    controls_scenario(page, "voila")
    assert not our_errors(errors), our_errors(errors)


def test_failed_tiles_then_retry_in_voila(page: Page, voila, errors):
    page.set_viewport_size({"width": 1000, "height": 1300})
    open_voila(page, voila)
    failed_tiles_scenario(page, "voila")
    assert not our_errors(errors), our_errors(errors)


def controls_in_a_notebook(page: Page, app, notebook, errors, env: str) -> None:
    """The controls scenario in Lab or Notebook 7; the keys typed in the view never reach the notebook
    (r = raw cell, 0 0 = restart, f = find...)."""
    page.set_viewport_size({"width": 1280, "height": 1400})
    open_lab(page, app, notebook)
    cells = page.locator(".jp-Notebook .jp-Cell")
    kinds_js = "cs => cs.map(c => [...c.classList].filter(k => k.endsWith('Cell')).join(' '))"
    kinds = cells.evaluate_all(kinds_js)
    controls_scenario(page, env)
    assert cells.evaluate_all(kinds_js) == kinds
    expect(page.locator(".jp-Dialog")).to_have_count(0)
    assert not our_errors(errors), our_errors(errors)


def test_controls_keys_and_region_in_lab(page: Page, lab, notebook, errors):
    controls_in_a_notebook(page, lab, notebook, errors, "lab")


@pytest.fixture(scope="module")
def nb7(tmp_path_factory):
    pytest.importorskip("notebook")
    with jupyter_app("nb7", tmp_path_factory.mktemp("nb7-viewer")) as app:
        yield app


def test_switching_and_fit_in_notebook7(page: Page, nb7, notebook, errors):
    page.set_viewport_size({"width": 1280, "height": 1400})
    open_lab(page, nb7, notebook)
    switching_scenario(page, "nb7")
    assert not our_errors(errors), our_errors(errors)


def test_dark_theme_in_lab(page: Page, lab, notebook, errors):
    page.set_viewport_size({"width": 1280, "height": 1400})
    open_lab(page, lab, notebook)
    open_manifest(page)
    run_code(page, "picker.wait(60)\nviewer.region = [900, 500, 800, 600]\nviewer.zoom_by(2)")
    page.locator("li.lm-MenuBar-item", has_text="Settings").first.click()
    page.locator(".lm-Menu-item", has_text="Theme").first.hover()
    page.get_by_role("menuitem", name="JupyterLab Dark", exact=True).click()
    expect(page.locator("body")).to_have_attribute("data-jp-theme-light", "false", timeout=20_000)
    page.wait_for_timeout(800)
    page.locator(".dz-viewer").screenshot(path=str(SHOTS / "viewer-lab-dark.png"))
    panel = np.asarray(Image.open(io.BytesIO(page.locator(".dz-controls").screenshot())).convert("RGB"))
    assert panel.reshape(-1, 3).mean(axis=0).max() < 110, "the controls kept a light background in the dark theme"
    bg = page.locator(".dz-viewer-stage").evaluate("e => getComputedStyle(e).backgroundColor")
    assert max(int(v) for v in re.findall(r"\d+", bg)[:3]) < 110, f"the stage kept a light background: {bg}"
    expect(page.locator(".dz-navigator")).to_be_visible()
    # the view survived the theme change (JupyterLab hides the panel meanwhile): still zoomed in, drawn
    assert zoom_percent(page) > 20, page.locator(".dz-viewer-readout").inner_text()
    assert near(stage_shot(page), COLOURS[0]).mean() > 0.05, "the image is no longer drawn"
    assert not our_errors(errors), our_errors(errors)


def test_controls_keys_and_region_in_notebook7(page: Page, nb7, notebook, errors):
    controls_in_a_notebook(page, nb7, notebook, errors, "nb7")
