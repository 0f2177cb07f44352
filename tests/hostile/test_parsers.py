"""Parser bounds (issue 14, classes 3 and 6): a metadata document that would become gigabytes of parser
objects, nest past the interpreter's recursion limit or hide ``<!ENTITY`` in an exotic encoding is refused
with one MetadataError (``DocumentTooComplex``), through every XML dezoomer, on both transports, in a
watched subprocess (RSS cap, tripwires on a secret file).

Measured worst accepted documents (RSS growth while parsing, on the 2-core test machine): JSON at
2,000,000 counted values ≈ 70–260 MB (1,000,000 ``{}`` ≈ 70 MB, 2,000,000 distinct short keys ≈ 260 MB);
XML at 1,000,000 counted nodes ≈ 65–165 MB (``<a b="1"/>x`` × 333,000 ≈ 165 MB).
"""

from __future__ import annotations

import json
import sys

import pytest

import dezoomify_nb as dz
from dezoomify_nb.dezoomers import _common, custom_yaml
from dezoomify_nb.dezoomers._common import (
    MAX_JSON_DEPTH,
    MAX_JSON_NODES,
    MAX_XML_NODES,
    DocumentTooComplex,
    load_json,
    parse_xml,
)
from dezoomify_nb.errors import DezoomifyError, MetadataError

from .conftest import DZI, FAST_CLI
from .harness import Tripwires, run_isolated

# --- JSON -----------------------------------------------------------------------------------------


