"""The picker's states, layout, region fields, page strip and code line in JupyterLab and Voila (Chromium).

A one-cell notebook shows ``dz.widget()``; the test types URLs as a user would: a server that never
answers (opening), a web page without any image (failed: one sentence, advice without CLI flags, details
folded), a 3-page manifest (ready: fits a 1280 × 800 window, Download included, no second copy of the
image), the region typed into x/y/w/h (the viewer draws it), a slow image (downloading, then Cancel:
no tile count or ETA left), a level downloaded (done: link, time, preview; the "copy as code" line, run
here, writes the same pixels; "Save to this computer" hands the browser the file's bytes, and in Voila
the file name does too instead of a dead link), another page (nothing of the download left), then a 300-page manifest
(the strip asks only for the thumbnails in view, counted on the loopback server). Screenshots of every
state go to ``test-artifacts/picker-<app>-<state>.png``; no console errors are allowed.
"""

from __future__ import annotations

import json
import re
import socket
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Page, expect
from widgets.conftest import SHOTS

from dezoomify_nb.testing.gallery import SampleGallery

from .jupyter_apps import KINDS, copy_notebook, jupyter_app, open_notebook

WINDOW = {"width": 1280, "height": 800}
CLI_FLAG = re.compile(r"(?<![\w-])--[a-z][\w-]*|(?<![\w-])-H ")
NOTEBOOK_CODE = ("import os\nimport dezoomify_nb as dz\n\n"
                 "picker = dz.widget(directory=os.environ['DZ_PICKER_OUT'], min_interval=0, retries=0)\npicker")


