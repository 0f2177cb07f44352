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

import random
import time

import numpy as np
import pytest
from playwright.sync_api import Page, expect
from widgets.conftest import SHOTS

from .viewer_kit import (
    COLOURS,
    HEIGHT,
    WIDTH,
    bbox,
    copy_notebook,
    jupyter_server,
    near,
    run_code,
    stage_shot,
    voila_server,
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
    with voila_server(tmp_path_factory.mktemp("voila-viewer"), notebook) as url:
        yield url


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    pytest.importorskip("jupyterlab")
    with jupyter_server(tmp_path_factory.mktemp("lab-viewer"), "jupyterlab") as server:
        yield server


def open_voila(page: Page, url: str) -> None:
    resp = page.goto(url)
    assert resp is not None and resp.ok, "Voila did not serve the notebook: see voila.log"
    expect(page.locator(".dz-url input")).to_be_visible(timeout=90_000)


def open_lab(page: Page, server, notebook) -> None:
    base, token, root = server
    name = copy_notebook(notebook, root)
    page.goto(f"{base}/lab/tree/{name}?reset&token={token}")
    expect(page.locator("#jp-main-statusbar")).to_contain_text("| Idle", timeout=90_000)
    page.locator("li.lm-MenuBar-item", has_text="Run").first.click()
    page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()
    expect(page.locator(".jp-OutputArea .dz-url input")).to_be_visible(timeout=90_000)


@pytest.fixture
def errors(page: Page):
    """Console errors and uncaught exceptions of the page (Voila's and Lab's own noise excluded)."""
    seen: list[str] = []
    page.route(lambda url: not url.startswith("http://127.0.0.1"), lambda route: route.abort())
    page.on("pageerror", lambda e: seen.append(f"pageerror: {e}"))
    page.on("console", lambda m: seen.append(f"console: {m.text}") if m.type == "error" else None)
    return seen


def our_errors(seen: list[str]) -> list[str]:
    # the CDN fonts that the page route refuses, and resources of Lab/Voila that are not ours
    noise = ("net::ERR_FAILED", "Failed to load resource", "ERR_NAME_NOT_RESOLVED")
    return [e for e in seen if not any(n in e for n in noise)]


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
    if not any(near(shot, rgb).any() for rgb in COLOURS):
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "viewer-failure.png"))
    bad = wrong_cells(shot, image_box(shot), COLOURS[index])
    assert not bad, f"{what}: {len(bad)} cells not of image {index + 1}'s colour {COLOURS[index]}: {bad[:6]}"
    return shot


def select_image(page: Page, index: int) -> None:
    page.locator(".dz-image select").select_option(index=index)


def open_manifest(page: Page) -> float:
    """Enter the gallery's manifest URL; returns the seconds until the first tile is visible."""
    url = run_code(page, "answer = gallery.manifest_url").strip("'")
    box = page.locator(".dz-url input")
    box.fill(url)
    t0 = time.monotonic()
    box.press("Enter")
    deadline = t0 + 30
    while not near(stage_shot(page), COLOURS[0]).any():
        assert time.monotonic() < deadline, "no tile of image 1 within 30 s"
        page.wait_for_timeout(20)
    return time.monotonic() - t0


def switching_scenario(page: Page, env: str) -> None:
    first_tile = open_manifest(page)
    print(f"\n[{env}] URL entry to first visible tile (loopback): {first_tile:.2f} s")
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
