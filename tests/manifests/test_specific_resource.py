"""IIIF Presentation: a painted SpecificResource is its underlying image with a region (and a noted rotation);
v2 manifests give their first sequence only unless every sequence is asked for."""

from __future__ import annotations

import json

import numpy as np
import pytest
from e2e.helpers import read

import dezoomify_nb as dz
from dezoomify_nb.dezoomers.base import Context
from dezoomify_nb.dezoomers.iiif_manifest import IIIFManifestDezoomer
from dezoomify_nb.model import Image, ImageRef

MANIFEST = IIIFManifestDezoomer()
TRANSPORTS = ["aiohttp", "httpx"]


def v3_with(body: dict) -> dict:
    return {"@context": "http://iiif.io/api/presentation/3/context.json", "id": "https://m.test/m.json",
            "type": "Manifest", "label": {"en": ["Paper"]},
            "items": [{"id": "https://m.test/c1", "type": "Canvas", "label": {"en": ["p. 1"]}, "width": 400,
                       "height": 300, "items": [{"type": "AnnotationPage", "items": [
                           {"type": "Annotation", "motivation": "painting", "body": body}]}]}]}


def source(service: str = "https://img.test/iiif/a", width: int = 1000, height: int = 700) -> dict:
    return {"id": f"{service}/full/max/0/default.jpg", "type": "Image", "width": width, "height": height,
            "service": [{"id": service, "type": "ImageService3", "profile": "level1"}]}


def found(doc: dict, **options: object) -> list[Image | ImageRef]:
    return MANIFEST.images(Context("https://m.test/m.json", {"https://m.test/m.json": json.dumps(doc).encode()},
                                   options))


@pytest.mark.parametrize(("selector", "region", "rotation"), [
    ({"type": "ImageApiSelector", "region": "100,50,400,300"}, (100, 50, 400, 300), 0),
    ({"type": "ImageApiSelector", "region": "pct:10,10,50,50"}, (100, 70, 500, 350), 0),
    ({"type": "ImageApiSelector", "rotation": "90"}, None, 90),
    ({"type": "ImageApiSelector", "region": "full", "rotation": "!180"}, None, 180),
    ({"type": "FragmentSelector", "value": "xywh=10,20,30,40"}, (10, 20, 30, 40), 0),
    ({"type": "FragmentSelector", "value": "xywh=pixel:10,20,30,40"}, (10, 20, 30, 40), 0),
    ({"type": "FragmentSelector", "value": "xywh=percent:50,50,50,50"}, (500, 350, 500, 350), 0),
    ({"type": "SvgSelector", "value": "<svg/>"}, None, 0),  # not understood: the whole image
    # hostile: nothing raised, nothing huge
    ({"type": "ImageApiSelector", "region": "9" * 400 + ",0,10,10", "rotation": "inf"}, None, 0),
    ({"type": "ImageApiSelector", "region": "1.2.3,0,10,10", "rotation": "nan"}, None, 0),
    ({"type": "FragmentSelector", "value": "xywh=0,0,0,10"}, None, 0),
])
def test_v3_specific_resource(selector: dict, region, rotation) -> None:
    (ref,) = found(v3_with({"id": "https://m.test/b1", "type": "SpecificResource", "source": source(),
                            "selector": selector}))
    assert isinstance(ref, ImageRef)
    assert ref.url == "https://img.test/iiif/a/info.json" and ref.dezoomer == "iiif"
    assert (ref.region, ref.rotation, ref.title) == (region, rotation, "Paper - p. 1")
    assert ref.size_hint == ((region[2], region[3]) if region else (1000, 700))


