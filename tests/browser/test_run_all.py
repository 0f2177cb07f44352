"""*Run All* of every notebook of ``notebooks/`` in JupyterLab (headless Chromium), then every widget it
shows is alive: no cell errs, no widget failed to render, every progress bar reached its end, every picker
answers a choice (its info follows; an empty picker opens a URL), and every viewer pans and zooms with
new tiles fetched from the sample server behind it (which must still be running: no cell of a
top-to-bottom run stops it). No console error.

One Lab server for the module; the notebooks run one after the other in it, each in its own kernel, shut
down after its test (04's dask cluster with it). The sample servers live in the notebooks' kernels: the
test asks them how many tile requests they have seen through a second client of the kernel (jupyter_client
on its connection file), before and after the pan/zoom. Screenshots go to
``test-artifacts/run-all-<notebook>-*.png``.
"""

from __future__ import annotations

import io
import re
import time
from dataclasses import dataclass

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Locator, Page, expect
from widgets.conftest import NOTEBOOKS, SHOTS

from dezoomify_nb.testing.gallery import SampleGallery

from .jupyter_apps import JupyterApp, jupyter_app, kernel_value, open_notebook, shut_down


@dataclass(frozen=True)
class Shows:
    """What a notebook shows once run: its viewers, the kernel's sample servers behind them, its bars."""
    viewers: int
    servers: str = "[]"  #: a Python expression (in the notebook's kernel): the TileServers the viewers read
    bars: int = 0  #: progress bars (tqdm's widgets) it leaves, each at its end
    opens_url: bool = False  #: an empty picker: the test types a URL into it


#: every notebook of notebooks/ (a new one must be added here: the test fails for a notebook it does not know)
NOTEBOOK_SHOWS = {
    "01-quick-start": Shows(viewers=2, servers="gallery.servers", bars=1),
    "02-lazy-arrays": Shows(viewers=1, servers="[server]"),
    "03-manifests-and-bulk": Shows(viewers=1, servers="gallery.servers", bars=1),  # bulk: its image bar goes
    "04-scale-out": Shows(viewers=0),
    "picker": Shows(viewers=1, opens_url=True),
}
#: tile requests (not metadata documents) seen by the servers of the expression ``{}``
TILES = "sum(s.count(lambda p: not p.split('?')[0].endswith(('.xml', '.json', '.dzi'))) for s in {})"
NOISE = ("net::ERR_FAILED", "Failed to load resource", "ERR_NAME_NOT_RESOLVED")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    pytest.importorskip("jupyterlab")
    with jupyter_app("lab", tmp_path_factory.mktemp("lab-run-all")) as app:
        yield app


@pytest.fixture(scope="module")
def gallery():
    """What the test types into the empty picker of picker.ipynb: three pages as a IIIF manifest."""
    with SampleGallery(3, width=1200, height=900, lossless=True) as g:
        yield g


def stage_pixels(stage: Locator) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(stage.screenshot(animations="disabled"))).convert("RGB"))


def drawn(shot: np.ndarray, stage: Locator) -> float:
    """The share of the stage showing picture (not the stage's own background, dark or light)."""
    empty = [int(v) for v in re.findall(r"\d+", stage.evaluate("e => getComputedStyle(e).backgroundColor"))[:3]]
    return float((np.abs(shot.astype(int) - empty).max(axis=2) > 12).mean())


def wait_drawn(page: Page, stage: Locator, share: float, what: str, timeout: float = 30) -> np.ndarray:
    deadline = time.monotonic() + timeout
    while (seen := drawn(shot := stage_pixels(stage), stage)) < share:
        assert time.monotonic() < deadline, f"{what}: only {seen:.0%} of the viewer shows the picture"
        page.wait_for_timeout(200)
    return shot


def wait_run_done(page: Page, timeout: float = 180) -> None:
    """Every code cell has run (an execution count, none queued) and the kernel is idle; an error stops it."""
    deadline = time.monotonic() + timeout
    prompts = page.locator(".jp-Notebook .jp-CodeCell .jp-InputArea-prompt")
    while True:
        failed = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']",
                              has_text=re.compile(r"Traceback|Error\b"))
        assert failed.count() == 0, failed.first.inner_text()[-3000:]
        texts = prompts.all_inner_texts()
        if texts and all(re.fullmatch(r"\[\d+\]:?", t.strip()) for t in texts) and \
                "| Idle" in page.locator("#jp-main-statusbar").inner_text():
            return
        assert time.monotonic() < deadline, f"Run All did not end: prompts {texts}"
        page.wait_for_timeout(500)


def pan_and_zoom(page: Page, viewer: Locator) -> None:
    """Zoom in twice (the overlaid + and the wheel), then pan by dragging: tiles of deeper levels are needed."""
    stage = viewer.locator(".dz-viewer-stage")
    stage.scroll_into_view_if_needed()
    viewer.locator(".dz-zoom-in").click()
    box = stage.bounding_box()
    assert box is not None
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx, cy)
    page.mouse.wheel(0, -600)
    page.wait_for_timeout(500)
    page.mouse.down()
    page.mouse.move(cx - 200, cy - 120, steps=8)
    page.mouse.up()


