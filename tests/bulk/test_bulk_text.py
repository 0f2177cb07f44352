"""Bulk lists parsed offline (dezoomify-rs §13)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dezoomify_nb.dezoomers.base import Context
from dezoomify_nb.dezoomers.bulk_text import BulkTextDezoomer, accepts, parse_list
from dezoomify_nb.errors import MetadataError, WrongDezoomer
from dezoomify_nb.model import ImageRef

DATA = Path(__file__).resolve().parent.parent / "data" / "bulk"
DZ = BulkTextDezoomer()


def test_captured_list():
    path = str(DATA / "images.txt")
    refs = DZ.images(Context(path, {path: (DATA / "images.txt").read_bytes()}))
    assert all(isinstance(r, ImageRef) and r.dezoomer == "auto" for r in refs)
    assert [(r.url, r.title) for r in refs] == [
        ("https://iiif.example.org/iiif/abc/info.json", "Map of Paris, 1739"),
        ("https://tiles.example.org/dzi/duomo.dzi", None),
        (str(DATA / "local" / "ImageProperties.xml"), "Kitchen (local Zoomify)"),  # relative to the list
        ("https://tiles.example.org/generic/tile_{{X}}_{{Y}}.jpg", None),
        ("https://example.org/", None),
    ]


def test_relative_entries_of_a_list_served_over_http():
    text = "a/info.json\n../b.dzi  B\n"
    assert [r.url for r in parse_list(text, "https://x.org/lists/bulk.txt")] == [
        "https://x.org/lists/a/info.json", "https://x.org/b.dzi"]


@pytest.mark.parametrize(
    "uri,ok",
    [("list.txt", True), ("https://x.org/images.urls", True), ("https://x.org/bulk/a", True),
     ("https://x.org/my-LIST", True), ("https://x.org/a.txt?x=1", True), ("https://x.org/info.json", False),
     ("https://x.org/bulk_{{X}}.txt", False), ("https://x.org/a.text", False)],
)
def test_accepted_names(uri, ok):
    assert accepts(uri) is ok


def test_bad_line_in_a_named_list_is_an_error():
    with pytest.raises(MetadataError, match=r"On line 3: 'nonsense' is not a valid URL or file path"):
        DZ.images(Context("l.txt", {"l.txt": b"# c\nhttps://x.org/a.dzi\nnonsense here\n"}))
    with pytest.raises(MetadataError, match="not a valid URL"):
        DZ.images(Context("l.txt", {"l.txt": b"ftp://x.org/a.dzi\n"}))


def test_empty_named_list_is_an_error():
    with pytest.raises(MetadataError, match="No valid URLs found"):
        DZ.images(Context("l.txt", {"l.txt": b"# only comments\n\n   \n"}))


def test_unnamed_source_is_accepted_only_when_every_line_is_an_entry():
    good = b"https://x.org/a.dzi First\nhttps://x.org/b.dzi\n"
    assert len(DZ.images(Context("https://x.org/things", {"https://x.org/things": good}))) == 2
    for data in (b"<html>\n<body>hello</body>\n", b'{"width": 1}', b"", b"\x89PNG\r\n\x1a\n\x00\x00",
                 b"\xff\xfe\xfa not utf-8"):
        with pytest.raises(WrongDezoomer):
            DZ.images(Context("https://x.org/things", {"https://x.org/things": data}))


def test_templates_as_the_source_are_not_lists():
    with pytest.raises(WrongDezoomer):
        DZ.images(Context("https://x.org/list_{{X}}.txt", {}))
