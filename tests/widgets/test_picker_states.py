"""The picker's states, its errors in a notebook's words, the region fields, the estimates and the code line."""

from __future__ import annotations

import re

import numpy as np
import pytest
from e2e.helpers import is_tile, read

import dezoomify_nb as dz
from dezoomify_nb import errors as E
from dezoomify_nb.widgets.advice import error_parts, notebook_hint
from dezoomify_nb.widgets.plan import estimate, tiles_under

FAST = {"min_interval": 0, "retry_delay": 0.01}
_FLAG = re.compile(r"(?<![\w-])--?[a-zA-Z][\w-]*")


def cli_hints() -> list[tuple[BaseException, str]]:
    """An error of each kind the CLI gives a hint for, with that hint."""
    found: list[BaseException] = [E.FetchError("u", "x") if issubclass(cls, E.FetchError) else cls("x")
                                  for cls in E.DEFAULT_HINTS]
    found += [E.FetchError("u", "HTTP 403", status=403), E.FetchError("u", "SSL: CERTIFICATE_VERIFY_FAILED"),
              E.NoDezoomerFound("u", [("iiif", "not JSON")]), E.DownloadError("x", failed=1, total=2),
              E.DownloadCancelled("x"), OSError(28, "No space left on device")]
    for name in dir(E):
        if name.endswith("_HINT") and isinstance(getattr(E, name), str):
            found.append(E.TileFetchError("u", "x", hint=getattr(E, name)))
    found += [E.DezoomifyError("x", hint="If the image really is that large, raise the cap: --max-pixels 5 "),
              E.WriterError("x", hint="Save the region as PNG, JPEG or TIFF, or drop --region."),
              E.CacheError("x", hint="Choose a writable directory for --tile-cache."),
              E.DezoomifyError("x", hint="Give the cache directory of an earlier run: -c DIR."),
              E.WriterError("x", hint="Choose another output name, delete or move the existing file first, or pass "
                                      "--overwrite (overwrite=True in Python).")]
    return [(exc, E.hint_for(exc)) for exc in found]


def test_notebook_hints_name_no_cli_flag_and_the_cli_keeps_its_own():
    for exc, cli in cli_hints():
        text = notebook_hint(exc)
        assert text and not _FLAG.search(text.replace("dz.widget(url,", "")), (type(exc).__name__, cli, text)
        assert "--logging" not in text and "-H " not in text
    assert "--logging debug" in E.hint_for(E.NoDezoomerFound("u", []))  # the CLI's hint is unchanged
    assert "HTTP headers" in notebook_hint(E.FetchError("u", "HTTP 403", status=403))


def test_an_error_is_one_sentence_and_details():
    exc = E.NoDezoomerFound("https://example.org/x", [(f"dezoomer{i}", f"reason {i}") for i in range(24)])
    parts = error_parts(exc)
    assert "\n" not in parts.sentence and parts.sentence.endswith(".") and "example.org/x" in parts.sentence
    assert len(parts.details) == 25 and parts.details[0] == "- dezoomer0: reason 0"
    assert "dz.widget(url, dezoomer=" in parts.advice
    gone = error_parts(E.FetchError("https://x/i.json", "HTTP 404 Not Found for https://x/i.json", status=404))
    assert gone.sentence == "There is nothing at this address (the server answered HTTP 404)."
    assert gone.details[0] == "HTTP 404 Not Found for https://x/i.json"  # the server's own words, kept
    long = error_parts(ValueError("y" * 1000))
    assert len(long.sentence) <= 221 and long.details[0] == "y" * 1000


