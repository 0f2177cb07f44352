"""Hypothesis strategies for the dezoomer fuzz (:mod:`tests.hostile.test_fuzz`).

Besides byte mutations of real documents (every file under ``tests/data/``), documents are built with
the shape the parsers expect: JSON trees and XML element trees whose keys, element and attribute names
come from the formats' vocabulary and whose values are hostile numbers and URLs (``file://``, paths,
other schemes, huge, negative, NaN), JavaScript object literals inside HTML, tiles.yaml files, deep
nesting and huge repetitions of a small fragment.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from hypothesis import strategies as st

DATA = Path(__file__).resolve().parent.parent / "data"
SEEDS: list[bytes] = sorted(p.read_bytes()[:200_000] for p in DATA.rglob("*") if p.is_file()) + [
    b'<IMAGE_PROPERTIES WIDTH="1000" HEIGHT="700" NUMTILES="20" TILESIZE="256"/>',
    b'{"@context":"http://iiif.io/api/image/3/context.json","id":"http://h/i","width":1000,"height":700,'
    b'"tiles":[{"width":512,"scaleFactors":[1,2]}],"profile":"level1"}',
    b'<Image TileSize="254" Overlap="1" Format="png"><Size Width="1000" Height="700"/></Image>',
    b"http://h/a/info.json\nhttp://h/b/image.dzi\n",
    b"IIP:1.0\nMax-size:1000 700\nTile-size:256 256\nResolution-number:3\n",
]

#: keys and names the parsers look for (all formats mixed: a parser must survive its neighbours' words)
WORDS = [
    "width", "height", "tiles", "scaleFactors", "sizes", "@context", "id", "@id", "type", "@type", "profile",
    "protocol", "sequences", "canvases", "images", "resource", "service", "items", "body", "label",
    "manifests", "collections", "members", "Image", "Size", "Width", "Height", "TileSize", "Overlap", "Format",
    "Url", "xmlns", "levels", "configs", "size", "tilesize", "overlap", "format", "setItems", "TilingUrl",
    "ObjectNumber", "tileSources", "url_template", "variables", "name", "from", "to", "step", "value",
    "x_template", "y_template", "headers", "title", "IMAGE_PROPERTIES", "WIDTH", "HEIGHT", "TILESIZE",
    "NUMTILES", "krpano", "image", "level", "tiledimagewidth", "tiledimageheight", "tilesize", "cube", "url",
    "include", "scene", "Capabilities", "Contents", "Layer", "TileMatrixSet", "TileMatrix", "Identifier",
    "MatrixWidth", "MatrixHeight", "TileWidth", "TileHeight", "ResourceURL", "template", "ImageServer",
    "Catalog", "playlist", "layer", "TileInfo", "pyramid_level", "num_tiles_x", "num_tiles_y", "PFFHEADER",
    "href", "src", "0", "z", "ImageService3", "ImageService2", "level0", "level2",
]
EVIL_NUMBERS = [0, -1, 1, 2, 3, 255, 256, 257, 4096, 2**31, 2**32, 2**53 + 1, 2**63, 10**30, -(2**63), 1e308,
                float("inf"), float("nan"), 0.5, -0.0]
EVIL_STRINGS = [
    "", "0", "-1", "1e400", "NaN", "99999999999999999999", "http://h/x", "https://h/y/", "file:///etc/passwd",
    "file:///dev/zero", "/etc/passwd", "../../../../etc/passwd", "//evil.example/x", "ftp://h/x",
    "data:image/png;base64,AAAA", "javascript:alert(1)", "C:\\Windows\\win.ini", "\\\\server\\share\\x",
    "http://[oops/x", "http://h/{{X}}/{{Y}}.jpg", "%s%s%s", "{x}{y}{z}", "{{x}}" * 50, "a" * 300,
    "http://h/" + "a/" * 2000, "\u202e\u0000\ud7ff", "level0", "ImageService3", "png", "jpg",
    "http://iiif.io/api/image/2/context.json", "http://iiif.io/api/image/3/level2.json",
]

scalars = (
    st.sampled_from(EVIL_NUMBERS) | st.integers(-(2**70), 2**70) | st.sampled_from(EVIL_STRINGS)
    | st.text(max_size=12) | st.booleans() | st.none()
)
keys = st.sampled_from(WORDS) | st.text(max_size=8)
json_trees = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(keys, children, max_size=6),
    max_leaves=40,
)


@st.composite
def json_documents(draw) -> bytes:
    """A JSON tree, mostly rooted in an object that uses the formats' keys."""
    root = draw(st.dictionaries(st.sampled_from(WORDS), json_trees, min_size=1, max_size=8) | json_trees)
    return json.dumps(root).encode()


