"""Unit tests of the page extractor: what :func:`extract` finds in captured-style viewer pages."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from dezoomify_nb.dezoomers import _html
from dezoomify_nb.dezoomers.page import Candidate, extract, open_inline

from .page_helpers import DATA, SITE, read

OTHER = Path(__file__).resolve().parent.parent / "data"


def found(name: str) -> list[str]:
    return [c.label for c in extract(SITE + name, read(name)).candidates]


def page(body: str, head: str = "") -> bytes:
    return f"<!DOCTYPE html><html><head>{head}</head><body>{body}</body></html>".encode()


def labels(body: str, head: str = "", url: str = "https://www.museum.test/object/42") -> list[str]:
    return [c.label for c in extract(url, page(body, head)).candidates]


# --- the captured pages -------------------------------------------------------------------------------
def test_openseadragon_inline_dzi() -> None:
    f = extract(SITE + "osd_inline_dzi.html", read("osd_inline_dzi.html"))
    assert [c.label for c in f.candidates] == ["Deep Zoom (inline) http://museum.test/site/osd_inline_dzi.html"]
    assert f.title == "View of Delft"  # og:title before <title>
    assert f.preview == "http://museum.test/site/thumbs/delft_400.jpg"  # known, but a real source was found
    image = open_inline(f.candidates[0])
    assert image.levels[0].size == (1000, 700) and image.levels[0].overlap == 1
    assert image.levels[0].tile_url(0, 0) == "http://museum.test/dzi-png/image_files/10/0_0.png"


def test_openseadragon_inline_xml_string_with_base_href_and_entities() -> None:
    f = extract(SITE + "osd_inline_xml.html", read("osd_inline_xml.html"))
    assert [c.kind for c in f.candidates] == ["Deep Zoom"] and f.candidates[0].inline
    assert f.title == "Cartographie & plans \u2013 Plan de Paris"
    # Url="image_files/" resolves against <base href="http://museum.test/dzi-png/">, not the page
    assert open_inline(f.candidates[0]).levels[0].tile_url(1, 2) == \
        "http://museum.test/dzi-png/image_files/10/1_2.png"


def test_mirador_manifest_id_and_drag_and_drop_link_give_one_manifest() -> None:
    # the <link rel="manifest"> of the web app is not a IIIF manifest
    assert found("mirador.html") == ["IIIF manifest http://museum.test/site/manifest.json"]


def test_universal_viewer_link_alternate_and_percent_encoded_parameter() -> None:
    f = extract(SITE + "uv.html", read("uv.html"))
    assert [c.label for c in f.candidates] == ["IIIF manifest http://museum.test/site/single.json"]
    assert f.candidates[0].dezoomer == "iiif_manifest"
    assert f.foreign_frames == ["https://universalviewer.io/uv.html#?manifest=http%3A%2F%2Fmuseum.test%2Fsite%2F"
                                "single.json&c=0"]


def test_iframe_of_the_same_site_is_listed_to_follow_and_others_are_not() -> None:
    f = extract(SITE + "iframe.html", read("iframe.html"))
    assert f.candidates == []
    assert f.frames == ["http://museum.test/site/viewer/embed.html?id=1872&lang=en"]  # &amp; undone
    assert f.foreign_frames == ["https://www.youtube.com/embed/dQw4w9WgXcQ"]
    inner = "http://museum.test/site/viewer/embed.html?id=1872&lang=en"
    assert [c.label for c in extract(inner, read("viewer/embed.html")).candidates] == \
        ["IIIF image http://museum.test/iiif2/info.json"]  # relative to the frame, not the outer page


def test_zoomify_html5_viewer() -> None:
    assert found("zoomify.html") == ["Zoomify http://museum.test/zoomify/ImageProperties.xml"]


def test_og_image_only() -> None:
    f = extract(SITE + "og_image.html", read("og_image.html"))
    assert f.candidates == [] and f.frames == []
    assert f.preview == "http://museum.test/site/media/still_life_preview.png"
    assert f.title == "Still life with fruit"


def test_several_sources_in_order_of_confidence_and_js_escapes() -> None:
    assert found("multi.html") == ["IIIF image https://museum.test/iiif3/info.json",
                                   "Deep Zoom http://museum.test/dzi-jpg/image.dzi"]


def test_nothing_and_string_concatenations_are_not_urls() -> None:
    f = extract(SITE + "nothing.html", read("nothing.html"))
    assert f.candidates == [] and f.preview is None
    assert f.foreign_frames == ["https://player.vimeo.com/video/12345"]


def test_iipmooviewer() -> None:
    assert found("iipmooviewer.html") == ["IIPImage http://museum.test/fcgi-bin/iipsrv.fcgi?FIF=image.tif"]


@pytest.mark.parametrize(("rel", "expected"), [
    ("krpano/embed.html", ["krpano http://museum.test/site/vtour/tour.xml"]),
    # an OpenSeadragon zoomifytileservice held in a variable
    ("iiif/zoomify_false_positive.html", ["Zoomify http://museum.test/site/ORIONFINAL/ImageProperties.xml"]),
    ("iiif/mirador_inline.html", ["IIIF image (inline) http://museum.test/site/x.html"]),
    ("deepzoom/highsmith_inline.html", ["Deep Zoom (inline) http://museum.test/site/x.html"]),
])
def test_pages_of_other_formats(rel: str, expected: list[str]) -> None:
    url = SITE + ("x.html" if "inline" in rel else Path(rel).name)
    assert [c.label for c in extract(url, (OTHER / rel).read_bytes()).candidates] == expected


def test_inline_iiif_info_opens() -> None:
    cand = extract(SITE + "x.html", (OTHER / "iiif/mirador_inline.html").read_bytes()).candidates[0]
    image = open_inline(cand)
    assert image.levels[0].size == (2400, 3200)
    assert image.levels[0].tile_url(0, 0).startswith("https://iiif.museum.test/iiif/2/folio1r/0,0,1024,1024/")


# --- single patterns ----------------------------------------------------------------------------------
def test_flash_zoomify_image_path() -> None:
    body = ('<object><param name="FlashVars" value="zoomifyImagePath=images/kitchen/&amp;zoomifyNavigator=1">'
            '</object>')
    assert labels(body) == ["Zoomify https://www.museum.test/object/images/kitchen/ImageProperties.xml"]


def test_openlayers_zoomify_template_and_zif_is_skipped() -> None:
    body = ("<script>new ol.source.Zoomify({url: 'https://tiles.test/img/{TileGroup}/{z}-{x}-{y}.jpg', "
            "size: [9000, 6000]}); Z.showImage('c', 'big.zif', '');</script>")
    assert labels(body) == ["Zoomify https://tiles.test/img/ImageProperties.xml"]


def test_iiif_content_state_parameter() -> None:
    state = base64.urlsafe_b64encode(json.dumps(
        {"id": "https://m.test/canvas/1", "type": "Canvas",
         "partOf": [{"id": "https://m.test/iiif/7/manifest.json", "type": "Manifest"}]}).encode()).decode().rstrip("=")
    assert labels(f'<a href="https://viewer.test/?iiif-content={state}">open</a>') == \
        ["IIIF manifest https://m.test/iiif/7/manifest.json"]
    assert labels('<a href="https://viewer.test/?iiif-content=https%3A%2F%2Fm.test%2Fm.json">x</a>') == \
        ["IIIF manifest https://m.test/m.json"]


def test_iiif_image_request_gives_its_service_unless_a_manifest_lists_it() -> None:
    img = '<img src="https://iiif.test/iiif/2/abc/full/400,/0/default.jpg">'
    assert labels(img) == ["IIIF image https://iiif.test/iiif/2/abc/info.json"]
    og = '<meta property="og:image" content="https://iiif.test/iiif/3/xyz/full/max/0/default.jpg">'
    assert labels("", og) == ["IIIF image https://iiif.test/iiif/3/xyz/info.json"]  # better than a preview
    both = img + '<a href="https://iiif.test/iiif/book/7/manifest">IIIF</a>'
    assert labels(both) == ["IIIF manifest https://iiif.test/iiif/book/7/manifest"]


def test_tile_source_strings_objects_and_escapes() -> None:
    body = ("<script>OpenSeadragon({tileSources: ['https:\\/\\/x.test\\/a.dzi', {tileSource: '/b.xml'}, "
            "'//iiif.test/iiif/2/c', {type: 'image', url: '/plain.jpg'}]});</script>")
    assert labels(body) == ["Deep Zoom https://x.test/a.dzi", "Deep Zoom https://www.museum.test/b.xml",
                            "IIIF image https://iiif.test/iiif/2/c/info.json"]


def test_fif_urls_with_entities_and_krpano() -> None:
    body = ('<a href="/iipsrv?FIF=/data/a.tif&amp;CVT=jpeg">jpeg</a>'
            '<script>embedpano({swf: "tour.swf", xml: "tours/tour.xml", target: "pano"});</script>')
    assert labels(body) == ["krpano https://www.museum.test/object/tours/tour.xml",
                            "IIPImage https://www.museum.test/iipsrv?FIF=/data/a.tif&CVT=jpeg"]


def test_the_page_url_itself_may_carry_the_manifest() -> None:
    url = "https://uv.test/uv.html#?manifest=https://m.test/iiif/9/manifest&c=0"
    assert labels("<div id='uv'></div>", url=url) == ["IIIF manifest https://m.test/iiif/9/manifest"]


def test_local_files_and_scripts_are_never_candidates() -> None:
    body = ("<script>OpenSeadragon({tileSources: 'file:///etc/passwd.dzi'});</script>"
            '<a href="javascript:load(\'x.dzi\')">x</a><iframe src="file:///etc/"></iframe>')
    f = extract("https://www.museum.test/object/42", page(body))
    assert all(c.url.startswith("https://") for c in f.candidates)
    assert f.frames == [] and f.foreign_frames == []


def test_twitter_image_is_a_fallback_preview() -> None:
    head = '<meta name="twitter:image" content="/media/p.jpg"><base href="https://cdn.museum.test/">'
    f = extract("https://www.museum.test/object/42", page("", head))
    assert f.preview == "https://cdn.museum.test/media/p.jpg"


def test_page_size_is_capped() -> None:
    pad = "<!-- " + "x" * (_html.MAX_PAGE_BYTES + 10) + " -->"
    early = extract("https://m.test/p", page('<a href="/a.dzi">a</a>' + pad)).candidates
    late = extract("https://m.test/p", page(pad + '<a href="/a.dzi">a</a>')).candidates
    assert [c.url for c in early] == ["https://m.test/a.dzi"] and late == []


def test_candidates_are_deduplicated_and_capped() -> None:
    body = "".join(f'<a href="/img/{i}.dzi">{i}</a><a href="/img/{i}.dzi">again</a>' for i in range(200))
    cands = extract("https://m.test/p", page(body)).candidates
    assert len(cands) == 64 and len(set(cands)) == 64 and cands[0].url == "https://m.test/img/0.dzi"


def test_candidate_label() -> None:
    assert Candidate("Deep Zoom", "https://h/a.dzi", "deepzoom").label == "Deep Zoom https://h/a.dzi"
    assert Candidate("Deep Zoom", "https://h/p", "deepzoom", b"{}").label == "Deep Zoom (inline) https://h/p"


# --- helpers ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("data", "expected"), [
    (b"<!DOCTYPE html><title>x</title>", True),
    (b"\xef\xbb\xbf  <html lang=en>", True),
    (b"Warning: include(): failed\n<html>", True),
    (b"<head><meta charset=utf-8><script>", True),
    (b'<?xml version="1.0"?><Image TileSize="254"><Size Width="1" Height="1"/></Image>', False),
    (b'{"@context": "<html>"}', False),
    (b"https://h/a.dzi\nhttps://h/b.dzi\n", False),
    (b"", False),
])
def test_looks_like_html(data: bytes, expected: bool) -> None:
    assert _html.looks_like_html(data) is expected


@pytest.mark.parametrize(("a", "b", "expected"), [
    ("https://www.museum.org/a", "https://iiif.museum.org/b", True),
    ("https://museum.org/a", "http://museum.org:8080/b", True),
    ("https://www.museum.co.uk/a", "https://other.co.uk/b", False),
    ("https://www.museum.org/a", "https://www.youtube.com/embed/x", False),
    ("http://127.0.0.1:8000/a", "http://127.0.0.1:9000/b", True),
    ("/tmp/page.html", "/tmp/frame.html", True),
    ("/tmp/page.html", "https://h/frame.html", False),
])
def test_same_site(a: str, b: str, expected: bool) -> None:
    assert _html.same_site(a, b) is expected


def test_declared_charset_is_used_and_odd_ones_are_ignored() -> None:
    latin = '<meta charset="windows-1252"><title>Caf\xe9</title>'.encode("latin-1")
    assert _html.title(_html.decode(latin)) == "Caf\u00e9"
    for odd in ("rot13", "base64", "utf-7", "unicode_escape", "no-such-charset"):
        assert _html.title(_html.decode(f'<meta charset="{odd}"><title>t\\x41</title>'.encode())) == "t\\x41"


def test_every_captured_page_is_html() -> None:
    for p in DATA.rglob("*.html"):
        assert _html.looks_like_html(p.read_bytes()), p


def test_image_service_objects_written_in_the_page() -> None:
    body = ("<script>window.__DATA__ = {item: {title: 'Map', services: ["
            '{"id": "https://iiif.test/iiif/3/map", "type": "ImageService3", "profile": "level2"}, '
            '{"@context": "http://iiif.io/api/image/2/context.json", "@id": "https://iiif.test/iiif/2/map/", '
            '"profile": "http://iiif.io/api/image/2/level1.json"}, '
            '{"id": "https://www.museum.test/object/42", "type": "Canvas"}]}};</script>')
    assert labels(body) == ["IIIF image https://iiif.test/iiif/3/map/info.json",
                            "IIIF image https://iiif.test/iiif/2/map/info.json"]


def test_image_services_give_way_to_a_manifest_that_lists_them() -> None:
    body = ('<link rel="alternate" type="application/ld+json;profile=&quot;http://iiif.io/api/presentation/3/'
            'context.json&quot;" href="https://iiif.test/iiif/book/manifest">'
            '<script>var s = {"id": "https://iiif.test/iiif/3/p1", "type": "ImageService3"};</script>')
    assert labels("", body) == ["IIIF manifest https://iiif.test/iiif/book/manifest"]