def test_v2_specific_resource_and_an_image_without_service() -> None:
    full = {"@id": "https://img.test/iiif/b/full/full/0/default.jpg", "@type": "dctypes:Image", "width": 800,
            "height": 600, "service": {"@context": "http://iiif.io/api/image/2/context.json",
                                       "@id": "https://img.test/iiif/b", "profile": "http://iiif.io/api/image/2/level1.json"}}
    doc = {"@context": "http://iiif.io/api/presentation/2/context.json", "@id": "https://m.test/m.json",
           "@type": "sc:Manifest", "label": "Two", "sequences": [{"@type": "sc:Sequence", "canvases": [
               {"@id": "https://m.test/c1", "@type": "sc:Canvas", "label": "a", "width": 100, "height": 100,
                "images": [{"@type": "oa:Annotation", "motivation": "sc:painting", "resource": {
                    "@type": "oa:SpecificResource", "full": full,
                    "selector": {"@type": "oa:FragmentSelector", "value": "xywh=0,300,800,300"}}}]},
               {"@id": "https://m.test/c2", "@type": "sc:Canvas", "label": "b", "width": 100, "height": 100,
                "images": [{"@type": "oa:Annotation", "motivation": "sc:painting", "resource": {
                    "@type": "oa:SpecificResource", "full": {"@id": "https://img.test/plain.png",
                                                            "@type": "dctypes:Image", "width": 64, "height": 48},
                    "selector": {"@type": "iiif:ImageApiSelector", "region": "0,0,32,24", "rotation": "270"}}}]},
           ]}]}
    ref, plain = found(doc)
    assert isinstance(ref, ImageRef) and ref.url == "https://img.test/iiif/b/info.json"
    assert ref.region == (0, 300, 800, 300) and ref.title == "Two - a"
    assert isinstance(plain, Image) and plain.levels[0].tile_url(0, 0) == "https://img.test/plain.png"
    assert (plain.region, plain.rotation) == ((0, 0, 32, 24), 270)


def test_v2_first_sequence_only_unless_all_asked() -> None:
    def seq(name: str) -> dict:
        return {"@type": "sc:Sequence", "canvases": [{
            "@id": f"https://m.test/{name}", "@type": "sc:Canvas", "label": name, "width": 10, "height": 10,
            "images": [{"@type": "oa:Annotation", "motivation": "sc:painting", "resource": {
                "@id": f"https://img.test/{name}.jpg", "@type": "dctypes:Image", "width": 10, "height": 10}}]}]}
    doc = {"@context": "http://iiif.io/api/presentation/2/context.json", "@type": "sc:Manifest", "label": "S",
           "sequences": [seq("default"), seq("alternative")]}
    assert [im.title for im in found(doc)] == ["S - default"]
    assert [im.title for im in found(doc, all_sequences=True)] == ["S - default", "S - alternative"]


def test_region_clipped_to_the_image() -> None:
    lv = found(v3_with(source()))[0]
    assert lv.region is None
    plain = {"id": "https://img.test/p.png", "type": "Image", "width": 100, "height": 80}
    for selector, region in [("xywh=90,70,50,50", (90, 70, 10, 10)), ("xywh=0,0,100,80", None),
                             ("xywh=200,0,10,10", None)]:
        (im,) = found(v3_with({"type": "SpecificResource", "source": plain,
                               "selector": {"type": "FragmentSelector", "value": selector}}))
        assert im.region == region, selector


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_region_and_rotation_of_a_served_manifest(server, tmp_path, caplog, transport) -> None:
    b = server.base_url
    body = {"type": "SpecificResource", "source": source(b + "/iiif3"),
            "selector": {"type": "ImageApiSelector", "region": "300,200,250,100", "rotation": "90"}}
    server.serve_files("/sr/", {"m.json": json.dumps(v3_with(body))}, "application/json")
    coll = dz.open(f"{b}/sr/m.json", transport=transport, min_interval=0, retry_delay=0.01)
    (image,) = list(coll)
    assert image.size_hint == (250, 100)
    assert image.region == (300, 200, 250, 100) and (image.width, image.height) == (1000, 700)
    result = image.save(tmp_path / "r.png", progress=False)
    assert (result.width, result.height) == (250, 100) and image.size_hint == (250, 100)
    np.testing.assert_array_equal(read(result.path), server.level_image("iiif3", 0)[200:300, 300:550])
    assert "turns this image by 90° clockwise; saved as served" in caplog.text
    whole = image.save(tmp_path / "w.png", region=(0, 0, 1000, 700), progress=False)  # asked for: all of it
    assert (whole.width, whole.height) == (1000, 700)
