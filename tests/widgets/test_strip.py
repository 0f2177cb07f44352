"""The page strip: thumbnails made only for the rows the browser says are in view, newest request first."""

from __future__ import annotations

import threading

import numpy as np
from PIL import Image

import dezoomify_nb as dz
from dezoomify_nb.widgets.strip import PageStrip
from dezoomify_nb.widgets.thumbnail import from_png

FAST = {"min_interval": 0, "retry_delay": 0.01}


def want(strip: PageStrip, indices: list[int], gen: int | None = None) -> None:
    """What the browser sends when scrolling pauses."""
    strip._on_msg(strip, {"type": "want", "gen": strip.gen if gen is None else gen, "indices": indices}, [])


def test_a_long_manifest_fetches_only_the_pages_in_view(gallery, tmp_path):
    url = gallery.long_manifest_url(300)
    server = gallery.servers[0]
    server.reset_requests()
    p = dz.widget(url, directory=tmp_path, **FAST).wait(60)
    assert len(p.collection) == 300 and p.strip.layout.display == "flex" and len(p.strip.labels) == 300
    assert p.strip.labels[41] == "42. Page 42"
    assert server.count("/gallery/long/") == 1  # only the page shown
    want(p.strip, [0, 1, 2, 3])
    p.strip.wait()
    assert sorted(p.strip.fetched) == [0, 1, 2, 3] and server.count("/gallery/long/") == 4
    want(p.strip, [150, 151, 152])  # scrolled far down
    p.strip.wait()
    want(p.strip, [2, 3])  # and back: made once, sent again from the kernel's copy
    p.strip.wait()
    assert sorted(p.strip.fetched) == [0, 1, 2, 3, 150, 151, 152] and server.count("/gallery/long/") == 7
    want(p.strip, [5], gen=p.strip.gen - 1)  # a request about another list: ignored
    p.strip.wait()
    assert 5 not in p.strip.fetched
    # each thumbnail is that page's (pages cycle through the gallery's 3 tinted images)
    arr = from_png(p.strip._cache[151])
    assert max(arr.shape[:2]) <= 96
    expected = np.asarray(Image.fromarray(gallery.image(151 % 3)).resize(arr.shape[1::-1], Image.BOX))
    assert np.abs(arr.astype(int) - expected.astype(int)).mean() < 6
    p.strip.selected = 151  # a click on it
    p.wait(60)
    assert p.image is not None and p.image.title == "300 pages - Page 152" and p.image_select.value == 151
    p.image_select.value = 7  # the menu (keyboard) moves the strip's selection
    assert p.strip.selected == 7


def test_rows_scrolled_away_are_not_fetched():
    started: list[int] = []
    gate = threading.Event()

    def fetch(i: int) -> bytes:
        started.append(i)
        gate.wait(10)
        return b"png"

    strip = PageStrip()
    strip.reset([f"{i}" for i in range(100)], fetch)
    want(strip, list(range(10)))  # two are made at once, eight wait
    while len(started) < 2:
        gate.wait(0.01)
    want(strip, [50, 51])  # scrolled on before they were made: 2..9 are dropped
    gate.set()
    strip.wait()
    assert sorted(started) == [0, 1, 50, 51] and sorted(strip.fetched) == [0, 1, 50, 51]


def test_strip_labels_drop_what_every_title_repeats():
    from dezoomify_nb.widgets.picker import strip_labels

    assert strip_labels(["Book: f. 1r", "Book: f. 1v", "Book: f. 10r"]) == ["1. f. 1r", "2. f. 1v", "3. f. 10r"]
    assert strip_labels(["Page 1", "Page 10"]) == ["1. Page 1", "2. Page 10"]  # no separator: kept whole
    assert strip_labels(["Only - one"]) == ["1. Only - one"]
