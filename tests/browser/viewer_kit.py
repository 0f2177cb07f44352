"""What the viewer's browser tests share: a test notebook of flat-coloured images (served by the frontends
of :mod:`jupyter_apps`), a way to run Python in its kernel from the page, and pixel checks of the deep-zoom view.

Every image of the notebook is one flat colour (:data:`COLOURS`), so a tile drawn from the wrong image,
a black hole or a failure marker is visible in the pixels of a screenshot.
"""

from __future__ import annotations

import io
import textwrap
import time
import uuid
from pathlib import Path

import numpy as np
from PIL import Image

#: one flat colour per image (bright, far apart, none near the dark stage nor the failure marker)
COLOURS = [(220, 40, 40), (40, 170, 60), (40, 80, 220), (230, 200, 40), (200, 60, 200), (40, 200, 210)]
#: 2400 × 1800, 256-px tiles: five levels, a 3 × 2 grid at the fitted zoom of a ~900 × 420 stage
WIDTH, HEIGHT = 2400, 1800


def notebook_source(latency: float = 0.05) -> str:
    """The test notebook's code: a gallery of flat images, the picker, and a box that runs code."""
    source = textwrap.dedent("""\
        import sys, traceback
        import numpy as np
        import ipywidgets as W
        import dezoomify_nb as dz
        from dezoomify_nb.testing import TileServer
        from dezoomify_nb.testing.gallery import SampleGallery

        COLOURS = @COLOURS@
        gallery = SampleGallery(len(COLOURS), width=@WIDTH@, height=@HEIGHT@, lossless=True)
        gallery.images = [np.full((@HEIGHT@, @WIDTH@, 3), c, np.uint8) for c in COLOURS]
        gallery.servers = [TileServer(im, latency=@LATENCY@, lossless=True) for im in gallery.images]
        gallery.start()
        picker = dz.widget(min_interval=0, retries=0)
        viewer = picker.viewer

        # the test's hand in the kernel: the code in the box runs on "run", its result goes to the label
        code = W.Textarea(layout=W.Layout(width="300px", height="2em"))
        code.add_class("t-code")
        run = W.Button(description="run")
        run.add_class("t-run")
        result = W.Label()
        result.add_class("t-result")
        def _run(_):
            token, _, body = code.value.partition(chr(10))
            try:
                scope = {**globals(), "answer": None}
                exec(compile(body, "<test>", "exec"), scope)
                result.value = f"{token} ok {scope['answer']!r}"
            except Exception:
                result.value = f"{token} error " + traceback.format_exc().replace(chr(10), " | ")
        run.on_click(_run)
        W.VBox([picker, W.HBox([code, run, result])])
        """)
    for name, value in (("COLOURS", COLOURS), ("WIDTH", WIDTH), ("HEIGHT", HEIGHT), ("LATENCY", latency)):
        source = source.replace(f"@{name}@", repr(value))
    return source


def write_notebook(path: Path, latency: float = 0.05) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(notebook_source(latency))])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


# --- the page -------------------------------------------------------------------------------------------
def run_code(page, code: str, timeout: float = 120.0) -> str:
    """Run ``code`` in the notebook's kernel (its globals are read, not changed, except through objects);
    returns ``repr(answer)`` (``answer`` set by the code). ``timeout`` is longer than the ``picker.wait(60)``
    the tests run: a picker still busy then says so in its error, not as a kernel that did not answer."""
    token = uuid.uuid4().hex
    page.locator(".t-code textarea").fill(f"{token}\n{code}")
    page.locator(".t-run").click()
    result = page.locator(".t-result")
    deadline = time.monotonic() + timeout
    while not (text := result.inner_text()).startswith(token):
        if time.monotonic() > deadline:
            raise AssertionError(f"the kernel did not run {code!r}")
        page.wait_for_timeout(50)
    status, _, value = text[len(token) + 1:].partition(" ")
    if status != "ok":
        raise AssertionError(value)
    return value


#: the stage's border (its colour says whether the view has the focus), left out of :func:`stage_shot`
BORDER = 2


def stage_shot(page) -> np.ndarray:
    """The deep-zoom view as drawn (a real screenshot) inside its border, RGB."""
    png = page.locator(".dz-viewer-stage").screenshot(animations="disabled")
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))[BORDER:-BORDER, BORDER:-BORDER]


def near(shot: np.ndarray, rgb, tol: int = 40) -> np.ndarray:
    return np.all(np.abs(shot.astype(np.int16) - np.array(rgb, np.int16)) < tol, axis=2)


def bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """``(left, top, right, bottom)`` (exclusive) of the True pixels, or None."""
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def wait_stable(page, timeout: float = 20.0, quiet: float = 1.0) -> np.ndarray:
    """The view once it stopped changing for ``quiet`` seconds (tiles arrived, animations ended)."""
    deadline = time.monotonic() + timeout
    last, since = stage_shot(page), time.monotonic()
    while time.monotonic() < deadline:
        page.wait_for_timeout(150)
        shot = stage_shot(page)
        if shot.shape == last.shape and np.array_equal(shot, last):
            if time.monotonic() - since >= quiet:
                return shot
        else:
            last, since = shot, time.monotonic()
    return last


def wrong_cells(shot: np.ndarray, box: tuple[int, int, int, int], rgb, cell: int = 32,
                inset: int = 3) -> list[tuple[int, int, tuple[int, int, int]]]:
    """The ``cell``-px squares inside ``box`` (the image on screen) not of colour ``rgb``:
    ``[(x, y, their mean colour)]``. A tile of another image, a hole or a marker is at least one cell."""
    left, top, right, bottom = box
    region = shot[top + inset: bottom - inset, left + inset: right - inset]
    ok = near(region, rgb)
    bad = []
    for y in range(0, region.shape[0], cell):
        for x in range(0, region.shape[1], cell):
            part = ok[y: y + cell, x: x + cell]
            if part.size and part.mean() < 0.9:
                mean = region[y: y + cell, x: x + cell].reshape(-1, 3).mean(axis=0)
                bad.append((left + inset + x, top + inset + y, tuple(int(v) for v in mean)))
    return bad
