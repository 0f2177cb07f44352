"""Hostile XML (Zoomify ImageProperties.xml, Deep Zoom .dzi): nothing resolved, read, fetched or expanded."""

from __future__ import annotations

import pytest

import dezoomify_nb as dz
from dezoomify_nb.dezoomers._common import DocumentTooComplex, parse_xml

from .conftest import DZI, FAST_API, cli_error

SECRET = "s3cr3t-marker-0c7f"

ZOOMIFY = '<IMAGE_PROPERTIES WIDTH="{w}" HEIGHT="{h}" NUMTILES="1" NUMIMAGES="1" VERSION="1.8" TILESIZE="256" />'


def laughs(encoding: str = "UTF-8") -> str:
    """A billion laughs: 10^9 'lol's from a few hundred bytes."""
    ents = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10)
    ]
    return (f'<?xml version="1.0" encoding="{encoding}"?><!DOCTYPE Image [{"".join(ents)}]>'
            '<Image xmlns="http://schemas.microsoft.com/deepzoom/2008" Format="&lol9;" Overlap="0" '
            'TileSize="256"><Size Width="100" Height="100"/></Image>')


@pytest.fixture
def secret_file(tmp_path):
    p = tmp_path / "secret.txt"
    p.write_text(SECRET)
    return p


def hostile_documents(secret_file, probe_url):
    """name → (file name, bytes) of every hostile XML document tried."""
    xxe_file = f'<!DOCTYPE Image [<!ENTITY x SYSTEM "file://{secret_file}">]>'
    xxe_http = f'<!DOCTYPE Image [<!ENTITY x SYSTEM "{probe_url}/xxe-entity">]>'
    dzi_ent = ('<Image xmlns="http://schemas.microsoft.com/deepzoom/2008" Format="png" Overlap="0" '
               'TileSize="&x;"><Size Width="100" Height="100"/></Image>')
    return {
        "xxe-file-zoomify": ("ImageProperties.xml", (
            f'<!DOCTYPE IMAGE_PROPERTIES [<!ENTITY x SYSTEM "file://{secret_file}">]>'
            '<IMAGE_PROPERTIES WIDTH="&x;" HEIGHT="100" NUMTILES="1" TILESIZE="256">&x;</IMAGE_PROPERTIES>'
        ).encode()),
        "xxe-file-hostname": ("image.dzi", (
            '<!DOCTYPE Image [<!ENTITY x SYSTEM "file:///etc/hostname">]>' + dzi_ent).encode()),
        "xxe-file-dzi": ("image.dzi", (xxe_file + dzi_ent).encode()),
        "xxe-http": ("image.dzi", (xxe_http + dzi_ent).encode()),
        "xxe-parameter-entity": ("image.dzi", (
            f'<!DOCTYPE Image [<!ENTITY % p SYSTEM "{probe_url}/xxe-param.dtd"> %p;]>'
            + DZI.format(w=100, h=100).split("?>", 1)[1]).encode()),
        "external-dtd": ("image.dzi", (
            f'<!DOCTYPE Image SYSTEM "{probe_url}/xxe-external.dtd">'
            + DZI.format(w=100, h=100).split("?>", 1)[1]).encode()),
        "xinclude": ("image.dzi", (
            '<Image xmlns="http://schemas.microsoft.com/deepzoom/2008" '
            'xmlns:xi="http://www.w3.org/2001/XInclude" Format="png" Overlap="0" TileSize="256">'
            f'<xi:include href="{probe_url}/xxe-xinclude" parse="text"/>'
            '<Size Width="100" Height="100"/></Image>').encode()),
        "billion-laughs": ("image.dzi", laughs().encode()),
        "billion-laughs-utf16": ("image.dzi", laughs("UTF-16").encode("utf-16")),
        "quadratic-blowup": ("image.dzi", (
            f'<!DOCTYPE Image [<!ENTITY a "{"a" * 50_000}">]>'
            '<Image xmlns="http://schemas.microsoft.com/deepzoom/2008" Format="png" Overlap="0" '
            f'TileSize="256"><Size Width="100" Height="100"/>{"&a;" * 20_000}</Image>').encode()),
        "latin1-undeclared": ("image.dzi", DZI.format(w=100, h=100).split("?>", 1)[1].replace(
            'Format="png"', 'Format="png" Title="caf\xe9"').encode("latin-1")),
        "latin1-declared-utf8": ("image.dzi", DZI.format(w=100, h=100).replace(
            'Format="png"', 'Format="png" Title="caf\xe9"').encode("latin-1")),
        "truncated-dzi": ("image.dzi", DZI.format(w=100, h=100).encode()[:120]),
        "truncated-zoomify": ("ImageProperties.xml", ZOOMIFY.format(w=100, h=100).encode()[:40]),
        "empty": ("image.dzi", b""),
        "binary-garbage": ("image.dzi", bytes(range(256)) * 8),
        "deep-nesting": ("image.dzi", b"<a>" * 100_000 + b"</a>" * 100_000),
        "zoomify-wrong-root": ("ImageProperties.xml", b"<html><body>Not found</body></html>"),
    }