def test_states_each_have_their_own_look(gallery, tmp_path):
    p = dz.widget(directory=tmp_path, **FAST)
    assert p.state == "empty" and "dz-state-empty" in p._dom_classes and "No image yet" in p.placeholder.value
    assert p.viewer.layout.display == "none" and p.side.layout.display == "none"
    assert p.actions.layout.display == "none" and p.download_button.disabled
    seen: list[tuple[str, str]] = []
    p.observe(lambda c: seen.append((c["new"], p.placeholder.value)), names="state")
    p.open_url(gallery.manifest_url).wait(60)
    assert seen[0][0] == "opening" and "Opening" in seen[0][1] and seen[-1][0] == "ready"
    assert p.state == "ready" and p.placeholder.layout.display == "none" and p.viewer.layout.display == "flex"
    assert "dz-state-ready" in p._dom_classes and "dz-state-opening" not in p._dom_classes
    p.level_select.value = 2
    p.download().wait(60)
    assert p.state == "done" and re.search(r"\d+ tiles in", p.status.value)
    p.image_select.value = 1  # another image: nothing of the last download stays
    assert p.state in ("opening", "ready") and "tiles" not in p.status.value
    assert p.progress.layout.display == "none"
    p.wait(60)
    assert p.state == "ready" and "tiles in" not in p.status.value and "Page 2" in p.info.value
    # a broken URL after an image: the viewer is hidden, not left black with the last zoom
    p.open_url(gallery.servers[0].base_url + "/nothing/here.json").wait(60)
    assert p.state == "failed" and p.viewer.layout.display == "none" and p.viewer.levels == []
    assert p.side.layout.display == "none" and p.actions.layout.display == "none"


def test_a_page_that_cannot_be_read(gallery, tmp_path):
    url = gallery.long_manifest_url(4)
    p = dz.widget(url, directory=tmp_path, **FAST).wait(60)
    gallery.servers[0].fail("/gallery/long/2/", times=None, status=404)
    try:
        p.image_select.value = 2
        p.wait(60)
    finally:
        gallery.servers[0].clear_faults()
    # the error under the viewer, which no longer shows page 1; the menu and the strip stay to pick another
    assert p.state == "failed" and "404" in p.status.value and p.viewer.levels == [] and p.info.value == ""
    assert p.side.layout.display == "flex" and p.strip.layout.display == "flex" and p.level_select.options == ()
    assert p.actions.layout.display == "none" and p.download_button.disabled
    p.strip.selected = 3
    p.wait(60)
    assert p.state == "ready" and "Page 4" in p.info.value and p.status.value.count("dz-card-failed") == 0


def test_without_viewer_the_thumbnail_takes_its_place(gallery, tmp_path):
    p = dz.widget(gallery.url(2), directory=tmp_path, viewer=False, **FAST).wait(60)
    assert p.viewer is None and p.state == "ready" and p.thumb.layout.display == "block" and p.thumb.value
    assert p.placeholder.layout.display == "none"
    p.region = (10, 20, 300, 200)
    assert p.region == (10, 20, 300, 200) and "300 × 200 px" in p.plan.value and "dz-problem" not in p.plan.value
    p.format_select.value = "tiff"  # said before downloading: a pyramid format saves whole levels
    assert "saves whole levels" in p.plan.value and "Whole image" in p.plan.value
    p.file_box.value = "crop.webp"
    p.format_select.value = ""
    assert "dz-problem" not in p.plan.value and "as WEBP" in p.plan.value


def test_region_fields_both_ways_with_aspect_lock(gallery, tmp_path):
    p = dz.widget(gallery.url(0), directory=tmp_path, **FAST).wait(60)
    x, y, w, h = p.region_fields.fields
    assert [f.value for f in p.region_fields.fields] == [0, 0, 1200, 900] and p.region is None
    p.viewer.region = [100, 100, 400, 200]  # drawn in the viewer
    assert [f.value for f in p.region_fields.fields] == [100, 100, 400, 200]
    w.value = 600  # typed
    assert p.viewer.region == [100, 100, 600, 200] and p.region == (100, 100, 600, 200)
    p.region_fields.lock_aspect.value = True  # 3 : 1 from now on
    w.value = 300
    assert p.viewer.region == [100, 100, 300, 100]
    h.value = 200
    assert p.viewer.region == [100, 100, 600, 200]
    p.region_fields.lock_aspect.value = False
    x.value = 1100  # past the edge: cut to the image
    assert p.viewer.region == [1100, 100, 100, 200] and w.value == 100
    x.value, w.value = 0, 1200
    y.value, h.value = 0, 900
    assert p.region is None and p.viewer.region == []  # all of it is the whole image


