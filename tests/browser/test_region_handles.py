"""Every handle of the viewer's region can be grabbed wherever the region is, in a real browser (Chromium).

The overlays of the view (the navigator at the bottom right, the controls at the top left, ...) once sat
on top of the region's handles when the region touched a corner of the view: the handle was seen but
could not be grabbed. Here the view is zoomed in (the navigator shows), a region is put with one corner
just inside each corner of the view in turn, and each of its eight handles is dragged inwards and back
with the mouse: the picker's x/y/w/h fields (full-resolution pixels) follow each drag; the mouse moved
over the navigator changes nothing of it (no flicker). A region is also drawn with the mouse starting
under the navigator (drawing goes through it). In Voila, JupyterLab and Notebook 7;
screenshots ``test-artifacts/viewer-<app>-corner-<corner>.png``.
"""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Page, expect
from widgets.conftest import SHOTS

from .jupyter_apps import copy_notebook, jupyter_app, open_notebook
from .test_viewer_browser import drag, open_manifest, our_errors
from .viewer_kit import run_code, wait_stable, write_notebook

HANDLES = ("nw", "n", "ne", "e", "se", "s", "sw", "w")
#: how far inside the view's corner the region's corner is (screen px): the navigator's corner is at 10 px
INSET = 24
#: how far each handle is dragged (screen px)
STEP = 30


@pytest.fixture(scope="module")
def notebook(tmp_path_factory):
    return write_notebook(tmp_path_factory.mktemp("handles-nb") / "handles.ipynb")


@pytest.fixture(scope="module", params=["voila", "lab", "nb7"])
def app(request, notebook, tmp_path_factory):
    kind = request.param
    if kind != "voila":
        pytest.importorskip({"lab": "jupyterlab", "nb7": "notebook"}[kind])
    with jupyter_app(kind, tmp_path_factory.mktemp(f"handles-{kind}")) as server:
        yield server


# page (CSS) pixels <-> full-resolution image pixels, by the viewer's own transform
TO_IMAGE = """([x, y]) => { const root = document.querySelector('.dz-viewer-root'); const v = root.dzViewer;
    const c = root.querySelector('.dz-viewer-osd').getBoundingClientRect();
    const q = v.viewport.getCenter(true); q.x = x - c.left; q.y = y - c.top; // an OpenSeadragon Point
    const p = v.world.getItemAt(0).viewerElementToImageCoordinates(q);
    return [p.x, p.y]; }"""


def fields(page: Page) -> list[int]:
    """The picker's x, y, w, h fields as shown (full-resolution pixels)."""
    return [int(page.locator(f".dz-region-{name} input").input_value() or 0) for name in "xywh"]


def wait_fields(page: Page, want: list[float], tol: float, what: str) -> list[int]:
    deadline = time.monotonic() + 10
    while True:
        got = fields(page)
        if all(abs(g - w) <= tol for g, w in zip(got, want, strict=True)):
            return got
        if time.monotonic() > deadline:
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.locator(".dz-viewer").screenshot(path=str(SHOTS / "viewer-handles-failure.png"))
            raise AssertionError(f"{what}: the fields show {got}, expected {[round(w) for w in want]} (± {tol:.0f})")
        page.wait_for_timeout(80)


def centre(page: Page, selector: str) -> tuple[float, float]:
    b = page.locator(selector).bounding_box()
    assert b is not None, f"{selector} is not shown"
    return b["x"] + b["width"] / 2, b["y"] + b["height"] / 2


def on_top(page: Page, x: float, y: float) -> str:
    """What the mouse would touch at (x, y): the element's classes."""
    return page.evaluate("([x, y]) => { const e = document.elementFromPoint(x, y); return e ? e.className : ''; }",
                         [x, y])


def overlaps(a: dict, b: dict) -> bool:
    return (a["x"] < b["x"] + b["width"] and b["x"] < a["x"] + a["width"]
            and a["y"] < b["y"] + b["height"] and b["y"] < a["y"] + a["height"])


def corner_region(page: Page, corner: str) -> list[int]:
    """A region (image pixels) whose ``corner`` is INSET px inside that corner of the view, about 40 % of it."""
    view = page.locator(".dz-viewer-osd").bounding_box()
    w, h = view["width"] * 0.4, view["height"] * 0.45
    x0 = view["x"] + INSET if "w" in corner else view["x"] + view["width"] - INSET - w
    y0 = view["y"] + INSET if "n" in corner else view["y"] + view["height"] - INSET - h
    a = page.evaluate(TO_IMAGE, [x0, y0])
    b = page.evaluate(TO_IMAGE, [x0 + w, y0 + h])
    return [round(a[0]), round(a[1]), round(b[0] - a[0]), round(b[1] - a[1])]