_NAME_OK = re.compile(r"^[A-Za-z_][\w.-]*$")
xml_names = st.sampled_from([w for w in WORDS if _NAME_OK.match(w)]) | st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_", min_size=1, max_size=6)


def _xml_value(draw) -> str:
    value = draw(scalars)
    text = json.dumps(value) if not isinstance(value, str) else value
    return text.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")


@st.composite
def xml_elements(draw, depth: int = 0) -> str:
    name = draw(xml_names)
    attrs = draw(st.dictionaries(xml_names, st.just(0), max_size=6))
    attr_text = "".join(f' {a}="{_xml_value(draw)}"' for a in attrs)
    children = draw(st.integers(0, 4 if depth < 4 else 0))
    inner = "".join(draw(xml_elements(depth + 1)) for _ in range(children))
    if draw(st.booleans()):
        inner += _xml_value(draw)
    return f"<{name}{attr_text}>{inner}</{name}>"


@st.composite
def xml_documents(draw) -> bytes:
    body = draw(xml_elements())
    decl = draw(st.sampled_from(["", '<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-8"?>']))
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-16"]))
    if encoding == "utf-16":
        decl = '<?xml version="1.0" encoding="UTF-16"?>'
    return (decl + body).encode(encoding)


@st.composite
def page_documents(draw) -> bytes:
    """An HTML page with a JavaScript object literal (JSON5-ish: unquoted keys, single quotes)."""
    tree = draw(json_trees)
    literal = json.dumps(tree)
    if draw(st.booleans()):
        literal = re.sub(r'"([A-Za-z_]\w*)":', r"\1:", literal)  # unquoted keys
    script = draw(st.sampled_from(["OpenSeadragon({{tileSources: {0}}})", "var config = {0};",
                                   "viewer.open({0});", "Micrio({0})", "embedpano({{xml:'{1}'}});"]))
    url = draw(st.sampled_from(EVIL_STRINGS))
    return f"<!DOCTYPE html><html><head><title>t</title></head><body><script>{script.format(literal, url)}" \
           "</script></body></html>".encode()


@st.composite
def yaml_documents(draw) -> bytes:
    template = draw(st.sampled_from(EVIL_STRINGS + ["http://h/{{x}}_{{y}}.jpg", "{{x * tile}}/{{y:099}}"]))
    variables = draw(st.lists(st.fixed_dictionaries(
        {"name": st.sampled_from(["x", "y", "tile", "1x", ""]), "from": st.sampled_from(EVIL_NUMBERS),
         "to": st.sampled_from(EVIL_NUMBERS)},
        optional={"step": st.sampled_from(EVIL_NUMBERS), "value": st.sampled_from(EVIL_NUMBERS)}), max_size=4))
    doc = {"url_template": template, "variables": variables}
    for k in draw(st.lists(st.sampled_from(["width", "height", "x_template", "y_template", "title"]), max_size=3)):
        doc[k] = draw(scalars)
    return json.dumps(doc, default=str).encode()  # JSON is YAML


#: (opening, closing) pairs nested many times
NESTINGS = [(b"[", b"]"), (b"{", b"}"), (b'{"a":', b"}"), (b"{a:", b"}"), (b"<a>", b"</a>"),
            (b"<krpano><include url='x.xml'/>", b"</krpano>"), (b"- ", b""), (b"a:\n ", b"")]


