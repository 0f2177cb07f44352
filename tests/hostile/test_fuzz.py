"""Property-based: every registered dezoomer, fed arbitrary, mutated and format-shaped hostile documents,
either refuses them with a DezoomifyError (WrongDezoomer, MetadataError, FetchError, …) or gives valid
images — nothing else, within bounded time and memory:

- no other exception escapes, and an error's message stays short (a hostile document is not echoed whole);
- an Image's levels are within the model's caps and their tile URLs can be made (first and last tile);
- from an http(s) input, every URL found (tiles, references) is http(s) or refused by the local-file gate
  (:func:`dezoomify_nb.net.local.refusal` with the trust the resolver gives a remote document);
- each example finishes within :data:`DEADLINE_MS`, and each parse allocates at most :data:`MAX_PEAK_MB`
  of Python objects (tracemalloc peak, traced only while the dezoomer runs; libxml2's nodes are bounded
  by the XML node cap, tested in test_parsers.py).

The dezoomers are taken from ``registry.list_dezoomers()`` when the tests are collected, so formats
added later are covered without editing this file. Documents come from :mod:`.fuzz_strategies`: byte
mutations of every file under ``tests/data/``, JSON and XML trees in the formats' vocabulary, pages with
object literals, tiles.yaml files, deep nesting and huge repetitions. ``DZ_FUZZ_EXAMPLES=3000`` runs a
longer search (default 100 examples per dezoomer), ``DZ_FUZZ_DEADLINE_MS`` changes the time bound.
"""

from __future__ import annotations

import os
import tracemalloc
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dezoomify_nb.dezoomers.base import Context
from dezoomify_nb.errors import DezoomifyError, FetchError, NeedsData
from dezoomify_nb.model import MAX_LEVELS, MAX_PIXELS, MAX_SIDE, MAX_TILE_SIDE, Image, ImageRef
from dezoomify_nb.net import NetConfig
from dezoomify_nb.net.local import is_http, refusal
from dezoomify_nb.registry import list_dezoomers

from .fuzz_strategies import documents

#: a falsifying example of several MB is reported, not turned into a warning-as-error that hides it
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")

#: inputs that each dezoomer recognises by their shape (one or more will interest any dezoomer)
URLS = [
    "http://h/x/ImageProperties.xml",
    "http://h/x/image.dzi",
    "http://h/x/image.xml",
    "http://h/x/info.json",
    "http://h/x/manifest.json",
    "http://h/x/tour.xml",
    "http://h/x/tiles.yaml",
    "http://h/x/list.txt",
    "http://h/x/page.html",
    "http://h/tiles/tile_{{X}}_{{Y}}.jpg",
    "http://h/fcgi-bin/iipsrv.fcgi?FIF=/a/b.tif&JTL=0,0",
    "http://h/servlet?file=/a.pff&requestType=1",
    "https://digitalcollections.nypl.org/items/510d47e2-0000-a3d9-e040-e00a18064a99",
    "https://artsandculture.google.com/asset/x/AbCdEf",
    "/tmp/does-not-matter/image.dzi",
    "/tmp/does-not-matter/tiles.yaml",
    "http://h/fsi/server?type=info&source=a.tif&image=a",
    "http://h/lizardtech/iserv/calcrgn?cat=c&item=i",
    "http://h/content/pageview/12",
    "http://h/api/getTilesInfo?object_id=1",
    "http://h/datas/playlists/x.xml",
    "http://h/x_jpg_/p.xml",
    "https://static-cdn.hungaricana.hu/tile/imagesize/maps/a.ecw",
    "https://maps.hungaricana.hu/en/MOLTerkeptar/1/view/",
    "https://images.memorix.nl/wba/topviewjson/memorix/abc",
    "http://h/x/a.imgi?cmd=info",
    "https://www.kbr.be/multi/abcViewer#page=2",
    "http://h/wmts/1.0.0/WMTSCapabilities.xml",
    "http://h/wmts?SERVICE=WMTS&REQUEST=GetTile&LAYER=a",
    "https://catalog.shm.ru/entity/OBJECT/2117418",
]

DEEP_JSON = b"[" * 50_000 + b"]" * 50_000
DEEP_OBJ = b'{"a":' * 50_000 + b"1" + b"}" * 50_000
LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">' + b"".join(
    b"<!ENTITY " + bytes([98 + i]) + b' "' + (b"&" + bytes([97 + i]) + b";") * 10 + b'">' for i in range(9))
    + b"]><IMAGE_PROPERTIES WIDTH=\"&j;\" HEIGHT=\"1\" TILESIZE=\"256\"/>")

