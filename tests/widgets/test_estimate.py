"""The picker's duration estimate, before downloading, against the download's real duration on a loopback
server with a known latency per tile: within a factor 1.5 either way (a ratio, not timings: a loaded machine
slows both the measure and the download). The preview's own fetch is mostly setup (a client, connections);
the estimate must come from the latency of warm requests, with the download's parallelism and pacing."""

from __future__ import annotations

import time

import pytest

import dezoomify_nb as dz
from dezoomify_nb.testing.gallery import SampleGallery
from dezoomify_nb.widgets.plan import estimate

LATENCY = 0.05


@pytest.fixture(scope="module")
def slow_gallery():
    """One 4000 × 3000 page, 256-px tiles (48 at level 1, the one downloaded), each tile answered after 0.05 s."""
    with SampleGallery(1, width=4000, height=3000, latency=LATENCY) as g:
        g.servers[0].prewarm("zoomify")  # the test server's own first encode of each tile is not its latency
        yield g


@pytest.mark.parametrize(("parallelism", "level", "fmt", "server"), [
    (4, 1, "jpeg", "slow_gallery"), (2, 1, "jpeg", "slow_gallery"),
    (4, 1, "png", "slow_gallery")])  # the PNG writer's own deflate, on every core (Pillow's: 2.4x too long); 3 MP, so
#   the CPU, shared with the other tests of a parallel run, weighs little
def test_the_estimate_is_within_a_factor_of_the_download(request, tmp_path, parallelism, level, fmt, server):
    gallery = request.getfixturevalue(server)
    p = dz.widget(gallery.url(0, "zoomify"), directory=tmp_path, parallelism=parallelism, min_interval=0,
                  retries=0).wait(60)
    p.level_select.value = level
    p.format_select.value = fmt
    img = p.image
    assert img is not None and p.state == "ready"
    est = estimate(img, level, None, fmt=fmt, measured=p._measured.get(img), preview=p._preview)
    assert est.measured and est.tiles == img.levels[level].n_tiles
    shown = p.plan.value
    t0 = time.monotonic()
    p.download().wait(120)
    actual = time.monotonic() - t0
    assert p.state == "done", p.status.value
    ratio = est.seconds / actual
    assert 1 / 1.5 <= ratio <= 1.5, f"estimated {est.seconds:.2f} s, took {actual:.2f} s ({shown})"
    assert "measured" in shown
    print(f"{fmt} level {level} p={parallelism} {server}: estimated {est.seconds:.2f} s, took {actual:.2f} s; {shown}")


def test_the_eta_leans_on_the_estimate_until_the_tiles_tell_the_rate():
    from dezoomify_nb.widgets.bar import ProgressBar

    bar = ProgressBar()
    bar.start(expected=20)
    assert bar.text.value == "starting… · ≈ 20 s"
    bar(1, 0, 100)  # the first tile, a moment after the start: its rate alone would say "ETA 0 s"
    eta = bar.text.value.split("ETA ")[1]
    assert eta in ("19 s", "20 s"), bar.text.value
    bar.start()  # no estimate: nothing promised before the tiles come
    assert bar.text.value == "starting…"