@st.composite
def deep_documents(draw) -> bytes:
    opening, closing = draw(st.sampled_from(NESTINGS))
    levels = draw(st.sampled_from([64, 65, 199, 200, 201, 255, 257, 1000, 5000, 50_000]))
    middle = draw(st.sampled_from([b"", b"1", b"[]", b"{}", b"<Size Width='1' Height='1'/>"]))
    return opening * levels + middle + closing * levels


FRAGMENTS = [b"{},", b"[],", b'"a",', b"0,", b"<a/>", b"<a b='1'/>", b"<!---->", b'"TileSize":1,',
             b"{TileSize:1,Format:'png',Size:{Width:1,Height:1}},", b"<Size Width='1' Height='1'/>",
             b"<level tiledimagewidth='1' tiledimageheight='1'><cube url='x'/></level>",
             b"http://h/a/info.json\n", b"{{x}}", b"{", b"<", b"&amp;", b"\\u0022"]


#: a repeated document stays under this size (the network caps metadata at 16 MiB; the parser bounds
#: are tested at full size in test_parsers.py)
MAX_REPEATED_BYTES = 2_000_000


@st.composite
def repeated_documents(draw) -> bytes:
    fragment = draw(st.sampled_from(FRAGMENTS))
    times = min(draw(st.sampled_from([1000, 20_000, 100_000, 300_000])), MAX_REPEATED_BYTES // len(fragment))
    head, tail = draw(st.sampled_from([(b"[", b"0]"), (b"{\"a\":[", b"0]}"), (b"<r>", b"</r>"),
                                       (b"<IMAGE_PROPERTIES WIDTH='1' HEIGHT='1' TILESIZE='1'>", b"</IMAGE_PROPERTIES>"),
                                       (b"", b"")]))
    return head + fragment * times + tail


@st.composite
def mutated(draw) -> bytes:
    doc = draw(st.sampled_from(SEEDS))
    kind = draw(st.sampled_from(["bytes", "truncate", "json", "numbers", "raw"]))
    if kind == "raw":
        return draw(st.binary(max_size=2000))
    if kind == "truncate":
        return doc[: draw(st.integers(0, len(doc)))]
    if kind == "json":
        try:
            obj = json.loads(doc)
        except (ValueError, RecursionError):
            obj = None
        if isinstance(obj, dict) and obj:
            for key in draw(st.lists(st.sampled_from(sorted(obj)), max_size=4)):
                if draw(st.booleans()):
                    obj[key] = draw(json_trees)
                else:
                    obj.pop(key, None)
            return json.dumps(obj).encode()
    if kind == "numbers":
        evil = draw(st.sampled_from([b"0", b"-1", b"4000000000", b"1e400", b"NaN", b"99999999999999999999",
                                     b"-0", b"0.5", b"", b"\"wide\""]))
        return re.sub(rb"\d+", lambda m: evil if draw(st.booleans()) else m.group(0), doc, count=40)
    data = bytearray(doc)
    for _ in range(draw(st.integers(1, 8))):
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(["flip", "delete", "insert", "dup", "url"]))
        if op == "flip":
            data[i] = draw(st.integers(0, 255))
        elif op == "delete":
            del data[i: i + draw(st.integers(1, 50))]
        elif op == "insert":
            data[i:i] = draw(st.sampled_from([b"<", b"{", b"[", b'"', b"&x;", b"<!ENTITY x 'y'>", b"\x00", b"}"]))
        elif op == "url":  # replace a quoted value by a hostile URL
            m = re.compile(rb'"[^"\n]{0,200}"').search(bytes(data), i)
            if m:
                data[m.start():m.end()] = json.dumps(draw(st.sampled_from(EVIL_STRINGS))).encode()
        else:
            j = draw(st.integers(i, min(len(data), i + 500)))
            data[i:i] = data[i:j]
    return bytes(data)


documents = st.one_of(
    mutated(), st.binary(max_size=500), st.sampled_from(SEEDS), json_documents(), xml_documents(),
    page_documents(), yaml_documents(), deep_documents(), repeated_documents(),
)
