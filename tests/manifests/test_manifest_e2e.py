"""Manifests end to end: the loopback server's IIIF images listed by served v2/v3 manifests."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from e2e.helpers import assert_same_pixels, read
from PIL import Image as PILImage

import dezoomify_nb as dz
from dezoomify_nb.cli import main

FAST = ["-i", "0ms", "--retry-delay", "10ms"]


def v2_manifest(base: str, canvases: list[tuple[str, str]]) -> dict:
    """A British Library-like v2 manifest; canvases are (label, image service URL)."""
    return {
        "@context": "http://iiif.io/api/presentation/2/context.json",
        "@id": f"{base}/manifest.json", "@type": "sc:Manifest", "label": "Cotton MS Nero D IV",
        "metadata": [{"label": "Title", "value": "Gospel-book, Lindisfarne Gospels"}],
        "sequences": [{"@type": "sc:Sequence", "canvases": [
            {"@id": f"{base}/canvas/{i}", "@type": "sc:Canvas", "label": label, "width": 1000, "height": 700,
             "images": [{"@type": "oa:Annotation", "motivation": "sc:painting", "resource": {
                 "@id": f"{service}/full/full/0/default.jpg", "@type": "dctypes:Image",
                 "service": {"@context": "http://iiif.io/api/image/2/context.json", "@id": service,
                             "profile": "http://iiif.io/api/image/2/level2.json"}}}]}
            for i, (label, service) in enumerate(canvases)]}],
    }


def v3_manifest(base: str, bodies: list[dict]) -> dict:
    return {
        "@context": "http://iiif.io/api/presentation/3/context.json",
        "id": f"{base}/manifest3.json", "type": "Manifest", "label": {"en": ["Book 1"]},
        "items": [{"id": f"{base}/c{i}", "type": "Canvas", "label": {"none": [f"Page {i + 1}"]},
                   "width": 1000, "height": 700,
                   "items": [{"type": "AnnotationPage", "items": [
                       {"type": "Annotation", "motivation": "painting", "body": body}]}]}
                  for i, body in enumerate(bodies)],
    }


@pytest.fixture
def manifests(server):
    """Serve a v2 manifest (iiif2, iiif3, iiif2), a v3 one (iiif3 service, a plain PNG) and a collection."""
    b = server.base_url
    png = io.BytesIO()
    PILImage.fromarray(server.level_image("iiif2", 1)).save(png, format="PNG")
    v2 = v2_manifest(b + "/m", [("f. 1r", b + "/iiif2"), ("f. 1v", b + "/iiif3/"), ("f. 2r", b + "/iiif2")])
    v3 = v3_manifest(b + "/m", [
        {"id": b + "/iiif3/full/max/0/default.jpg", "type": "Image",
         "service": [{"id": b + "/iiif3", "type": "ImageService3", "profile": "level1"}]},
        {"id": "plain.png", "type": "Image", "format": "image/png", "width": 500, "height": 350},
    ])
    coll = {"type": "Collection", "label": "all", "items": [
        {"id": "manifest.json", "type": "Manifest"}, {"id": "manifest3.json", "type": "Manifest"}]}
    base = server.serve_files("/m/", {"manifest.json": json.dumps(v2), "manifest3.json": json.dumps(v3),
                                      "collection.json": json.dumps(coll), "plain.png": png.getvalue()})
    server.reset_requests()
    return base


def test_open_gives_a_lazy_collection(server, manifests):
    book = dz.open(f"{manifests}/manifest.json", retry_delay=0.01)
    assert isinstance(book, dz.ImageCollection)
    assert len(book) == 3
    assert server.count("info.json") == 0  # titles are known without fetching any image metadata
    assert book.titles == ["Gospel-book, Lindisfarne Gospels - f. 1r", "Gospel-book, Lindisfarne Gospels - f. 1v",
                           "Gospel-book, Lindisfarne Gospels - f. 2r"]
    assert book.describe()[0] == "[0] Gospel-book, Lindisfarne Gospels - f. 1r (1000 x 700 pixels)"
    assert not book[1].resolved and "not resolved" in repr(book[1])
    assert [lv.size for lv in book[1].levels] == server.level_sizes("iiif3")
    assert book[1].resolved and server.count("info.json") == 1
    assert book[1].levels and server.count("info.json") == 1  # cached
    assert book[-1] is book[2] and book[0:2] == [book[0], book[1]]
    assert [im.title for im in book] == book.titles
    assert book.pick(99) is book[2]


def test_pixels_of_each_canvas(server, manifests):
    book = dz.open(f"{manifests}/manifest.json", retry_delay=0.01)
    np.testing.assert_array_equal(book[0].to_dask(1).compute(), server.level_image("iiif2", 1))
    np.testing.assert_array_equal(book[1].to_dask(0)[100:300, 200:700].compute(),
                                  server.level_image("iiif3", 0)[100:300, 200:700])


def test_v3_service_and_plain_image(server, manifests, tmp_path):
    book = dz.open(f"{manifests}/manifest3.json", retry_delay=0.01)
    assert book.titles == ["Book 1 - Page 1", "Book 1 - Page 2"]
    assert book[1].resolved  # a plain image needs no metadata
    np.testing.assert_array_equal(book[1].to_dask().compute(), server.level_image("iiif2", 1))
    result = book[0].save(directory=tmp_path, progress=False, largest=True)
    assert result.path.name == "Book_1_Page_1.jpg"
    assert_same_pixels(read(result.path), server.level_image("iiif3", 0), "dzi-jpg")


def test_collection_and_image_index(server, manifests):
    everything = dz.open(f"{manifests}/collection.json", retry_delay=0.01)
    assert len(everything) == 5
    one = dz.open(f"{manifests}/collection.json", image_index=3, retry_delay=0.01)
    assert one.title == "Book 1 - Page 1" and one.width == 1000
    last = dz.open(f"{manifests}/manifest.json", image_index=42, retry_delay=0.01)
    assert last.title.endswith("f. 2r")
    assert len(dz.open_all(f"{manifests}/manifest.json")) == 3


def test_forced_and_auto_dezoomer(server, manifests):
    url = f"{manifests}/manifest.json"
    assert dz.open(url, dezoomer="iiif_manifest").dezoomer == "iiif_manifest"
    assert dz.open(url).dezoomer == "iiif_manifest"
    with pytest.raises(dz.DezoomifyError):
        dz.open(server.url("iiif2"), dezoomer="iiif_manifest")
    # a single-image source is unchanged
    assert type(dz.open(server.url("iiif2"))) is dz.ZoomableImage


def run(capsys, *args):
    code = main([*FAST, *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_image_index(server, manifests, capsys, tmp_path):
    code, _, err = run(capsys, "--largest", "--image-index", 1, f"{manifests}/manifest.json", tmp_path / "p.png")
    assert code == 0, err
    assert_same_pixels(read(tmp_path / "p.png"), server.level_image("iiif3", 0), "iiif3")
    assert server.count("/iiif2/info.json") == 0  # the other canvases were never resolved


def test_cli_not_a_terminal_takes_the_first_with_a_note(server, manifests, capsys, tmp_path, monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: False, raising=False)
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "--largest", f"{manifests}/manifest.json")
    assert code == 0, err
    assert "Found 3 images" in err and "--image-index" in err
    # the default name is the compact title: safe on every OS
    assert (tmp_path / "Gospel-book_Lindisfarne_Gospels_f_1r.jpg").exists()
    code, _, err = run(capsys, "--largest", f"{manifests}/manifest.json")
    assert (tmp_path / "Gospel-book_Lindisfarne_Gospels_f_1r_0001.jpg").exists()


def test_cli_interactive_image_picker(server, manifests, capsys, tmp_path, monkeypatch):
    fake = io.StringIO("7\n0\n")
    fake.isatty = lambda: True
    monkeypatch.setattr("sys.stdin", fake)
    code, _, err = run(capsys, "--largest", f"{manifests}/manifest3.json", tmp_path / "x.png")
    assert code == 0, err
    assert "[0] Book 1 - Page 1 (1000 x 700 pixels)" in err
    assert "[1] Book 1 - Page 2 (500 x 350 pixels)" in err
    assert "'7' is not a valid number: enter a number from 0 to 1" in err
    assert_same_pixels(read(tmp_path / "x.png"), server.level_image("iiif3", 0), "iiif3")
    fake2 = io.StringIO("1\n")
    fake2.isatty = lambda: True
    monkeypatch.setattr("sys.stdin", fake2)
    code, _, err = run(capsys, "--largest", f"{manifests}/manifest3.json", tmp_path / "y.png")
    assert code == 0, err
    np.testing.assert_array_equal(read(tmp_path / "y.png"), server.level_image("iiif2", 1))