def write_notebook(path: Path) -> None:
    nb = {"cells": [{"cell_type": "code", "execution_count": None, "id": "picker", "metadata": {}, "outputs": [],
                     "source": NOTEBOOK_CODE}],
          "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                       "language_info": {"name": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb))


@pytest.fixture(scope="module")
def sources():
    """The 3-page gallery (a 300-page manifest on it too), a slow image, a web page without any image,
    and a server that never answers."""
    with SampleGallery(3, width=1200, height=900, lossless=True) as g, \
            SampleGallery(1, width=4096, height=4096, tile_size=128, latency=0.1) as slow:
        g.long = g.long_manifest_url(300)
        g.no_image = g.servers[1].serve_files("/pages/", {"plain.html": "<html><body><p>Nothing here.</p></body>"
                                                                      "</html>"}, "text/html") + "/plain.html"
        g.slow = slow.url(0, "dzi-jpg")
        with socket.socket() as hang:
            hang.bind(("127.0.0.1", 0))
            hang.listen(16)
            g.hang = f"http://127.0.0.1:{hang.getsockname()[1]}/never/info.json"
            yield g


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("picker-root")
    out = root / "out"
    out.mkdir()
    return root, out


@pytest.fixture(scope="module", params=KINDS)
def app(request, workspace, tmp_path_factory):
    """``(kind, open(page, theme=None))``: the picker notebook served by JupyterLab, Notebook 7 or Voila,
    opened (and run) in a page; the three servers one after the other, each shared by the module's tests."""
    root, out = workspace
    kind = request.param
    if kind != "voila":
        pytest.importorskip({"lab": "jupyterlab", "nb7": "notebook"}[kind])
    notebook = root / "picker-test.ipynb"
    write_notebook(notebook)
    with jupyter_app(kind, tmp_path_factory.mktemp(kind), root, {"DZ_PICKER_OUT": str(out)}) as server:
        def open_app(page: Page, theme: str | None = None) -> None:
            # Voila runs the notebook in a new kernel at each load; Lab and Notebook 7 get a fresh copy
            name = notebook.name if kind == "voila" else copy_notebook(notebook, server, "picker")
            open_notebook(page, server, name, theme)
        yield kind, open_app


def shoot(page: Page, name: str, state: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"picker-{name}-{state}.png"
    page.locator(".dz-picker").screenshot(path=str(path))
    return path


def enter(page: Page, url: str, state: str, where: str, text: str) -> None:
    """Type ``url`` and press Enter; wait for ``state`` with ``text`` in ``where`` (the state alone could
    still be the last URL's)."""
    box = page.locator(".dz-url input")
    box.fill(url)
    box.press("Enter")
    expect(page.locator(where)).to_contain_text(text, timeout=60_000)
    expect(page.locator(f".dz-picker.dz-state-{state}")).to_be_visible(timeout=60_000)


def rgb_of(page: Page, selector: str) -> np.ndarray:
    import io

    return np.asarray(Image.open(io.BytesIO(page.locator(selector).screenshot())).convert("RGB"))


def viewer_shows(page: Page, gallery: SampleGallery, index: int) -> bool:
    a = rgb_of(page, ".dz-viewer")
    h, w = a.shape[:2]
    seen = a[int(h * 0.4): int(h * 0.6), int(w * 0.4): int(w * 0.6)].reshape(-1, 3).mean(axis=0)
    dist = [np.abs(seen - gallery.image(i).reshape(-1, 3).mean(axis=0)).max() for i in range(len(gallery))]
    return int(np.argmin(dist)) == index and dist[index] < 30


def wait_for(check, what: str, page: Page, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        page.wait_for_timeout(100)
    return value


def assert_fits(page: Page) -> None:
    """The whole picker, Download included, is in view without scrolling (1280 × 800)."""
    download = page.locator(".dz-download").bounding_box()
    whole = page.locator(".dz-picker").bounding_box()
    assert download is not None and whole is not None
    # the bottom of what is seen: the window, or a clipping (scrolling) panel around the picker (Lab's)
    seen = page.evaluate("""() => { let bottom = window.innerHeight;
        for (let p = document.querySelector('.dz-picker').parentElement; p; p = p.parentElement) {
          const r = p.getBoundingClientRect();
          if (/(auto|scroll)/.test(getComputedStyle(p).overflowY) && r.height > 0) bottom = Math.min(bottom, r.bottom);
        }
        return bottom; }""")
    assert download["y"] >= 0 and download["y"] + download["height"] <= seen, (download, seen)
    assert download["x"] + download["width"] <= WINDOW["width"], download
    assert whole["y"] + whole["height"] <= seen, (whole, seen)
    assert page.evaluate("document.scrollingElement.scrollHeight <= window.innerHeight + 1")


def visible_text(page: Page) -> str:
    return page.locator(".dz-picker").inner_text()


def new_page(browser) -> tuple:
    """``(context, page, errors)``: a 1280 × 800 page that reaches only 127.0.0.1; ``errors`` collects its
    console errors and uncaught exceptions (those of the requests refused here left out)."""
    context = browser.new_context(viewport=WINDOW)
    page = context.new_page()
    page.set_default_timeout(30_000)
    aborted: set[str] = set()

    def route(r):
        aborted.add(r.request.url)
        r.abort()

    page.route(lambda url: not url.startswith("http://127.0.0.1"), route)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e} {e.stack}"))
    page.on("console", lambda m: errors.append(f"console: {m.text} @ {m.location.get('url')}")
            if m.type == "error" and m.location.get("url") not in aborted else None)
    return context, page, errors


def our_errors(name: str, errors: list[str]) -> list[str]:
    # Notebook 7.6's own start-up error (a settings schema it looks up), thrown by its core bundle
    return [e for e in errors if not (name == "nb7" and "reading 'schema'" in e and "notebook_core" in e)]


def test_picker_states_layout_region_strip_and_code(app, sources, workspace, browser):
    name, open_app = app
    _, out = workspace
    context, page, errors = new_page(browser)
    try:
        open_app(page)
        expect(page.locator(".dz-url input")).to_be_visible(timeout=90_000)

        # empty: a dashed hint where the image will be; nothing else
        picker = page.locator(".dz-picker")
        expect(picker).to_have_class(re.compile(r"\bdz-state-empty\b"))
        expect(page.locator(".dz-placeholder")).to_contain_text("No image yet")
        for hidden in (".dz-viewer", ".dz-actions", ".dz-side", ".dz-progress-row", ".dz-strip", ".dz-thumb"):
            expect(page.locator(hidden)).to_be_hidden()
        shoot(page, name, "empty")

        # opening: a spinner and what is being read
        enter(page, sources.hang, "opening", ".dz-placeholder", "/never/info.json")
        expect(page.locator(".dz-placeholder .dz-spinner")).to_be_visible()
        expect(page.locator(".dz-viewer")).to_be_hidden()
        shoot(page, name, "opening")

        # failed: one sentence, advice in a notebook's words, the reasons folded in Details
        enter(page, sources.no_image, "failed", ".dz-placeholder", "plain.html")
        card = page.locator(".dz-placeholder .dz-card-failed")
        title = card.locator(".dz-card-title")
        assert "\n" not in title.inner_text().strip()
        box = title.bounding_box()
        assert box is not None and box["height"] < 48, box  # one sentence, not 24 lines
        details = card.locator("details")
        assert details.get_attribute("open") is None
        assert not CLI_FLAG.search(card.inner_text()), card.inner_text()
        expect(page.locator(".dz-viewer")).to_be_hidden()  # no black box with a stale zoom
        assert not re.search(r"zoom [\d.]+ %", visible_text(page))
        shoot(page, name, "failed")
        details.locator("summary").click()
        expect(details.locator("pre")).to_be_visible()
        shoot(page, name, "failed-details")

        # ready: the viewer is the preview; the whole picker fits the window, Download included
        t0 = time.monotonic()
        enter(page, sources.manifest_url, "ready", ".dz-info", "Sample gallery - Page 1")
        wait_for(lambda: viewer_shows(page, sources, 0), "page 1 in the viewer", page)
        first_view = time.monotonic() - t0
        expect(page.locator(".dz-thumb")).to_be_hidden()
        expect(page.locator(".dz-strip .dz-strip-row")).to_have_count(3, timeout=10_000)
        expect(page.locator(".dz-plan")).to_contain_text("1200 × 900 px")
        assert_fits(page)
        page.screenshot(path=str(SHOTS / f"picker-{name}-1280x800.png"))
        shoot(page, name, "ready")

        # the region typed in the fields is drawn by the viewer
        for field, value in zip("whxy", (600, 300, 300, 150), strict=True):  # in an order that clamps nothing
            page.locator(f".dz-region-{field} input").fill(str(value))
            page.locator(f".dz-region-{field} input").press("Enter")
        drawn = page.locator(".dz-viewer .dz-viewer-region")  # the viewer's region (its handles, its bar inside)
        expect(drawn).to_be_visible(timeout=10_000)
        try:
            wait_for(lambda: (b := drawn.bounding_box()) is not None and b["height"] > 0
                     and abs(b["width"] / b["height"] - 2) < 0.1, "a 2:1 region", page)
        except AssertionError:
            page.screenshot(path=str(SHOTS / f"picker-{name}-region-failed.png"))
            raise AssertionError((drawn.evaluate("e => e.outerHTML"), drawn.bounding_box(),
                                  [page.locator(f".dz-region-{f} input").input_value() for f in "xywh"])) from None
        expect(page.locator(".dz-plan")).to_contain_text("600 × 300 px")
        page.locator(".dz-clear-region").click()
        expect(page.locator(".dz-region-w input")).to_have_value("1200")

        # done: a level as PNG; the code line shown before, run here, gives the same pixels
        page.locator(".dz-level select").select_option(index=1)
        page.locator(".dz-format select").select_option(label="PNG")
        expect(page.locator(".dz-code code")).to_contain_text('level=1, format="png")')
        code = page.locator(".dz-code code").inner_text()
        assert code.startswith("import dezoomify_nb as dz; dz.open(") and "level=1" in code, code
        page.locator(".dz-download").click()
        expect(picker).to_have_class(re.compile(r"\bdz-state-done\b"), timeout=60_000)
        link = page.locator(".dz-status .dz-file-link")
        written = out / link.inner_text()
        assert written.is_file()
        if name == "voila":  # Voila serves no file of the kernel's folder: the name saves the file, no dead link
            assert link.get_attribute("href") is None and link.get_attribute("role") == "button"
        else:
            assert link.get_attribute("href") == f"out/{written.name}"
        if name == "lab":  # relative to the notebook: a click opens the file in Lab itself
            assert link.evaluate("a => new URL(a.href).pathname") == f"/lab/tree/out/{written.name}"
        with page.expect_download(timeout=20_000) as saved:  # every frontend: the file to this computer
            page.locator(".dz-status .dz-save-copy").click()
        assert saved.value.suggested_filename == written.name
        assert Path(saved.value.path()).read_bytes() == written.read_bytes()
        expect(page.locator(".dz-status .dz-save-label")).to_have_text("✓ In your downloads")
        expect(page.locator(".dz-status .dz-done-preview")).to_be_visible()
        expect(page.locator(".dz-status")).to_contain_text(re.compile(r"\d+ tiles? in [\d.]+ s"))
        assert_fits(page)
        shoot(page, name, "done")
        from_code = out / f"from-code-{name}.png"
        assert json.dumps(str(written)) in code, (code, written)
        exec(code.replace(json.dumps(str(written)), json.dumps(str(from_code))), {})  # noqa: S102
        with Image.open(written) as a, Image.open(from_code) as b:
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
            np.testing.assert_array_equal(np.asarray(a.convert("RGB")), sources.level_image(0, "iiif2", 1))

        # another page: nothing of that download stays
        page.locator(".dz-image select").select_option(index=2)
        expect(picker).to_have_class(re.compile(r"\bdz-state-ready\b"), timeout=30_000)
        wait_for(lambda: viewer_shows(page, sources, 2), "page 3 in the viewer", page)
        assert "tiles in" not in visible_text(page) and "Saved" not in visible_text(page)

        # a failed Open after an image: no black box with the last image's zoom, no stale download
        enter(page, sources.servers[0].base_url + "/nothing/here.json", "failed", ".dz-placeholder", "404")
        expect(page.locator(".dz-viewer")).to_be_hidden()
        expect(page.locator(".dz-side")).to_be_hidden()
        assert not re.search(r"zoom [\d.]+ %|tiles", visible_text(page)), visible_text(page)
        shoot(page, name, "failed-after-image")

        # downloading, then cancelled: no tile count or ETA left behind
        enter(page, sources.slow, "ready", ".dz-info", "4096 × 4096 px")
        page.locator(".dz-download").click()
        expect(picker).to_have_class(re.compile(r"\bdz-state-downloading\b"))
        expect(page.locator(".dz-progress-row")).to_contain_text(re.compile(r"[1-9]\d* / \d+ tiles"), timeout=30_000)
        shoot(page, name, "downloading")
        page.locator(".dz-cancel").click()
        expect(picker).to_have_class(re.compile(r"\bdz-state-cancelled\b"), timeout=30_000)
        expect(page.locator(".dz-progress-row")).to_be_hidden()
        assert "ETA" not in visible_text(page) and not re.search(r"\d+ / \d+ tiles", visible_text(page))
        expect(page.locator(".dz-status")).to_contain_text("Nothing was written")
        shoot(page, name, "cancelled")

        # 300 pages: only the thumbnails in view are asked for
        server = sources.servers[0]
        server.reset_requests()
        enter(page, sources.long, "ready", ".dz-info", "300 pages - Page 1")
        strip = page.locator(".dz-strip .dz-strip-root")
        expect(page.locator(".dz-strip img").first).to_be_visible(timeout=30_000)
        page.wait_for_timeout(1500)
        in_view = page.evaluate("""() => { const r = document.querySelector('.dz-strip-root');
            return Math.ceil(r.clientHeight / 112); }""")
        first = server.count("/gallery/long/")
        assert 1 < first <= in_view + 1, (first, in_view)  # page 1's metadata + the rows in view
        assert page.locator(".dz-strip .dz-strip-row").count() <= in_view + 4  # virtualised DOM
        strip.evaluate("r => { r.scrollTop = 150 * 112; }")
        expect(page.locator('.dz-strip .dz-strip-row[data-index="151"] img')).to_be_visible(timeout=30_000)
        page.wait_for_timeout(1000)
        assert server.count("/gallery/long/") - first <= in_view + 1
        page.locator('.dz-strip .dz-strip-row[data-index="151"]').click()
        expect(page.locator(".dz-info")).to_contain_text("Page 152", timeout=30_000)
        expect(page.locator(".dz-image select")).to_have_value("152. 300 pages - Page 152")
        shoot(page, name, "strip")
        assert not our_errors(name, errors), errors
        (SHOTS / f"picker-{name}-timing.txt").write_text(
            f"URL entry to page 1 seen in the viewer ({name}, loopback, headless Chromium, screenshots polled "
            f"every 0.1 s): {first_view:.2f} s\n")
    finally:
        context.close()


#: WCAG contrast of an element's text against the background it is drawn on (the nearest opaque one)
CONTRAST = """e => {
  const rgb = c => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
                               return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  let p = e, bg = null;
  for (; p; p = p.parentElement) {
    const c = rgb(getComputedStyle(p).backgroundColor);
    if (c.length === 3 || (c.length === 4 && c[3] > 0.9)) { bg = c.slice(0, 3); break; }
  }
  bg = bg || [255, 255, 255];
  const fg = lum(rgb(getComputedStyle(e).color)), back = lum(bg);
  return {fg, back, ratio: (Math.max(fg, back) + 0.05) / (Math.min(fg, back) + 0.05)};
}"""


def assert_dark(page: Page, selector: str, text: str | None = None) -> None:
    """``selector`` is drawn dark (its pixels, not only its style), and ``text`` inside it is light and readable."""
    mean = rgb_of(page, selector).reshape(-1, 3).mean(axis=0)
    assert mean.max() < 110, f"{selector} is not dark: mean colour {mean.round()}"
    if text is not None:
        c = page.locator(f"{selector} {text}").first.evaluate(CONTRAST)
        assert c["fg"] > c["back"] and c["ratio"] >= 4.5, f"{selector} {text}: {c}"


def test_dark_theme(app, sources, browser):
    """The dark theme of each frontend (Lab's and Notebook 7's menu, Voila's ?theme=dark): the picker's cards
    (the done card and its save button included) and panel and the viewer's overlaid controls are dark with
    light, readable text."""
    name, open_app = app
    context, page, errors = new_page(browser)
    try:
        open_app(page, theme="dark")
        expect(page.locator(".dz-url input")).to_be_visible(timeout=90_000)
        if name != "voila":
            page.locator("li.lm-MenuBar-item", has_text="Settings").first.click()
            page.locator(".lm-Menu-item", has_text="Theme").first.hover()
            page.get_by_role("menuitem", name="JupyterLab Dark", exact=True).click()
        expect(page.locator("body")).to_have_attribute("data-jp-theme-light", "false", timeout=30_000)
        page.wait_for_timeout(500)  # the theme's CSS applied

        assert_dark(page, ".dz-placeholder", ".dz-card-empty")
        enter(page, sources.no_image, "failed", ".dz-placeholder", "plain.html")
        assert_dark(page, ".dz-placeholder .dz-card-failed", ".dz-advice")
        title = page.locator(".dz-card-failed .dz-card-title").evaluate(CONTRAST)
        assert title["ratio"] >= 3, title  # the red title is readable on the dark card
        shoot(page, name, "dark-failed")

        enter(page, sources.manifest_url, "ready", ".dz-info", "Sample gallery - Page 1")
        wait_for(lambda: viewer_shows(page, sources, 0), "page 1 in the viewer", page)
        assert_dark(page, ".dz-side", ".dz-info")
        assert_dark(page, ".dz-controls", ".dz-btn")
        icons = rgb_of(page, ".dz-controls")
        assert (icons.max(axis=2) > 170).mean() > 0.02, "the controls' icons are not light on the dark panel"
        assert_dark(page, ".dz-viewer-readout")
        assert page.locator(".dz-viewer-readout").evaluate(CONTRAST)["ratio"] >= 4.5
        shoot(page, name, "dark-ready")

        page.locator(".dz-level select").select_option(index=3)  # the smallest level: a quick download
        page.locator(".dz-download").click()
        expect(page.locator(".dz-picker.dz-state-done")).to_be_visible(timeout=60_000)
        assert_dark(page, ".dz-status .dz-card-done", ".dz-save-copy")  # the save button too
        shoot(page, name, "dark-done")
        assert not our_errors(name, errors), errors
    finally:
        context.close()