def moved(region: list[int], handle: str, d: float) -> list[float]:
    """``region`` after ``handle`` moved by ``d`` image pixels inwards (towards the region's centre)."""
    x0, y0, x1, y1 = region[0], region[1], region[0] + region[2], region[1] + region[3]
    if "w" in handle:
        x0 += d
    if "e" in handle:
        x1 -= d
    if "n" in handle:
        y0 += d
    if "s" in handle:
        y1 -= d
    return [x0, y0, x1 - x0, y1 - y0]


def handles_scenario(page: Page, env: str) -> None:
    open_manifest(page)
    run_code(page, "picker.wait(60)\nviewer.zoom_by(2)")
    nav = page.locator(".dz-navigator")
    expect(nav).not_to_have_class(re.compile(r"\bdz-nav-idle\b"))  # zoomed in: the navigator shows
    wait_stable(page, quiet=0.5)
    a, b = page.evaluate(TO_IMAGE, [0, 0]), page.evaluate(TO_IMAGE, [100, 0])
    per_px = (b[0] - a[0]) / 100  # image pixels per screen pixel
    tol = 2 * per_px + 2
    SHOTS.mkdir(parents=True, exist_ok=True)

    # a region drawn with the mouse from under the navigator: drawing goes through it
    nb = nav.bounding_box()
    assert nb is not None
    page.locator(".dz-select").click()
    x0, y0 = nb["x"] + nb["width"] * 0.7, nb["y"] + nb["height"] * 0.7
    start = page.evaluate(TO_IMAGE, [x0, y0])
    drag(page, x0, y0, x0 - 300, y0 - 200)
    want = [start[0] - 300 * per_px, start[1] - 200 * per_px, 300 * per_px, 200 * per_px]
    wait_fields(page, want, tol, "a region drawn from under the navigator")
    page.locator(".dz-viewer").screenshot(path=str(SHOTS / f"viewer-{env}-drawn-under-navigator.png"))

    for corner in ("se", "ne", "sw", "nw"):
        region = corner_region(page, corner)
        run_code(page, f"viewer.region = {region}")
        wait_fields(page, region, 1, f"the region at the {corner} corner, set from code")
        page.wait_for_timeout(300)  # the navigator may move aside (no animation to wait for)
        page.locator(".dz-viewer").screenshot(path=str(SHOTS / f"viewer-{env}-corner-{corner}.png"))
        # nothing of the view's own covers a handle (the overlays stepped aside, or hid)
        shown = [h for h in HANDLES if page.locator(f".dz-handle-{h}").is_visible()]
        assert shown == list(HANDLES), f"{corner}: only the handles {shown} are shown"
        for overlay in (".dz-navigator", ".dz-controls", ".dz-viewer-readout"):
            ob = page.locator(overlay).bounding_box()
            if not page.locator(overlay).is_visible() or ob is None:
                continue
            for hd in HANDLES:
                assert not overlaps(ob, page.locator(f".dz-handle-{hd}").bounding_box()), \
                    f"{corner}: {overlay} covers the {hd} handle"
        # the mouse over the navigator changes nothing (its place is not decided by the pointer: no flicker)
        nb = nav.bounding_box()
        looks = []
        for k in range(6):
            page.mouse.move(nb["x"] + nb["width"] * (0.1 + 0.16 * k), nb["y"] + nb["height"] * (0.9 - 0.16 * k))
            page.wait_for_timeout(60)
            looks.append((nav.bounding_box(), nav.evaluate("e => getComputedStyle(e).opacity")))
        assert all(look == looks[0] for look in looks), f"{corner}: the navigator changed under the mouse: {looks}"
        for hd in HANDLES:
            before = fields(page)
            hx, hy = centre(page, f".dz-handle-{hd}")
            top = on_top(page, hx, hy)
            assert f"dz-handle-{hd}" in top, f"{corner} corner: the {hd} handle is under {top!r}"
            sx = STEP if "w" in hd else -STEP if "e" in hd else 0
            sy = STEP if "n" in hd else -STEP if "s" in hd else 0
            drag(page, hx, hy, hx + sx, hy + sy)
            wait_fields(page, moved(before, hd, STEP * per_px), tol, f"{corner} corner: the {hd} handle dragged in")
            hx, hy = centre(page, f".dz-handle-{hd}")
            drag(page, hx, hy, hx - sx, hy - sy)
            wait_fields(page, before, tol, f"{corner} corner: the {hd} handle dragged back")


def test_every_handle_can_be_dragged_at_every_corner(app, notebook, page: Page, errors):
    page.set_viewport_size({"width": 1000, "height": 1300} if app.kind == "voila" else {"width": 1280, "height": 1400})
    name = copy_notebook(notebook, app, "handles")
    open_notebook(page, app, name)
    expect(page.locator(".dz-url input")).to_be_visible(timeout=90_000)
    handles_scenario(page, app.kind)
    assert not our_errors(errors), our_errors(errors)
