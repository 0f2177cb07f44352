"""``save(cancel=event)``: the download stops between tile rows, raises DownloadCancelled, leaves nothing."""

from __future__ import annotations

import threading

import pytest
from e2e.helpers import is_tile

import dezoomify_nb as dz
from dezoomify_nb.testing import TileServer, make_test_image

FAST = {"min_interval": 0, "retry_delay": 0.01}


@pytest.fixture(scope="module")
def many_tiles():
    """2048 × 2048 in 64-px tiles: 32 × 32 = 1024 tiles at full resolution."""
    with TileServer(make_test_image(2048, 2048, seed=5), tile_size=64) as server:
        yield server


def cancel_after(n: int) -> tuple[threading.Event, object]:
    event = threading.Event()

    def progress(done: int, failed: int, total: int) -> None:
        if done >= n:
            event.set()

    return event, progress


@pytest.mark.parametrize("name", ["out.png", "out.jpg", "out.tif", "out.iiif"])
def test_cancel_mid_download_leaves_nothing(many_tiles, tmp_path, name):
    img = dz.open(many_tiles.url("dzi-jpg"), **FAST)
    many_tiles.reset_requests()
    event, progress = cancel_after(3)
    with pytest.raises(dz.DownloadCancelled) as info:
        img.save(tmp_path / name, level=0, progress=progress, cancel=event)
    assert isinstance(info.value, dz.DezoomifyError) and info.value.hint
    assert list(tmp_path.iterdir()) == []  # no file, no .partial, no placeholder
    fetched = many_tiles.count(is_tile)
    assert 3 <= fetched < img.levels[0].n_tiles // 2  # stopped early: the rows ahead were not all fetched


def test_cancel_before_start_fetches_at_most_the_colour_probe(many_tiles, tmp_path):
    img = dz.open(many_tiles.url("iiif2"), **FAST)
    many_tiles.reset_requests()
    event = threading.Event()
    event.set()
    with pytest.raises(dz.DownloadCancelled):
        img.save(tmp_path / "x.png", progress=False, cancel=event)
    assert list(tmp_path.iterdir()) == []
    # only the first tile, read for its ICC profile (requests of the tests before, which used other
    # kinds and may still be arriving from cancelled rows, are not counted)
    assert many_tiles.count(lambda p: is_tile(p) and p.startswith("/iiif2/")) <= 1


def test_an_unset_event_changes_nothing(server, tmp_path):
    img = dz.open(server.url("dzi-png"), **FAST)
    result = img.save(tmp_path / "whole.png", level=1, progress=False, cancel=threading.Event())
    from e2e.helpers import read

    assert (read(result.path) == server.level_image("dzi-png", 1)).all()
