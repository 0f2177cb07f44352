"""A bulk run's bars as a notebook shows them (tqdm's ipywidgets): the current image's bar belongs to the image
being read from its start, so an image failing before its first tile shows as failed, not as the previous
image's full bar. (The same state in Chromium: tests/browser/test_picker_after.py.)"""

from __future__ import annotations

import re

import pytest

import dezoomify_nb as dz
from dezoomify_nb import progress
from dezoomify_nb.testing.gallery import SampleGallery


@pytest.fixture
def notebook_bars(monkeypatch):
    """tqdm.auto as in a notebook (its ipywidgets bars), and every bar made kept for the test to look at."""
    import tqdm.auto
    import tqdm.notebook

    monkeypatch.setattr(tqdm.auto, "tqdm", tqdm.notebook.tqdm)
    monkeypatch.setattr(progress, "_mode", "auto")
    made: list[progress._Bar] = []
    real = progress._Bar

    class Kept(real):  # type: ignore[misc, valid-type]
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(progress, "_Bar", Kept)
    return made


def look(bar: progress._Bar) -> tuple[str, str, int, int, str]:
    """What the notebook shows of a bar: its left text, right text, value, max and colour."""
    left, pbar, right = bar.tqdm.container.children
    def text(html: str) -> str:
        return html.replace("\u2007", " ").replace("\xa0", " ")

    return text(left.value), text(right.value), pbar.value, pbar.max, pbar.bar_style


def test_an_image_failing_before_its_first_tile_shows_as_failed(notebook_bars, tmp_path, capsys):
    with SampleGallery(3, width=600, height=400) as gallery:
        gallery.servers[1].fail("info.json", status=404, times=None)  # page 2: no metadata, so no tile
        seen: dict[str, tuple[str, str, int, int, str]] = {}

        def report(line: str) -> None:  # said right after each image ended, the bars as they are then
            if line.startswith("[") and ("saved to" in line or "failed:" in line):
                seen[line[:5]] = look(notebook_bars[1])

        summary = dz.open(gallery.manifest_url, min_interval=0, retries=0).save_all(
            tmp_path, max_width=300, report=report)
    capsys.readouterr()
    assert [item.status for item in summary.items] == ["done", "failed", "done"]
    assert len(notebook_bars) == 2  # the overall bar and one current-image bar, restarted for each image
    left, right, value, top, style = seen["[1/3]"]
    assert left == "Sample gallery - Page 1" and right.startswith(" 100% · 2/2") and (value, top) == (2, 2)
    assert style != "danger"
    left, right, value, top, style = seen["[2/3]"]
    assert left == "Sample gallery - Page 2", left  # not page 1's full bar
    assert value == 0 and "2/2" not in right and "failed" in right and style == "danger", (left, right, value, style)
    left, right, value, top, style = seen["[3/3]"]
    assert left == "Sample gallery - Page 3" and right.startswith(" 100% · 2/2") and (value, top) == (2, 2)
    assert style != "danger"
    assert "failed" not in right  # the red of page 2 and its word are gone with it


def test_the_current_bar_names_the_image_as_soon_as_it_begins(notebook_bars, capsys):
    bars = progress.BulkProgress(2)
    first = bars.image("Page 1")
    first(1, 0, 1)
    bars.image_done(True)
    left, right = look(notebook_bars[1])[:2]
    assert left == "Page 1" and right.startswith(" 100% · 1/1"), (left, right)
    bars.image("Page 2")  # begun: no tile yet
    left, right, value, _, style = look(notebook_bars[1])
    assert left.startswith("Page 2") and value == 0 and "reading" in right and style == ""
    bars.close()
    capsys.readouterr()


def test_the_first_image_before_its_first_tile_is_an_empty_bar(notebook_bars, capsys):
    bars = progress.BulkProgress(1)
    bars.image("Page 1")
    left, right, value, _, style = look(notebook_bars[1])
    assert left.startswith("Page 1") and value == 0 and style == "" and "reading" in right  # not a full blue bar
    bars.image_done(False)
    assert look(notebook_bars[1])[4] == "danger"
    bars.close()
    capsys.readouterr()