DOC_NAMES = ["xxe-file-zoomify", "xxe-file-hostname", "xxe-file-dzi", "xxe-http", "xxe-parameter-entity",
             "external-dtd", "xinclude", "billion-laughs", "latin1-declared-utf8", "billion-laughs-utf16", "quadratic-blowup",
             "latin1-undeclared", "truncated-dzi", "truncated-zoomify", "empty", "binary-garbage",
             "deep-nesting", "zoomify-wrong-root"]
#: documents that are otherwise valid: ignoring the hostile part and opening them is fine
MAY_OPEN = {"external-dtd", "xinclude", "latin1-undeclared", "latin1-declared-utf8"}


@pytest.mark.parametrize("name", DOC_NAMES)
def test_hostile_xml(name, server, serve, capsys, secret_file):
    fname, body = hostile_documents(secret_file, server.base_url)[name]
    url = serve({fname: body}) + "/" + fname
    server.reset_requests()
    if name in MAY_OPEN:
        img = dz.open(url, **FAST_API)
        assert (img.width, img.height) == (100, 100)
        assert SECRET not in repr(img.image)
    else:
        err = cli_error(capsys, url)
        assert SECRET not in err
        # deep-nesting: auto-detection lets bulk_text take "<a><a>…" for a one-line URL list (a lazy
        # collection whose item fails only when used), so the XML parsers are checked by name here
        forced = "deepzoom" if name == "deep-nesting" else "auto"
        with pytest.raises(dz.DezoomifyError) as info:
            dz.open(url, dezoomer=forced, **FAST_API)
        assert SECRET not in str(info.value)
    assert server.count("xxe-") == 0, server.requests  # no entity, DTD or XInclude was fetched


@pytest.mark.parametrize("name", DOC_NAMES)
def test_hostile_xml_local_file(name, tmp_path, capsys, secret_file):
    fname, body = hostile_documents(secret_file, "http://127.0.0.1:9")[name]
    path = tmp_path / fname
    path.write_bytes(body)
    if name in MAY_OPEN:
        assert dz.open(path, **FAST_API).width == 100
        return
    err = cli_error(capsys, path)
    assert SECRET not in err


#: documents that parse_xml must refuse outright (DocumentTooComplex), not merely fail to parse
REFUSED = {"xxe-file-zoomify", "xxe-file-hostname", "xxe-file-dzi", "xxe-http", "xxe-parameter-entity",
           "billion-laughs", "billion-laughs-utf16", "quadratic-blowup"}


@pytest.mark.parametrize("name", DOC_NAMES)
def test_parse_xml_never_expands_or_reads(name, secret_file):
    _, body = hostile_documents(secret_file, "http://127.0.0.1:9")[name]
    if name in REFUSED:
        with pytest.raises(DocumentTooComplex, match="declares entities"):
            parse_xml(body)
        return
    root = parse_xml(body)
    if root is not None:
        from lxml import etree

        text = etree.tostring(root)
        assert SECRET.encode() not in text and b"lollollol" not in text
        assert len(text) < 10 * len(body) + 1000


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_entities_are_refused_in_every_encoding(encoding, secret_file):
    doc = (f'<?xml version="1.0" encoding="{encoding.upper()}"?>'
           f'<!DOCTYPE Image [<!ENTITY x SYSTEM "file://{secret_file}"><!ENTITY y "yyyy">]>'
           '<Image Format="&y;" TileSize="256"><Size Width="1" Height="1"/>&x;</Image>')
    with pytest.raises(DocumentTooComplex, match="declares entities"):
        parse_xml(doc.encode(encoding))


def test_utf16_dzi_without_entities_still_opens(tmp_path):
    path = tmp_path / "u16.dzi"
    path.write_bytes(DZI.format(w=300, h=200).replace('"UTF-8"', '"UTF-16"').encode("utf-16"))
    assert (dz.open(path, **FAST_API).width, dz.open(path, **FAST_API).height) == (300, 200)