def test_estimates_count_the_tiles_fetched_and_respect_the_pacing(gallery, tmp_path):
    img = dz.open(gallery.url(1, "dzi-png"), **FAST)
    region = (250, 100, 700, 500)
    server = gallery.servers[1]
    server.reset_requests()
    img.save(tmp_path / "r.png", level=0, region=region, progress=False)
    assert tiles_under(img, 0, region) == server.count(is_tile) == 12  # 3 columns × ... of 256 px tiles
    assert tiles_under(img, 1, None) == img.levels[1].n_tiles
    paced = dz.open(gallery.url(1, "dzi-png"), min_interval=0.5, parallelism=8)
    est = estimate(paced, 0, None, fmt="png", measured=None, preview=None)
    assert est.seconds >= 0.5 * (paced.levels[0].n_tiles - 1) and est.size_bytes is None  # starts 0.5 s apart
    assert (est.width, est.height) == (1200, 900)


def test_copy_as_code_runs_and_gives_the_same_pixels(gallery, tmp_path, monkeypatch):
    p = dz.widget(gallery.manifest_url, directory=tmp_path, **FAST).wait(60)
    p.image_select.value = 1
    p.wait(60)
    p.level_select.value = 1
    p.region = (120, 60, 500, 300)
    p.format_select.value = "png"
    line = p.code_line()
    assert line.startswith("import dezoomify_nb as dz; dz.open(") and "image_index=1" in line
    assert "region=(120, 60, 500, 300)" in line and "level=1" in line
    assert line in p.code.value.replace("&quot;", '"')
    exec(line, {})  # noqa: S102 - the line the user copies
    given = dz.widget(image=dz.open(gallery.manifest_url, **FAST), directory=tmp_path).wait(60)
    assert f'dz.open("{gallery.manifest_url}", image_index=0)' in given.code_line()  # a collection given
    p.download().wait(60)
    assert p.state == "done" and p.result is not None
    written = read(p.result.path)
    from_code = read(tmp_path / p.result.path.name.replace("_0001", ""))
    np.testing.assert_array_equal(from_code, written)
    np.testing.assert_array_equal(written, gallery.level_image(1, "iiif2", 1)[30:180, 60:310])


@pytest.mark.parametrize("state", ["empty", "failed"])
def test_download_without_an_image_says_so(tmp_path, state):
    p = dz.widget(directory=tmp_path)
    p.download()
    assert p.state == "failed" and "Open an image first" in p.placeholder.value


def test_region_fields_share_the_aspect_lock_with_the_viewer():
    import traitlets

    from dezoomify_nb.widgets.region import RegionFields

    class Viewer(traitlets.HasTraits):  # the viewer's interface: region and region_aspect
        region = traitlets.List(traitlets.Int())
        region_aspect = traitlets.Float(0.0)

    viewer, fields = Viewer(), RegionFields()
    fields.reset((1200, 900))
    fields.link(viewer)
    viewer.region = [0, 0, 600, 300]
    fields.lock_aspect.value = True  # the box locks the viewer's drawing too
    assert viewer.region_aspect == 2.0
    fields.lock_aspect.value = False
    assert viewer.region_aspect == 0.0
    viewer.region_aspect = 1.5  # the viewer's lock button
    assert fields.lock_aspect.value
    fields.fields[2].value = 300
    assert viewer.region == [0, 0, 300, 200]
    viewer.region_aspect = 0.0
    assert not fields.lock_aspect.value


def test_the_picker_lock_is_the_viewer_lock(gallery, tmp_path):
    p = dz.widget(gallery.url(0), directory=tmp_path, **FAST).wait(60)
    p.viewer.region = [100, 100, 400, 100]
    p.region_fields.lock_aspect.value = True
    assert p.viewer.region_aspect == 4.0
    p.viewer.region_aspect = 2.0  # the viewer's lock button at another ratio: the region follows
    assert p.region_fields.lock_aspect.value and p.region == (100, 100, 400, 200)
    p.region_fields.fields[3].value = 300
    assert p.region == (100, 100, 600, 300)
    p.open_url(gallery.url(1)).wait(60)  # a new image: unlocked
    assert not p.region_fields.lock_aspect.value and p.viewer.region_aspect == 0
