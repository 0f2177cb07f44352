"""The picker driven from Python (no browser): the same objects the notebook shows, against loopback servers."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from e2e.helpers import read
from PIL import Image

import dezoomify_nb as dz
from dezoomify_nb.testing import TileServer, make_test_image
from dezoomify_nb.testing.gallery import SampleGallery
from dezoomify_nb.widgets import ImagePicker
from dezoomify_nb.widgets.bar import ProgressBar, duration

FAST = {"min_interval": 0, "retry_delay": 0.01}


def png_rgb(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def mean_rgb(a: np.ndarray) -> np.ndarray:
    return a.reshape(-1, a.shape[-1])[:, :3].astype(float).mean(axis=0)


def status_text(p: ImagePicker) -> str:
    return p.status.value


def test_manifest_pages_levels_and_thumbnails(gallery, tmp_path):
    p = dz.widget(gallery.manifest_url, directory=tmp_path, **FAST).wait(60)
    assert isinstance(p, ImagePicker) and p.collection is not None
    assert [label for label, _ in p.image_select.options] == [
        "1. Sample gallery - Page 1", "2. Sample gallery - Page 2", "3. Sample gallery - Page 3"]
    assert p.image_select.layout.display == "flex"
    labels = [label for label, _ in p.level_select.options]
    assert labels[0] == "0: 1200 × 900 px · 1.08 MP · 20 tiles" and labels[-1].endswith("1 tile")
    assert "Ready" in status_text(p) and "Sample gallery - Page 1" in p.info.value and p.state == "ready"
    # the viewer shows the image: no second, 256 px copy of it (the thumbnail is kept for viewer=False)
    assert p.viewer is not None and p.viewer.layout.display == "flex" and p.thumb.layout.display == "none"
    # the thumbnail: from the smallest level ≥ 256 px (300 × 225 here), scaled to fit 256 px
    thumb = png_rgb(p.thumb.value)
    assert thumb.shape == (192, 256, 3)
    expected = np.asarray(Image.fromarray(gallery.level_image(0, "iiif2", 2)).resize((256, 192), Image.BOX))
    assert np.abs(thumb.astype(int) - expected.astype(int)).mean() < 3
    assert p.file_box.value == "Sample_gallery_Page_1.jpg"
    assert "thumbnail" in p.timings

    p.image_select.value = 2
    p.wait(60)
    assert p.image is not None and p.image.title == "Sample gallery - Page 3"
    assert np.abs(mean_rgb(png_rgb(p.thumb.value)) - mean_rgb(gallery.image(2))).max() < 6
    assert p.file_box.value == "Sample_gallery_Page_3.jpg"
    assert p.viewer is not None and p.viewer.levels[0] == [1200, 900, 256, 256]


def test_download_level_then_region(gallery, tmp_path):
    p = dz.widget(gallery.url(1, "dzi-png"), directory=tmp_path, viewer=True, **FAST).wait(60)
    assert p.collection is None and p.image_select.layout.display == "none"
    p.level_select.value = 1
    assert p.file_box.value.endswith(".jpg")
    p.format_select.value = "png"
    assert p.file_box.value.endswith(".png")
    p.download().wait(60)
    assert p.result is not None and p.path == tmp_path / p.result.path.name
    np.testing.assert_array_equal(read(p.path), gallery.level_image(1, "dzi-png", 1))
    assert p.progress.bar.value == p.progress.bar.max == p.result.tiles
    assert p.progress.text.value.startswith(f"{p.result.tiles} / {p.result.tiles} tiles")
    assert p.state == "done" and p.progress.layout.display == "none"  # the card says it all
    assert "Saved" in status_text(p) and "to_dask(1)" in status_text(p) and f'href="{p.path.name}"' not in \
        status_text(p)  # the link is relative to the kernel's folder, not to the picker's directory
    assert "data:image/png;base64," in status_text(p)  # a preview of the file
    assert p.file_box.value != p.path.name  # the next proposal does not overwrite it

    p.region = (100, 50, 300, 200)
    assert [f.value for f in p.region_fields.fields] == [100, 50, 300, 200] and p.viewer.region == [100, 50, 300, 200]
    assert "150 × 100 px" in p.plan.value  # at level 1
    p.level_select.value = 0
    p.file_box.value = "crop.png"
    p.download().wait(60)
    np.testing.assert_array_equal(read(tmp_path / "crop.png"), gallery.level_image(1, "dzi-png", 0)[50:250, 100:400])
    assert p.to_dask().shape == (900, 1200, 3)

    p.file_box.value = "crop.png"  # exists: a plain error, nothing overwritten
    p.download().wait(60)
    assert "exists" in status_text(p) and "Traceback" not in status_text(p) and p.state == "failed"
    assert p.viewer.layout.display == "flex"  # a failed download keeps the image on screen
    p.region_fields.whole.click()
    assert p.region is None and p.viewer.region == [] and [f.value for f in p.region_fields.fields] == [0, 0, 1200, 900]


def test_cancel_button_stops_and_leaves_nothing(tmp_path):
    with SampleGallery(1, width=2048, height=2048, tile_size=64, latency=0.02) as slow:
        p = dz.widget(slow.url(0, "dzi-jpg"), directory=tmp_path, viewer=False, parallelism=2,
                      min_interval=0).wait(60)
        p.file_box.value = "big.png"
        p.download()
        deadline = time.monotonic() + 60
        while p.progress.done < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert p.downloading and not p.cancel_button.disabled
        p.cancel_button.click()
        p.wait(60)
    assert "cancelled" in status_text(p) and not p.downloading and p.state == "cancelled"
    assert p.progress.done < p.progress.total
    assert p.progress.layout.display == "none" and "tiles" not in status_text(p)  # no stale "32 / 48 tiles · ETA"
    assert not (tmp_path / "big.png").exists() and not any(tmp_path.iterdir())
    assert p.cancel_button.disabled and not p.download_button.disabled


def test_errors_are_plain_words(gallery, tmp_path):
    p = dz.widget(gallery.servers[0].base_url + "/nothing/here.json", directory=tmp_path, **FAST).wait(60)
    text = p.placeholder.value  # no image: the error takes the viewer's place, the viewer is hidden
    assert p.state == "failed" and p.viewer.layout.display == "none" and p.status.value == ""
    assert "dz-card-failed" in text and "Traceback" not in text and "<details" in text and "--" not in text
    assert p.image is None and p.download_button.disabled and p.actions.layout.display == "none"
    p.download()
    assert "Open an image first" in p.placeholder.value
    p.headers_box.value = "Referer https://museum.example/"  # no colon
    p.open_url(gallery.url(0)).wait(60)
    text = p.placeholder.value
    assert "is not of the form &#x27;Name: value&#x27;" in text and "Unexpected" not in text


def test_headers_box_is_used(tmp_path):
    with TileServer(make_test_image(600, 400), require_header=("Referer", "https://museum.example/")) as server:
        denied = dz.widget(server.url("iiif2"), directory=tmp_path, **FAST).wait(60)
        assert "403" in denied.placeholder.value and "Referer" in denied.placeholder.value
        assert "HTTP headers" in denied.placeholder.value and "-H" not in denied.placeholder.value
        ok = dz.widget(server.url("iiif2"), headers={"Referer": "https://museum.example/"}, directory=tmp_path,
                       **FAST).wait(60)
        assert ok.headers_box.value == "Referer: https://museum.example/"
        assert "Ready" in status_text(ok) and ok.thumb.value


def test_progress_bar_text():
    bar = ProgressBar()
    bar.start()
    bar(10, 0, 10)
    assert bar.bar.value == 10 and bar.text.value.startswith("10 / 10 tiles")
    bar.start()
    bar(3, 1, 10)  # the first update shows at once
    bar.finish("success")
    assert bar.bar.value == 4 and "1 failed" in bar.text.value and bar.bar.bar_style == "warning"
    assert [duration(s) for s in (4.2, 125, 3725)] == ["4 s", "2 min 05 s", "1 h 02 min"]


def test_rich_display_outside_a_kernel(gallery):
    book = dz.open(gallery.manifest_url, **FAST)
    gallery.servers[0].reset_requests()
    html = book._repr_html_()
    assert "3 images" in html and "Sample gallery - Page 2" in html and "1200 × 900" in html
    assert gallery.servers[0].count("info.json") == 0  # listing a collection fetches nothing
    bundle = book._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html"}  # no kernel here: no widget
    img = book[0]
    page = img._repr_html_()
    assert "Sample gallery - Page 1" in page and "data:image/png;base64," in page and "<table" in page
    assert page.count("<tr>") == 1 + len(img.levels)


@pytest.mark.parametrize("bad", ["javascript:alert(1)", "<script>x</script>"])
def test_html_escapes_what_servers_say(bad):
    from dezoomify_nb.widgets.html import _link

    assert "<script>" not in _link(bad) and "href" not in _link(bad)