def test_the_two_bars_line_up_and_read_well(notebook_bars, capsys):
    """Both titles in boxes of one width (the bars start at the same x), their spaces not widened (tqdm turns
    spaces into figure spaces: "Sample  gallery  -  Page 3"), "tiles/s" with a space before it."""
    bars = progress.BulkProgress(1)
    first = bars.image("Sample gallery - Page 1 of a rather long book title")
    first(3, 0, 4)
    overall, current = (bar.tqdm.container.children[0] for bar in notebook_bars)
    assert overall.layout.width == current.layout.width and overall.layout.width
    assert current.layout.overflow == "hidden"
    assert "\u2007" not in current.value and current.value.replace("\xa0", " ") == "Sample gallery - Page 1 of…"
    right = look(notebook_bars[1])[1]
    assert " tiles/s" in right and "tile/s" not in right, right
    bars.image_done(True)
    assert " images/s" in look(notebook_bars[0])[1]
    bars.close()
    capsys.readouterr()


class Handle:
    """A display handle (IPython gives none outside a kernel), keeping what the bar shows."""

    def __init__(self, seen: list[object]) -> None:
        self.seen = seen

    def update(self, obj: object, **kwargs: object) -> None:
        self.seen.append(obj)


def test_the_last_image_bar_goes_at_the_end_unless_it_failed(notebook_bars, capsys):
    """As a terminal's leave=False bar: the run ended, its overall bar stays; the last image's bar is removed
    (from the saved notebook too), unless that image failed (its red bar stays)."""
    for ok in (True, False):
        notebook_bars.clear()
        bars = progress.BulkProgress(1)
        bars.image("Page 1")(1, 0, 1)
        updates: list[list[object]] = [[], []]
        for bar, seen in zip(notebook_bars, updates, strict=True):
            bar.handle = Handle(seen)
        bars.image_done(ok)
        bars.close()
        overall, current = updates
        assert overall == [notebook_bars[0].tqdm.container]
        assert current == ([{"text/plain": ""}] if ok else [notebook_bars[1].tqdm.container]), (ok, current)
    capsys.readouterr()


def test_terminal_bars_line_up(monkeypatch, capsys):
    monkeypatch.setattr(progress, "_mode", "bar")
    bars = progress.BulkProgress(2)
    bars.image("Page 1")(1, 0, 2)
    bars.image_done(True)
    bars.close()
    lines = [line for line in capsys.readouterr().err.replace("\r", "\n").split("\n") if "|" in line]
    starts = {line.index("|") for line in lines}
    assert len(starts) == 1, lines  # "images: …|" and "Page 1: …|" start their bar at the same column
    assert any(line.startswith("Page 1") for line in lines) and any(" tiles/s" in line for line in lines), lines


@pytest.mark.parametrize(("fails", "colour"), [(0, ""), (1, "warning"), (2, "danger")])
def test_the_overall_bar_ends_amber_or_red_when_images_failed(notebook_bars, fails, colour, capsys):
    """tqdm makes a finished bar green whatever happened: with failed images it ends amber (some) or red (all),
    its figures in the same colour; a failed image's figures are red too."""
    bars = progress.BulkProgress(2)
    for i in range(2):
        bars.image(f"Page {i + 1}")(1, 0, 1)
        bars.image_done(i >= fails)
        if i < fails:
            assert notebook_bars[1].tqdm.container.children[2].style.text_color.startswith("var(--jp-error-color1")
    bars.close()
    pbar, figures = notebook_bars[0].tqdm.container.children[1:]
    assert pbar.bar_style == (colour or "success"), (fails, pbar.bar_style)
    assert (figures.style.text_color or "").startswith({"": "", "warning": "var(--jp-warn", "danger": "var(--jp-error"}[colour])
    capsys.readouterr()


def test_a_slow_rate_reads_per_second(notebook_bars, monkeypatch, capsys):
    """Below one a second tqdm writes "2.61s/ images": the rate stays "0.38 images/s"."""
    bars = progress.BulkProgress(4)
    clock = notebook_bars[0].tqdm._time
    monkeypatch.setattr(notebook_bars[0].tqdm, "_time", lambda: clock() + 10)
    bars.image("Page 1")(1, 0, 1)
    bars.image_done(True)
    right = look(notebook_bars[0])[1]
    assert re.search(r"0\.\d\d images/s", right) and "s/" not in right.replace("images/s", ""), right
    bars.close()
    capsys.readouterr()
