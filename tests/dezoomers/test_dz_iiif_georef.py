"""IIIF Georeference Annotations (Allmaps): the GCPs and transformation read into Image.georef, from a
standalone annotation page and from a manifest's canvas (GDAL warps the result: tests/conformance)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import dezoomify_nb as dz
from dezoomify_nb.dezoomers.base import Context
from dezoomify_nb.dezoomers.iiif_georef import IIIFGeorefDezoomer, gcps_of, parse_annotation, warp_of
from dezoomify_nb.errors import MetadataError, WrongDezoomer
from dezoomify_nb.model import GeoRef
from dezoomify_nb.testing.tileserver import Response

DATA = Path(__file__).parents[1] / "data" / "iiif_georef"
#: the fixture's GCPs in the real 1000×700 pixels (declared there as 2000×1400)
GCPS = ((0.0, 0.0, 4.0, 52.0), (1000.0, 0.0, 5.0, 51.9), (0.0, 700.0, 4.14, 51.44), (1000.0, 700.0, 5.14, 51.34),
        (500.0, 350.0, 4.57, 51.67))


def fixture_text(server, name: str) -> str:
    return (DATA / name).read_text().replace("{{SERVICE}}", server.base_url + "/iiif3").replace(
        "{{BASE}}", server.base_url + "/georef")


def served(server, name: str) -> str:
    body = fixture_text(server, name).encode()
    server.add_route(f"/georef/{name}", lambda srv, path, headers: Response(200, body, "application/ld+json"))
    return f"{server.base_url}/georef/{name}"


def test_annotation_page_of_an_image_service(server):
    images = dz.open(served(server, "annotation_page.json"))
    assert len(images) == 1  # the commenting annotation is not a georeference
    image = images[0]
    assert image.title == "Test atlas - Sheet 1"
    assert (image.width, image.height) == (1000, 700)
    assert image.image.georef == GeoRef("EPSG:4326", None, GCPS, "polynomial1")


def test_manifest_with_inline_annotations(server):
    images = dz.open(served(server, "manifest_v3.json"))
    assert len(images) == 2
    first = images[0].image.georef  # the annotation targets the 2000×1400 canvas
    assert first == GeoRef("EPSG:4326", None, tuple(GCPS[i] for i in (0, 1, 2, 4)), "thinPlateSpline")
    assert images[1].image.georef is None


def parse_doc(doc) -> list:
    ctx = Context("http://h/anno.json", {"http://h/anno.json": json.dumps(doc).encode()})
    return IIIFGeorefDezoomer().images(ctx)


def test_what_is_not_a_georeference():
    with pytest.raises(WrongDezoomer):
        parse_doc({"type": "Manifest", "items": []})
    with pytest.raises(WrongDezoomer):  # the word, but not the motivation
        parse_doc({"type": "Annotation", "motivation": "commenting", "body": "georeferencing"})
    page = json.loads((DATA / "annotation_page.json").read_text().replace("{{SERVICE}}", "http://h/iiif/a")
                      .replace("{{BASE}}", "http://h"))
    anno = page["items"][0]
    anno["body"]["features"] = anno["body"]["features"][:2]  # two GCPs cannot place a map
    with pytest.raises(MetadataError):
        parse_doc(anno)
    canvas_target = {**anno, "target": {"type": "SpecificResource", "source": {"id": "http://h/c", "type": "Canvas"}}}
    with pytest.raises(MetadataError):  # alone, a canvas target has no image to fetch
        parse_doc(canvas_target)


def test_standalone_annotation_and_its_scale():
    page = json.loads((DATA / "annotation_page.json").read_text().replace("{{SERVICE}}", "http://h/iiif/a")
                      .replace("{{BASE}}", "http://h"))
    (ref,) = parse_doc(page["items"][0])
    assert ref.url == "http://h/iiif/a/info.json" and ref.dezoomer == "iiif"
    assert (ref.width, ref.height) == (2000, 1400)  # declared: scaled to the real size once resolved
    assert ref.georef.gcps[1] == (2000.0, 0.0, 5.0, 51.9)


def test_gcps_and_warp_are_checked():
    def feature(coords, point, kind="Point"):
        return {"type": "Feature", "properties": {"resourceCoords": coords},
                "geometry": {"type": kind, "coordinates": point}}

    body = {"features": [feature([1, 2], [3.5, 50.0]), feature([1, "2"], [3, 50]), feature([1, 2], [3, 95]),
                         feature([float("nan"), 2], [3, 50]), feature([1, 2], [3, 50], "LineString"),
                         feature([1, 2, 3], [3, 50]), "junk", feature([True, 2], [3, 50])]}
    assert gcps_of(body) == ((1.0, 2.0, 3.5, 50.0),)
    assert warp_of({"transformation": {"type": "polynomial", "options": {"order": 3}}}) == "polynomial3"
    assert warp_of({"transformation": {"type": "polynomial"}}) == "polynomial1"
    assert warp_of({"transformation": {"type": "thinPlateSpline"}}) == "thinPlateSpline"
    assert warp_of({"transformation": {"type": "projective"}}) == ""
    assert parse_annotation({"type": "Annotation", "motivation": "georeferencing", "target": "file:///etc/x",
                             "body": body}) is None


def test_allmaps_first_version():
    """Allmaps' version 0: the service in target.service, the size in the mask's SVG, pixelCoords, no motivation."""
    anno = {"type": "Annotation",
            "target": {"source": "http://h/iiif/a/full/full/0/default.jpg",
                       "service": [{"@id": "http://h/iiif/a", "type": "ImageService2"}],
                       "selector": {"type": "SvgSelector",
                                    "value": '<svg width="2000" height="1400"><polygon points="0,0 9,0 9,9" /></svg>'}},
            "body": {"type": "FeatureCollection", "features": [
                {"type": "Feature", "properties": {"pixelCoords": list(p[:2])},
                 "geometry": {"type": "Point", "coordinates": list(p[2:])}}
                for p in ((0, 0, 4.0, 52.0), (2000, 0, 5.0, 51.9), (0, 1400, 4.14, 51.44))]}}
    (ref,) = parse_doc(anno)
    assert ref.url == "http://h/iiif/a/info.json" and (ref.width, ref.height) == (2000, 1400)
    assert ref.georef == GeoRef("EPSG:4326", None, ((0.0, 0.0, 4.0, 52.0), (2000.0, 0.0, 5.0, 51.9),
                                                     (0.0, 1400.0, 4.14, 51.44)))
    del anno["body"]["features"][0]["properties"]["pixelCoords"]  # no pixel coordinates: not a georeference
    anno["body"]["features"][0]["properties"]["label"] = "x"
    with pytest.raises(WrongDezoomer):
        parse_doc(anno)