def test_json_counted_before_parsing():
    over = b"[" + b"{}," * (MAX_JSON_NODES // 2) + b"{}]"
    with pytest.raises(DocumentTooComplex, match="values"):
        load_json(over)
    at_cap = b"[" + b"{}," * (MAX_JSON_NODES // 2 - 1) + b"{}]"
    assert len(load_json(at_cap)) == MAX_JSON_NODES // 2


@pytest.mark.parametrize("opener,closer", [(b"[", b"]"), (b'{"a":', b"}")])
def test_json_depth(opener, closer):
    def nested(levels: int) -> bytes:
        return opener * (levels - 1) + b"[1]" + closer * (levels - 1)

    assert load_json(nested(MAX_JSON_DEPTH)) is not None
    for levels in (MAX_JSON_DEPTH + 1, 900, 100_000):  # 100,000: past the recursion limit of json itself
        with pytest.raises(DocumentTooComplex, match="nests more than"):
            load_json(nested(levels))


def test_json_depth_from_a_deep_stack():
    """json's own RecursionError depends on the caller's stack: it must be the same refusal."""
    doc = b"[" * 950 + b"]" * 950

    def descend(n: int):
        return descend(n - 1) if n else load_json(doc)

    with pytest.raises(DocumentTooComplex):
        descend(sys.getrecursionlimit() - 100)


def test_json_brackets_in_strings_do_not_count_as_depth():
    doc = json.dumps({"label": "[" * 5000, "deep": "{" * 5000}).encode()
    assert load_json(doc)["label"] == "[" * 5000


def test_json_scalars_and_garbage_are_not_refused():
    assert load_json(b'"' + b"," * 3_000_000 + b'"') == "," * 3_000_000
    assert load_json(b"not json, " * 300_000) is None


# --- XML ------------------------------------------------------------------------------------------


def test_xml_counted_before_the_full_parse():
    many = b"<r>" + b"<a/>" * (MAX_XML_NODES // 2) + b"</r>"
    with pytest.raises(DocumentTooComplex, match="nodes"):
        parse_xml(many)
    attrs = b"<r>" + b'<a b="1"/>' * (MAX_XML_NODES // 3 + 1) + b"</r>"
    with pytest.raises(DocumentTooComplex, match="nodes"):
        parse_xml(attrs)
    fine = b"<r>" + b'<a b="1"/>' * (MAX_XML_NODES // 4) + b"</r>"
    assert len(parse_xml(fine)) == MAX_XML_NODES // 4


def test_xml_prolog_without_root_is_not_xml():
    assert parse_xml(b"<!--" + b"x" * 200_000 + b"-->" + b"<r/>") is None


SECRET_NAME = "secret.txt"


def laughs_body() -> str:
    """A billion laughs, expanded in an attribute (libxml2 does that even with entities off) and text.

    The root is a WMTS ``Capabilities`` (the WMTS dezoomer parses nothing else); the other dezoomers parse
    first and look at the root after."""
    ents = ['<!ENTITY l0 "lol">'] + [f'<!ENTITY l{i} "{("&l" + str(i - 1) + ";") * 10}">' for i in range(1, 10)]
    return (f'<!DOCTYPE Image [{"".join(ents)}]>'
            '<Capabilities xmlns="http://www.opengis.net/wmts/1.0" Format="&l9;" TileSize="256">'
            '<Size Width="100" Height="100"/>&l9;</Capabilities>')


def xxe_body(secret: str) -> str:
    """An external entity naming a local file, used in the text of an otherwise valid descriptor."""
    return (f'<!DOCTYPE Image [<!ENTITY x SYSTEM "file://{secret}">]>'
            '<Capabilities xmlns="http://www.opengis.net/wmts/1.0" Format="png" TileSize="256">'
            '<Size Width="100" Height="100"/>&x;</Capabilities>')


def _utf7_all_markup(text: str) -> bytes:
    """UTF-7 with every '<' written as base64 (+ADw-): no '<' byte outside the declaration."""
    return text.encode("utf-7").replace(b"<", b"+ADw-")


def _ucs4(text: str, order: str) -> bytes:
    be = text.encode("utf-32-be")
    quads = [be[i:i + 4] for i in range(0, len(be), 4)]
    return b"".join(bytes(q[int(k) - 1] for k in order) for q in quads)


def _java(text: str) -> bytes:
    return text.encode("ascii", "backslashreplace").replace(b"<", b"\\u003c").replace(b"!", b"\\u0021")


def encoded(name: str, body: str) -> bytes:
    """``body`` (no declaration) as a document in the exotic encoding ``name``."""
    decl = '<?xml version="1.0" encoding="{}"?>'.format
    if name in ("utf-8", "windows-1252", "shift_jis"):
        return (decl(name) + body).encode(name)
    if name == "utf-7":
        return decl("UTF-7").encode() + _utf7_all_markup(body)
    if name == "java":  # libiconv's \\uXXXX encoding: no '<' byte at all
        return decl("JAVA").encode() + _java(body)
    if name in ("utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"):  # no BOM: libxml2 detects it
        return (decl(name[:6].upper()) + body).encode(name)
    if name == "utf-32-bom":
        return (decl("UTF-32") + body).encode("utf-32")
    if name in ("ucs4-2143", "ucs4-3412"):
        return _ucs4(decl("ISO-10646-UCS-4") + body, name[5:])
    if name == "ebcdic":  # cp037, detected from its first bytes
        return (decl("IBM037") + body).encode("cp037")
    if name == "ascii-decl-ebcdic-body":
        return decl("IBM037").encode() + body.encode("cp037")
    if name == "bom16-decl-utf8":
        return (decl("UTF-8") + body).encode("utf-16")
    if name == "bom8-decl-utf16":
        return b"\xef\xbb\xbf" + (decl("UTF-16") + body).encode()
    raise AssertionError(name)


ENCODINGS = ["utf-8", "windows-1252", "shift_jis", "utf-7", "java", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be", "utf-32-bom", "ucs4-2143",
             "ucs4-3412", "ebcdic", "ascii-decl-ebcdic-body", "bom16-decl-utf8", "bom8-decl-utf16"]
#: encodings libxml2 reads with '<' as one byte: their entity-free documents open
READABLE = {"utf-8", "windows-1252", "shift_jis", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be", "utf-32-bom", "bom16-decl-utf8"}


@pytest.mark.parametrize("enc", ENCODINGS)
def test_exotic_encodings_in_process(enc, tmp_path):
    secret = tmp_path / SECRET_NAME
    secret.write_text("dz-secret")
    for hostile in (encoded(enc, laughs_body()), encoded(enc, xxe_body(str(secret)))):
        try:
            root = parse_xml(hostile)
        except DocumentTooComplex as exc:
            assert "entities" in str(exc) or "encoding" in str(exc)
        else:  # libxml2 cannot read it at all (EBCDIC, odd UCS-4 orders, a UTF-16 label on UTF-8)
            assert root is None and enc not in READABLE | {"utf-7", "java"}, enc
    benign = encoded(enc, DZI.format(w=300, h=200).split("?>", 1)[1])
    if enc in READABLE:
        assert parse_xml(benign).find("{*}Size").get("Width") == "300"
    elif enc in ("utf-7", "java"):
        with pytest.raises(DocumentTooComplex, match="encoding is refused"):
            parse_xml(benign)
    else:
        assert parse_xml(benign) is None


@pytest.mark.parametrize("codec", ["utf-8", "utf-16", "utf-16-le", "utf-32-be", "latin-1"])
def test_the_parsed_dtd_decides(codec, monkeypatch):
    """Without the byte-level pre-check, the parsed document's DTD still refuses the entities."""
    monkeypatch.setattr(_common, "_declares_entities", lambda data: False)
    name = {"utf-16-le": "UTF-16", "utf-32-be": "UTF-32", "latin-1": "ISO-8859-1"}.get(codec, codec.upper())
    doc = (f'<?xml version="1.0" encoding="{name}"?><!DOCTYPE I [<!ENTITY % p "x"><!ENTITY y "yy">]>'
           '<I a="&y;"/>')
    with pytest.raises(DocumentTooComplex, match="declares entities"):
        parse_xml(doc.encode(codec))
    only_param = f'<?xml version="1.0" encoding="{name}"?><!DOCTYPE I [<!ENTITY % p "x">]><I/>'
    with pytest.raises(DocumentTooComplex, match="declares entities"):
        parse_xml(only_param.encode(codec))
    no_entities = f'<?xml version="1.0" encoding="{name}"?><!DOCTYPE I [<!ELEMENT I EMPTY>]><I/>'
    assert parse_xml(no_entities.encode(codec)).tag == "I"


# --- every XML dezoomer, in a watched subprocess, both transports ----------------------------------

#: dezoomer → a path that makes it parse the served document as XML (the server answers every path)
XML_DEZOOMERS = {
    "deepzoom": "/x/image.dzi",
    "zoomify": "/x/ImageProperties.xml",
    "krpano": "/x/tour.xml",
    "wmts": "/wmts/1.0.0/WMTSCapabilities.xml",
    "lizardtech": "/lizardtech/iserv/calcrgn?cat=c&item=i",
    "xlimage": "/x/a.imgi?cmd=info",
    "mnesys": "/x_jpg_/p.xml",
    "vls": "/content/pageview/12",
}

_CHILD = r"""
import json, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import dezoomify_nb as dz
from dezoomify_nb.errors import DezoomifyError

docs = json.load(open(sys.argv[1]))
current = {"body": b""}

class H(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(current["body"])))
        self.end_headers()
        self.wfile.write(current["body"])
    def log_message(self, *a):
        pass

httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
threading.Thread(target=httpd.serve_forever, daemon=True).start()
base = f"http://127.0.0.1:{httpd.server_address[1]}"
out = []
for name, hexdoc in docs["docs"]:
    current["body"] = bytes.fromhex(hexdoc)
    for dezoomer, path in docs["dezoomers"].items():
        try:
            dz.open(base + path, dezoomer=dezoomer, transport=docs["transport"], retries=0, min_interval=0.0,
                    timeout=5.0)
            out.append([name, dezoomer, "opened", ""])
        except DezoomifyError as exc:
            out.append([name, dezoomer, type(exc).__name__, str(exc)[:300]])
        except BaseException as exc:
            out.append([name, dezoomer, "ESCAPED " + type(exc).__name__, repr(exc)[:300]])
print(json.dumps(out))
"""


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
def test_exotic_xml_through_every_xml_dezoomer(transport, tmp_path):
    with Tripwires(tmp_path / "wires") as wires:
        docs = [(f"{enc}-laughs", encoded(enc, laughs_body()).hex()) for enc in ENCODINGS]
        docs += [(f"{enc}-xxe", encoded(enc, xxe_body(str(wires.secret))).hex()) for enc in ENCODINGS]
        docs += [("utf-8-xxe-fifo", xxe_body(str(wires.fifo)).encode().hex())]
        spec = tmp_path / "docs.json"
        spec.write_text(json.dumps({"docs": docs, "dezoomers": XML_DEZOOMERS, "transport": transport}))
        run = run_isolated(code=_CHILD.replace("sys.argv[1]", repr(str(spec))), rss_mb=500, seconds=90,
                           workdir=tmp_path / "run")
        tripped = wires.tripped()
    run.assert_contained(rss_mb=500)
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(run.stdout)
    assert len(results) == len(docs) * len(XML_DEZOOMERS)
    for name, dezoomer, outcome, message in results:
        assert outcome not in ("opened",) and not outcome.startswith("ESCAPED"), (name, dezoomer, outcome, message)
        assert wires.token not in message and "lollollol" not in message
    # the refusal is the parser's, not an accident of the URL: every dezoomer reached parse_xml
    by_doc = {name: [o for n, _, o, m in results if n == name] for name, _ in docs}
    for enc in [*READABLE, "utf-7", "java"]:
        # the WMTS dezoomer looks for "<Capabilities" in the bytes first: not there in UTF-7/16/32, JAVA
        skipped = ["wmts"] if enc.startswith(("utf-7", "java", "utf-16", "utf-32", "bom16")) else []
        for payload in ("laughs", "xxe"):
            outcomes = dict(zip(XML_DEZOOMERS, by_doc[f"{enc}-{payload}"], strict=True))
            refused = {d: o for d, o in outcomes.items() if d not in skipped}
            assert set(refused.values()) == {"DocumentTooComplex"}, (enc, payload, outcomes)
    assert tripped == [], f"local files were opened: {tripped}"


# --- inflated documents over the wire (gzip), both transports, in a watched subprocess -------------


def _gzip(data: bytes) -> bytes:
    import gzip

    return gzip.compress(data, 9)


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
@pytest.mark.parametrize("kind", ["json", "xml"])
def test_inflated_metadata_is_refused_cleanly(kind, transport, server, tmp_path):
    from dezoomify_nb.testing.tileserver import Response

    if kind == "json":  # 12 MiB of [{},{},…]: 4,000,000 values
        body, path, what = b"[" + b"{}," * 4_000_000 + b"{}]", "/inflate-json/info.json", "values"
    else:  # 12 MiB of <a/>: 3,000,000 elements
        body, path, what = b"<Image>" + b"<a/>" * 3_000_000 + b"</Image>", "/inflate-xml/image.dzi", "nodes"
    packed = _gzip(body)

    def handler(srv, raw_path, headers):
        return Response(200, packed, "application/octet-stream", {"Content-Encoding": "gzip"})

    server.add_route(path, handler)
    run = run_isolated([*FAST_CLI, "--transport", transport, server.base_url + path, str(tmp_path / "out.png")],
                       rss_mb=450, seconds=60, workdir=tmp_path / "run")
    run.assert_contained(rss_mb=450)
    line = run.one_error_line()
    assert run.returncode == 1
    assert what in line or what in run.stderr, run.stderr[-2000:]


# --- tiles.yaml -------------------------------------------------------------------------------------


@pytest.mark.parametrize("doc", [
    b"[" * 100_000,
    b"url_template: a\nvariables: " + b"[" * 3000 + b"]" * 3000,
    b"url_template: a\nvariables: [" + b"{}," * 200_000 + b"{}]",
    b"a: &a [1]\nb: *a\n",
])
def test_tiles_yaml_bounds(doc):
    with pytest.raises(MetadataError) as info:
        custom_yaml.parse_config(doc)
    assert info.value.hint


def test_tiles_yaml_through_the_api(tmp_path):
    path = tmp_path / "tiles.yaml"
    path.write_bytes(b"url_template: a\nvariables: " + b"[" * 5000 + b"]" * 5000)
    with pytest.raises(DezoomifyError, match="nesting"):
        dz.open(path)
    with pytest.raises(MetadataError, match="nesting"):
        dz.open(path, dezoomer="custom")
