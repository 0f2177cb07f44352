"""A bulk run shows one overall bar and the current image's bar (terminal here; the notebook's ipywidgets
bars are checked by tests/notebooks), and its summary reads well printed or displayed."""

from __future__ import annotations

import re

import pytest

import dezoomify_nb as dz
from dezoomify_nb import progress
from dezoomify_nb.bulk import BulkItem, BulkSummary
from dezoomify_nb.testing.gallery import SampleGallery


@pytest.fixture(scope="module")
def gallery():
    with SampleGallery(pages=3, width=600, height=400) as g:
        yield g


@pytest.fixture
def bar_mode():
    previous = progress.get_mode()
    progress.set_mode("bar")
    yield
    progress.set_mode(previous)


def test_save_all_shows_an_overall_bar_and_the_current_images_bar(gallery, tmp_path, capsys, bar_mode):
    book = dz.open(gallery.manifest_url, min_interval=0)
    summary = book.save_all(tmp_path, max_width=300)
    err = capsys.readouterr().err
    states = [s.strip() for s in re.split(r"[\r\n]", err) if s.strip()]
    overall = [s for s in states if s.startswith("images:")]
    assert re.match(r"images: +0%", overall[0]) and re.search(r"images: +100%.*3/3", overall[-1])
    for page in (1, 2, 3):  # one tile bar, restarted for each image and filled by its tiles
        done = [s for s in states if re.match(f"Sample gallery - Page {page}: +100%", s)]
        assert done and " tiles/s" in done[-1]
    # the overall bar counts 1/3 only after page 1's tiles are done
    assert re.search(r"images: +33%", err).start() > re.search("Sample gallery - Page 1: +100%", err).start()
    assert summary.ok and len([p for p in tmp_path.iterdir() if not p.name.startswith(".")]) == 3  # + the journal


def test_save_all_progress_false_shows_nothing(gallery, tmp_path, capsys, bar_mode):
    dz.open(gallery.manifest_url, min_interval=0).save_all(tmp_path, max_width=300, progress=False)
    assert capsys.readouterr().err == ""


def test_a_callback_gets_each_images_tiles(gallery, tmp_path, bar_mode):
    calls = []
    dz.open(gallery.manifest_url, min_interval=0).save_all(tmp_path, max_width=300,
                                                           progress=lambda d, f, t: calls.append((d, f, t)))
    assert calls.count((2, 0, 2)) == 3  # three two-tile images, each reported to the caller's callback


def test_summary_text_and_html(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    summary = BulkSummary([BulkItem(0, "Page <1>", "done", tmp_path / "a.jpg"),
                           BulkItem(1, "Page 2", "failed", None, "HTTP 404 for https://x.org/2/info.json")],
                          seconds=2.5)
    assert repr(summary) == "<BulkSummary 2 images: 1 done, 0 partial, 1 failed>"
    assert str(summary).splitlines() == [
        "Bulk download: 2 images: 1 done, 0 partial, 1 failed in 2.5 s",
        "  [1] done    Page <1> → a.jpg",
        "  [2] failed  Page 2 (HTTP 404 for https://x.org/2/info.json)",
    ]
    html = summary._repr_html_()
    assert "Page &lt;1&gt;" in html and '<a href="a.jpg"' in html and "HTTP 404 for https://x.org/2/info.json" in html
    assert html.count("<tr>") == 3


def test_save_result_text_and_html(gallery, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = dz.open(gallery.url(0, "iiif2"), min_interval=0).save("page.png", level=1, progress=False)
    assert repr(result) == "SaveResult(path='page.png', level=1, size=300x200, tiles=2, failed=0)"
    assert re.fullmatch(r"Saved page\.png: 300 × 200 px, level 1, 2 tiles in \d+\.\d s", str(result))
    html = result._repr_html_()
    assert '<a href="page.png"' in html and "300 × 200 px · level 1 · 2 tiles" in html
    assert 'src="data:image/png;base64,' in html  # a small preview of the saved file
