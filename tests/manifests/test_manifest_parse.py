"""IIIF Presentation manifests and collections, parsed offline from captured-style documents."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dezoomify_nb.dezoomers.base import Context
from dezoomify_nb.dezoomers.iiif_manifest import (
    MAX_IMAGES,
    IIIFManifestDezoomer,
    image_title,
    label_text,
    metadata_title,
    pick_service,
)
from dezoomify_nb.errors import FetchError, MetadataError, NeedsData, WrongDezoomer
from dezoomify_nb.model import Image, ImageRef

DATA = Path(__file__).resolve().parent.parent / "data" / "iiif_manifest"
DZ = IIIFManifestDezoomer()


def parse(url: str, pages: dict[str, bytes | FetchError]) -> list[Image | ImageRef]:
    """Run the dezoomer like the driver: answer NeedsData from ``pages`` (missing → 404)."""
    fetched: dict[str, bytes | FetchError] = {url: pages[url]}
    for _ in range(10):
        try:
            return DZ.images(Context(url, fetched))
        except NeedsData as need:
            for u in need.urls:
                fetched[u] = pages.get(u, FetchError(u, "HTTP 404", status=404))
    raise AssertionError("too many rounds")


def load(name: str, url: str) -> list[Image | ImageRef]:
    return parse(url, {url: (DATA / name).read_bytes()})


BL = "https://api.bl.uk/metadata/iiif/ark:/81055/vdc_100022545251.0x000002/manifest.json"


def test_british_library_v2():
    found = load("bl_v2_lindisfarne.json", BL)
    assert all(isinstance(r, ImageRef) for r in found)
    assert [r.title for r in found] == [
        "Gospel-book, Lindisfarne Gospels - f. 1r",
        "Gospel-book, Lindisfarne Gospels - f. 1v",
        "Gospel-book, Lindisfarne Gospels - f. 2r",
    ]
    base = "https://api.bl.uk/image/iiif/ark:/81055/vdc_100022545252.0x00000"
    # service as an object, as a list with a trailing slash, and already ending in info.json (oa:Choice default)
    assert [r.url for r in found] == [f"{base}{i}/info.json" for i in (1, 2, 3)]
    assert all(r.dezoomer == "iiif" for r in found)
    assert found[0].size_hint == (5264, 7016)  # from the resource
    assert found[1].size_hint == (5248, 7008)  # from the canvas


def test_bodleian_v3():
    url = "https://iiif.bodleian.ox.ac.uk/iiif/manifest/0b9e4c4c-1e4a-4c8f-9d3a-2b1e0f6c1a11.json"
    found = load("bodleian_v3.json", url)
    assert len(found) == 3  # the supplementing annotation is not an image
    first, second, third = found
    assert isinstance(first, ImageRef) and isinstance(second, ImageRef)
    # no metadata Title: the manifest label; ImageService3 preferred over ImageService2
    assert first.title == "MS. Bodl. 264: The Romance of Alexander - fol. 1r"
    assert first.url == "https://iiif.bodleian.ox.ac.uk/iiif/image3/a1b2c3/info.json"
    # the "en" label wins over the first language; @id/@type; body as a list; size from the service
    assert second.title == "MS. Bodl. 264: The Romance of Alexander - fol. 1v"
    assert second.url == "https://iiif.bodleian.ox.ac.uk/iiif/image/d4e5f6/info.json"
    assert second.size_hint == (5990, 8390)
    # a body without a service: one level whose single tile is the image file, sized by the body
    assert isinstance(third, Image)
    assert third.title == "MS. Bodl. 264: The Romance of Alexander"
    (level,) = third.levels
    assert (level.width, level.height, level.n_tiles) == (600, 450, 1)
    assert level.tile_url(0, 0) == "https://iiif.bodleian.ox.ac.uk/iiif/thumbs/binding.jpg"


def test_gallica_v2_metadata_title_language_list_and_relative_service():
    url = "https://gallica.bnf.fr/iiif/ark:/12148/btv1b8490076p/manifest.json"
    first, second = load("gallica_v2.json", url)
    assert first.title == "Cassini map of France - NP"
    assert first.url == "https://gallica.bnf.fr/iiif/ark:/12148/btv1b8490076p/f1/info.json"
    assert second.title == "Cassini map of France - Feuille 2 & légende"
    assert second.url == "https://gallica.bnf.fr/iiif/ark:/12148/btv1b8490076p/f2/info.json"
    assert second.size_hint == (9728, 6704)


def test_collections_fetch_their_manifests_at_each_depth():
    book = (DATA / "bodleian_v3.json").read_bytes()
    sub = json.dumps({"type": "Collection", "items": [
        {"id": "../gallica/manifest.json", "type": "Manifest"},
        {"id": "https://example.org/iiif/book1/manifest", "type": "Manifest"},  # already seen: once only
    ]}).encode()
    pages = {
        "https://example.org/iiif/collection/top": (DATA / "collection_v3.json").read_bytes(),
        "https://example.org/iiif/book1/manifest": book,
        "https://example.org/iiif/sub/collection": sub,
        "https://example.org/iiif/gallica/manifest.json": (DATA / "gallica_v2.json").read_bytes(),
    }
    found = parse("https://example.org/iiif/collection/top", pages)
    assert [f.title.split(" - ")[0] for f in found] == ["MS. Bodl. 264: The Romance of Alexander"] * 3 + [
        "Cassini map of France"] * 2


def test_v2_collection_skips_a_manifest_that_cannot_be_fetched(caplog):
    pages = {
        "https://example.org/iiif/collection/v2": (DATA / "collection_v2.json").read_bytes(),
        "https://example.org/iiif/book1/manifest": (DATA / "gallica_v2.json").read_bytes(),
    }
    found = parse("https://example.org/iiif/collection/v2", pages)
    assert len(found) == 2
    assert "missing/manifest skipped: HTTP 404" in caplog.text  # why it was skipped


def test_collection_cycles_and_depth_are_bounded():
    loop = {"type": "Collection", "items": [{"id": "https://x.org/c", "type": "Collection"}]}
    with pytest.raises(MetadataError, match="paints no image"):
        parse("https://x.org/c", {"https://x.org/c": json.dumps(loop).encode()})


def test_image_cap():
    canvas = {"type": "Canvas", "width": 10, "height": 10, "items": [{"type": "AnnotationPage", "items": [
        {"type": "Annotation", "motivation": "painting",
         "body": {"id": "https://x.org/i.jpg", "type": "Image", "service": [{"id": "https://x.org/s"}]}}]}]}
    doc = {"type": "Manifest", "label": "big", "items": [canvas] * (MAX_IMAGES + 5)}
    found = parse("https://x.org/m", {"https://x.org/m": json.dumps(doc).encode()})
    assert len(found) == MAX_IMAGES


@pytest.mark.parametrize(
    "data",
    [b'{"@context": "http://iiif.io/api/image/2/context.json", "width": 10, "height": 10}',
     b"<html><body>not json</body></html>", b"[1, 2, 3]", b'{"type": "Canvas"}'],
)
def test_not_a_manifest(data):
    with pytest.raises(WrongDezoomer):
        DZ.images(Context("https://x.org/m", {"https://x.org/m": data}))


def test_templates_and_image_files_are_rejected_without_fetching():
    for url in ("https://x.org/t_{{X}}_{{Y}}.jpg", "https://x.org/a.jpg", "https://x.org/ImageProperties.xml"):
        with pytest.raises(WrongDezoomer):
            DZ.images(Context(url, {}))


def test_manifest_without_images_is_an_error():
    doc = {"type": "Manifest", "label": "empty", "items": []}
    with pytest.raises(MetadataError, match="paints no image"):
        parse("https://x.org/m", {"https://x.org/m": json.dumps(doc).encode()})


def test_direct_image_without_any_size_is_skipped(caplog):
    doc = {"@type": "sc:Manifest", "sequences": [{"canvases": [
        {"label": "a", "images": [{"resource": {"@id": "https://x.org/a.jpg", "@type": "dctypes:Image"}}]},
        {"label": "b", "width": 20, "height": 10,
         "images": [{"resource": {"@id": "b.jpg?x={1}", "@type": "dctypes:Image"}}]}]}]}
    (only,) = parse("https://x.org/m/manifest.json", {"https://x.org/m/manifest.json": json.dumps(doc).encode()})
    assert "has no size" in caplog.text
    assert isinstance(only, Image) and only.title == "b"
    assert only.levels[0].tile_url(0, 0) == "https://x.org/m/b.jpg?x={1}"  # braces kept literally


@pytest.mark.parametrize(
    "label,expected",
    [("plain", "plain"), ({"en": ["English"], "fr": ["Français"]}, "English"),
     ({"fr": ["Français"], "none": ["neutral"]}, "neutral"), ({"de": ["", "x"], "fr": ["Français"]}, "Français"),
     ({"en-GB": ["British"]}, "British"), ([{"@value": "un", "@language": "fr"}, {"@value": "one", "@language": "en"}],
                                          "one"),
     (["a", "b"], "a"), ({"@value": "v"}, "v"), ("  <b>bold</b>  text ", "bold text"), ("", None), (None, None),
     ({}, None), (42, None)],
)
def test_label_text(label, expected):
    assert label_text(label) == expected


def test_metadata_title_and_image_title():
    assert metadata_title({"metadata": [{"label": {"en": ["TITLE"]}, "value": {"none": ["T"]}}]}) == "T"
    assert metadata_title({"metadata": [{"label": "Date", "value": "1"}]}) is None
    assert metadata_title({"metadata": "junk"}) is None
    assert image_title("Book", "p. 1") == "Book - p. 1"
    assert image_title("Book p. 1", "P. 1") == "Book p. 1"
    assert image_title("Book", "book") == "Book"
    assert image_title("Bookp. 1", "p. 1") == "Bookp. 1 - p. 1"  # not a whole word at the end
    laocoon = "Laocöon, geolocated sculpture and painting."  # the Cookbook's recipe 0240: two canvases
    assert [image_title(laocoon, c) for c in ("Sculpture", "Painting")] == [f"{laocoon} - Sculpture",
                                                                          f"{laocoon} - Painting"]
    assert image_title(None, "p. 1") == "p. 1"
    assert image_title("Book", None) == "Book"


def test_pick_service_order():
    v2 = {"@id": "a", "@context": "http://iiif.io/api/image/2/context.json"}
    auth = {"@id": "login", "profile": "http://iiif.io/api/auth/1/login"}
    assert pick_service([auth, v2]) is v2
    assert pick_service([{"id": "x", "type": "ImageService2"}, {"id": "y", "type": "ImageService3"}])["id"] == "y"
    assert pick_service([{"id": "x", "type": "Other"}, {"id": "y", "type": "ImageService1"}])["id"] == "y"
    assert pick_service([{"id": ""}, {"id": "z"}])["id"] == "z"
    assert pick_service("https://x.org/s") == {"id": "https://x.org/s"}
    assert pick_service(None) is None


def _v3(body: dict) -> dict:
    return {"@context": "http://iiif.io/api/presentation/3/context.json", "id": "https://m.test/r/manifest.json",
            "type": "Manifest", "label": {"en": ["Region"]},
            "items": [{"id": "https://m.test/r/canvas/1", "type": "Canvas", "width": 800, "height": 600,
                       "items": [{"id": "https://m.test/r/page/1", "type": "AnnotationPage", "items": [
                           {"id": "https://m.test/r/anno/1", "type": "Annotation", "motivation": "painting",
                            "body": body, "target": "https://m.test/r/canvas/1"}]}]}]}


SERVICE3 = [{"id": "https://img.test/iiif/3/page", "type": "ImageService3", "profile": "level1"}]


@pytest.mark.parametrize(("body", "region", "rotation"), [
    # v3 SpecificResource with an ImageApiSelector region (the shape of the Cookbook's region recipe)
    ({"id": "https://m.test/r/body/1", "type": "SpecificResource",
     "source": {"id": "https://img.test/iiif/3/page/full/max/0/default.jpg", "type": "Image", "width": 3000,
                "height": 4000, "service": SERVICE3},
     "selector": {"type": "ImageApiSelector", "region": "100,200,800,600"}}, (100, 200, 800, 600), 0),
    # rotation (the image-rotation recipe) and a FragmentSelector
    ({"type": "SpecificResource", "source": {"id": "https://img.test/x.jpg", "type": "Image", "width": 3000,
                                            "height": 4000, "service": SERVICE3},
     "selector": [{"type": "ImageApiSelector", "rotation": "90"}, {"type": "FragmentSelector", "value": "xywh=1,2,3,4"}]},
     (1, 2, 3, 4), 90),
])
def test_v3_specific_resource_paints_its_source(body, region, rotation):
    url = "https://m.test/r/manifest.json"
    (ref,) = parse(url, {url: json.dumps(_v3(body)).encode()})
    assert isinstance(ref, ImageRef)
    assert ref.url == "https://img.test/iiif/3/page/info.json"
    assert (ref.region, ref.rotation) == (region, rotation)
    assert (ref.width, ref.height) == region[2:]  # the size hint: the part painted


def test_v2_specific_resource_full_and_first_sequence_only():
    def canvas(n: int, resource: dict) -> dict:
        return {"@id": f"https://m.test/v2/canvas/{n}", "@type": "sc:Canvas", "label": f"p{n}", "width": 100,
                "height": 100, "images": [{"@type": "oa:Annotation", "motivation": "sc:painting", "resource": resource,
                                           "on": f"https://m.test/v2/canvas/{n}"}]}

    def service(name: str) -> dict:
        return {"@context": "http://iiif.io/api/image/2/context.json", "@id": f"https://img.test/iiif/2/{name}",
                "profile": "http://iiif.io/api/image/2/level1.json"}

    specific = {"@type": "oa:SpecificResource",
                "full": {"@id": "https://img.test/iiif/2/a/full/full/0/default.jpg", "@type": "dctypes:Image",
                         "service": service("a")},
                "selector": {"@type": "iiif:ImageApiSelector", "region": "50,50,1250,1850"}}
    plain = {"@id": "https://img.test/iiif/2/b/full/full/0/default.jpg", "@type": "dctypes:Image",
             "service": service("b")}
    doc = {"@context": "http://iiif.io/api/presentation/2/context.json", "@id": "https://m.test/v2/manifest",
           "@type": "sc:Manifest", "label": "Two orders",
           "sequences": [{"@type": "sc:Sequence", "canvases": [canvas(1, specific), canvas(2, plain)]},
                         {"@type": "sc:Sequence", "canvases": [canvas(2, plain), canvas(1, specific)]}]}
    url = "https://m.test/v2/manifest"
    refs = parse(url, {url: json.dumps(doc).encode()})
    assert [r.url for r in refs] == ["https://img.test/iiif/2/a/info.json", "https://img.test/iiif/2/b/info.json"]