def check_pickers_answer(page: Page, tag: str) -> None:
    """Every picker with several images follows a choice of another one (the kernel answers)."""
    pickers = page.locator(".jp-OutputArea .dz-picker")
    for i in range(pickers.count()):
        select = pickers.nth(i).locator(".dz-image select")
        if not select.is_visible() or select.locator("option").count() < 2:
            continue
        current = select.input_value()
        option = next(o for o in select.locator("option").all_inner_texts() if o != current)
        select.select_option(label=option)
        title = re.sub(r"^\d+\.\s+", "", option)  # "2.\xa0Sample gallery - Page 2"
        expect(pickers.nth(i).locator(".dz-info")).to_contain_text(title, timeout=30_000)
        expect(pickers.nth(i)).to_have_class(re.compile(r"\bdz-state-ready\b"), timeout=30_000)
        wait_drawn(page, pickers.nth(i).locator(".dz-viewer-stage"), 0.2, f"{tag}: picker {i + 1} after {option}")


@pytest.mark.parametrize("stem", sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")))
def test_run_all_then_every_widget_is_alive(stem: str, page: Page, lab: JupyterApp, gallery):
    assert stem in NOTEBOOK_SHOWS, f"notebooks/{stem}.ipynb is new: say in NOTEBOOK_SHOWS what it shows"
    shows = NOTEBOOK_SHOWS[stem]
    name = f"{stem}.ipynb"
    (lab.root / name).write_bytes((NOTEBOOKS / name).read_bytes())
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    page.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)
    page.set_viewport_size({"width": 1280, "height": 1000})
    page.route(lambda url: not url.startswith("http://127.0.0.1"), lambda route: route.abort())
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        open_notebook(page, lab, name)
        wait_run_done(page)
        outputs = page.locator(".jp-Notebook .jp-OutputArea")
        expect(outputs.filter(has_text=re.compile("Error displaying widget|Loading widget"))).to_have_count(
            0, timeout=30_000)

        # the progress bars (tqdm's, outside the pickers) all reached their end
        bars = page.locator(".jp-OutputArea .widget-hprogress:not(.dz-picker *) .progress-bar")
        assert bars.count() == shows.bars, f"{bars.count()} progress bars, {shows.bars} expected"
        for i in range(bars.count()):
            assert bars.nth(i).evaluate("e => e.style.width") == "100%", bars.nth(i).evaluate("e => e.style.width")
        if shows.bars:
            with_bars = page.locator(".jp-Notebook .jp-Cell").filter(has=page.locator(".widget-hprogress")).last
            with_bars.scroll_into_view_if_needed()
            with_bars.screenshot(path=str(SHOTS / f"run-all-{stem}-bars.png"))

        servers = shows.servers
        if shows.opens_url:  # the empty picker: a URL typed in opens it
            box = page.locator(".jp-OutputArea .dz-url input")
            box.fill(gallery.manifest_url)
            box.press("Enter")
            expect(page.locator(".jp-OutputArea .dz-picker.dz-state-ready")).to_be_visible(timeout=60_000)
        check_pickers_answer(page, stem)

        viewers = page.locator(".jp-OutputArea .dz-viewer")
        assert viewers.count() == shows.viewers, f"{viewers.count()} viewers, {shows.viewers} expected"
        for i in range(shows.viewers):
            viewer = viewers.nth(i)
            stage = viewer.locator(".dz-viewer-stage")
            stage.scroll_into_view_if_needed()
            wait_drawn(page, stage, 0.2, f"{stem}: viewer {i + 1} after Run All")
            if i == 0:
                page.screenshot(path=str(SHOTS / f"run-all-{stem}-after-run.png"))

            def tiles() -> int:
                if shows.opens_url:
                    return sum(s.count(lambda p: not p.split("?")[0].endswith((".xml", ".json")))
                               for s in gallery.servers)
                return int(kernel_value(lab, name, TILES.format(servers)))

            before = tiles()
            pan_and_zoom(page, viewer)
            deadline = time.monotonic() + 30
            while (after := tiles()) <= before:
                assert time.monotonic() < deadline, f"{stem}: viewer {i + 1}: no tile request after pan/zoom"
                page.wait_for_timeout(300)
            shot = wait_drawn(page, stage, 0.9, f"{stem}: viewer {i + 1} after pan/zoom")
            viewer.screenshot(path=str(SHOTS / f"run-all-{stem}-viewer{i + 1}-zoomed.png"))
            assert "failed" not in viewer.inner_text().lower()
            print(f"\n{stem}: viewer {i + 1}: {after - before} tile requests after pan/zoom, "
                  f"{drawn(shot, stage):.0%} drawn")
        if not shows.viewers:
            page.screenshot(path=str(SHOTS / f"run-all-{stem}-after-run.png"))
        mine = [e for e in errors if not any(n in e for n in NOISE)]
        assert not mine, mine
    finally:
        shut_down(lab, name)