#: a parser may ask for this many rounds of extra documents (resolve.py caps real runs the same way)
MAX_ROUNDS = 64
#: an error message longer than this echoes the document instead of describing the problem
MAX_MESSAGE_CHARS = 4096
#: Python objects allocated by one example (the worst accepted JSON document is far bigger; the
#: strategies stay under 3 MB a document)
MAX_PEAK_MB = 64
DEADLINE_MS = int(os.environ.get("DZ_FUZZ_DEADLINE_MS", "5000"))
#: the trust the resolver gives whatever an http(s) document leads to: no local file
REMOTE = NetConfig(local_root=None)


def traced_images(dezoomer, ctx: Context) -> list:
    """``dezoomer.images(ctx)``, its Python allocations checked (tracemalloc runs only around it)."""
    tracemalloc.start()
    try:
        return dezoomer.images(ctx)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < MAX_PEAK_MB * 2**20, f"{dezoomer.name} allocated {peak / 2**20:.0f} MB for {ctx.url}"


def drive(dezoomer, url: str, first: bytes, draw) -> list:
    """Run ``dezoomer`` like resolve.py does, answering every NeedsData with drawn bytes or a 404."""
    pages: dict[str, bytes | FetchError] = {url: first}
    for _ in range(MAX_ROUNDS):
        try:
            return traced_images(dezoomer, Context(url, pages, {"max_pixels": 10**12}))
        except NeedsData as need:
            missing = [u for u in need.urls if u not in pages]
            if not missing:
                return []
            for u in missing[:64]:
                pages[u] = draw(st.one_of(documents, st.just(FetchError(u, f"HTTP 404 for {u}", status=404))))
            if len(pages) > 512:
                return []
    return []


def check_url(found: str, source: str) -> None:
    assert isinstance(found, str) and len(found) <= 1 << 16, found[:200]
    if is_http(source) and not is_http(found):
        assert refusal(found, REMOTE) is not None, f"{source} leads to {found!r}, which the gate would read"


def check_result(result: list, url: str) -> None:
    assert isinstance(result, list), result
    for im in result:
        assert isinstance(im, Image | ImageRef), im
        if isinstance(im, ImageRef):
            check_url(im.url, url)
            continue
        assert 0 < len(im.levels) <= MAX_LEVELS
        for lv in im.levels:  # Level validated itself; the caps hold
            assert 0 < lv.width <= MAX_SIDE and 0 < lv.height <= MAX_SIDE, lv
            assert lv.width * lv.height <= MAX_PIXELS and 0 < lv.tile_width <= MAX_TILE_SIDE, lv
            assert 0 <= lv.overlap < min(lv.tile_width, lv.tile_height)
            for col, row in {(0, 0), (lv.cols - 1, lv.rows - 1)}:
                try:
                    tile = lv.tile_url(col, row)
                except DezoomifyError:
                    continue
                check_url(tile, url)


def check_error(exc: DezoomifyError) -> None:
    assert len(str(exc)) <= MAX_MESSAGE_CHARS, f"{type(exc).__name__} of {len(str(exc))} chars: {str(exc)[:300]}"
    assert isinstance(exc.hint, str)


#: dezoomers with a known escape, reported to their owners (strict: the mark must go once fixed)
KNOWN: dict[str, pytest.MarkDecorator] = {}
DEZOOMERS = [pytest.param(name, marks=KNOWN.get(name, ())) for name in sorted(list_dezoomers())]


@pytest.mark.parametrize("name", DEZOOMERS)
@settings(max_examples=int(os.environ.get("DZ_FUZZ_EXAMPLES", "100")), deadline=timedelta(milliseconds=DEADLINE_MS),
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
          database=None)
@given(url=st.sampled_from(URLS), doc=documents, data=st.data())
@example(url="http://h/x/info.json", doc=DEEP_JSON, data=None)
@example(url="http://h/x/manifest.json", doc=DEEP_OBJ, data=None)
@example(url="http://h/x/ImageProperties.xml", doc=LAUGHS, data=None)
@example(url="http://h/x/image.dzi", doc=b"\xff\xfe" + "<Image/>".encode("utf-16-le"), data=None)
@example(url="http://h/x/list.txt", doc=b"http://[oops/info.json\n", data=None)
@example(url="http://h/x/page.html", doc=b"<html><script>OpenSeadragon({tileSources:" + b"{Url:" * 60 + b"["
         + b"0," * 400_000 + b"0]" + b"}" * 61 + b")</script></html>", data=None)
def test_only_dezoomify_errors_or_valid_images(name, url, doc, data):
    dezoomer = list_dezoomers()[name]

    def draw(strategy):
        return data.draw(strategy) if data is not None else FetchError("x", "HTTP 404", status=404)

    try:
        result = drive(dezoomer, url, doc, draw)
    except DezoomifyError as exc:
        check_error(exc)
        return
    check_result(result, url)
