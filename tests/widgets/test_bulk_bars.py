"""A bulk run's bars as a notebook shows them (tqdm's ipywidgets): the current image's bar belongs to the image
being read from its start, so an image failing before its first tile shows as failed, not as the previous
image's full bar. (The same state in Chromium: tests/browser/test_picker_after.py.)"""

from __future__ import annotations

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
    return left.value.replace("\u2007", " "), right.value.replace("\u2007", " "), pbar.value, pbar.max, pbar.bar_style


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
    assert left.startswith("Sample gallery - Page 1: 100%") and (value, top) == (2, 2) and style != "danger"
    left, right, value, top, style = seen["[2/3]"]
    assert left.startswith("Sample gallery - Page 2"), left  # not page 1's full bar
    assert value == 0 and "2/2" not in right and "failed" in right and style == "danger", (left, right, value, style)
    left, right, value, top, style = seen["[3/3]"]
    assert left.startswith("Sample gallery - Page 3: 100%") and (value, top) == (2, 2) and style != "danger"
    assert "failed" not in right  # the red of page 2 and its word are gone with it


def test_the_current_bar_names_the_image_as_soon_as_it_begins(notebook_bars, capsys):
    bars = progress.BulkProgress(2)
    first = bars.image("Page 1")
    first(1, 0, 1)
    bars.image_done(True)
    assert look(notebook_bars[1])[0].startswith("Page 1: 100%")
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
