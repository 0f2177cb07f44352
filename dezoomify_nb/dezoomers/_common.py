"""Helpers shared by the dezoomers: bounded, safe XML and JSON parsing, lenient numbers, URL bits.

Parser work is bounded before a document becomes objects, whatever its encoding:

- JSON: at most :data:`MAX_JSON_NODES` values (counted as ``{``, ``[`` and ``,`` bytes, an upper bound,
  before parsing) and :data:`MAX_JSON_DEPTH` levels of nesting;
- XML: at most :data:`MAX_XML_NODES` nodes (``2·"<" + "="`` bytes, an upper bound of the elements, text
  nodes and attributes, counted before the full parse), only in encodings where ``<`` is that byte
  (UTF-8/16/32 and ASCII-compatible charsets, as libxml2 itself reports it), no entity declarations
  (decided on the parsed document's DTD, in any encoding), no DTD loaded, nothing fetched, 256 levels.

Over a bound, :class:`DocumentTooComplex` (a MetadataError) is raised; no real metadata comes near.
"""

from __future__ import annotations

import codecs
import json
import re
from itertools import chain
from typing import Any
from urllib.parse import urlsplit

from lxml import etree

from ..errors import MetadataError
from ..model import is_url

#: values in one JSON document: a 10,000-page IIIF manifest has a few hundred thousand
MAX_JSON_NODES = 2_000_000
#: nesting levels of a JSON document (real ones have fewer than 20)
MAX_JSON_DEPTH = 200
#: nodes (elements, text nodes, attributes) in one XML document: the largest WMTS capabilities have
#: a few hundred thousand
MAX_XML_NODES = 1_000_000
#: an XML document longer than this is checked (encoding, node count) before its full parse; this
#: much of it must hold the start of its root element
XML_PROBE_BYTES = 64 * 1024

_TOO_COMPLEX_HINT = ("Real image metadata is far smaller: check that the URL points to the image's metadata "
                     "(info.json, .dzi, ImageProperties.xml, ...); this server sent something else.")


class DocumentTooComplex(MetadataError):
    """A metadata document over a parser bound (values, nesting, nodes) or in a refused XML form."""

    #: auto-detection shows this reason first, with its hint: it explains the input best
    explains_input = True
    hint = _TOO_COMPLEX_HINT


def xml_parser(*, recover: bool = False) -> etree.XMLParser:
    """An lxml parser that never reads files or the network and never expands entities."""
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, dtd_validation=False,
        recover=recover,
    )


def strip_bom(data: bytes) -> bytes:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return data.lstrip()


_XML_DECL = re.compile(r"^\s*<\?xml[^>]*\?>")
_ENTITY = "<!ENTITY"
#: "<!ENTITY" as it appears in every encoding libxml2 detects on its own (UTF-16/32 with or without BOM)
_ENTITY_MARKERS = tuple({_ENTITY.encode(enc) for enc in ("utf-8", "utf-16-le", "utf-16-be", "utf-32-le",
                                                           "utf-32-be")})
#: what libxml2 says when it stops an entity expansion bomb (amplification limit, loops)
_EXPANSION_ERRORS = ("entity amplification", "entity reference loop")
#: Python codecs that write "<" as that byte but may also decode it from other bytes
_ESCAPING_CODECS = {"utf-7", "unicode-escape", "raw-unicode-escape", "punycode", "idna"}


def _declares_entities(data: bytes) -> bool:
    return any(marker in data for marker in _ENTITY_MARKERS)


def _entities_refused() -> DocumentTooComplex:
    return DocumentTooComplex(
        "the XML document declares entities (<!ENTITY ...>): refused, as no image metadata needs them",
        hint="Such a document can read local files or expand to gigabytes; " + _TOO_COMPLEX_HINT)


def _lt_is_one_byte(encoding: str | None) -> bool:
    """Is every ``<``, ``=`` of a document in ``encoding`` (as libxml2 names it) the ASCII byte?"""
    try:
        info = codecs.lookup(encoding or "utf-8")
    except LookupError:  # JAVA, C99 (\\u003c escapes), EBCDIC variants Python does not know, ...
        return False
    if info.name.startswith(("utf-16", "utf-32")):
        return True
    if info.name in _ESCAPING_CODECS or not getattr(info, "_is_text_encoding", False):
        return False
    try:
        return "<=".encode(info.name) == b"<=" and b"<=".decode(info.name) == "<="
    except (UnicodeError, ValueError):
        return False


def _check_encoding(root: etree._Element) -> None:
    encoding = root.getroottree().docinfo.encoding
    if not _lt_is_one_byte(encoding):
        raise DocumentTooComplex(
            f"XML in the {encoding} encoding is refused (metadata is read in UTF-8, UTF-16, UTF-32 or an "
            "ASCII-compatible charset)")


def _count_xml_nodes(data: bytes) -> None:
    nodes = 2 * data.count(b"<") + data.count(b"=")
    if nodes > MAX_XML_NODES:
        raise DocumentTooComplex(f"the XML document may hold {nodes:,} nodes, more than the {MAX_XML_NODES:,} "
                                 "a metadata document is allowed")


def _fromstring(data: bytes) -> etree._Element | None:
    """Parse with every bound checked; None when ``data`` is not well-formed XML."""
    if len(data) > XML_PROBE_BYTES:
        head = data[:XML_PROBE_BYTES]
        try:  # well-formed so far? (a streaming parse reports errors in order)
            xml_parser().feed(head)
            # libxml2 tells the encoding it reads the document in; the count below needs "<" to be a byte
            probe = etree.fromstring(head, parser=xml_parser(recover=True))
        except (etree.XMLSyntaxError, ValueError):
            return None
        if probe is None:
            return None  # no root element in the first XML_PROBE_BYTES: not a metadata document
        _check_encoding(probe)
        _count_xml_nodes(data)
    try:
        root = etree.fromstring(data, parser=xml_parser())
    except etree.XMLSyntaxError as exc:
        if any(sign in str(exc) for sign in _EXPANSION_ERRORS):  # libxml2 stopped an entity bomb
            raise _entities_refused() from None
        return None
    except ValueError:
        return None
    _check_encoding(root)
    dtd = root.getroottree().docinfo.internalDTD
    if dtd is not None and any(True for _ in dtd.iterentities()):
        raise _entities_refused()
    return root


def parse_xml(data: bytes) -> etree._Element | None:
    """The root element, or None when ``data`` is not well-formed XML.

    Raises :class:`DocumentTooComplex` when the document declares entities (in any encoding: the
    parsed document's DTD decides), is in an encoding where ``<`` is not one byte (UTF-7, EBCDIC, ...),
    or may hold more than :data:`MAX_XML_NODES` nodes. No real Zoomify or DZI descriptor declares
    entities; refusing them outright rules out XXE and entity-expansion bombs (libxml2 expands internal
    entities in attributes even when told not to; its amplification limit stays on). The parser itself
    never loads a DTD, never touches the network and never resolves external entities either. A
    document that does not decode as its declared encoding (or UTF-8) and is not valid UTF-8 is read
    again as Latin-1, as browsers do with mislabelled pages.
    """
    if _declares_entities(data):  # the cheap early refusal; the parsed DTD is checked below in any encoding
        raise _entities_refused()
    data = strip_bom(data)
    root = _fromstring(data)
    if root is not None:
        return root
    try:
        data.decode("utf-8")
        return None  # valid UTF-8 (or another declared encoding lxml already tried): really broken
    except UnicodeDecodeError:
        pass
    text = _XML_DECL.sub("", data.decode("latin-1"), count=1)
    return _fromstring(text.encode("utf-8"))


def _json_too_deep(doc: list[Any] | dict[str, Any]) -> bool:
    """Do ``doc``'s non-empty lists and dicts nest more than :data:`MAX_JSON_DEPTH` levels?

    Walked level by level with C-level iteration (no recursion, no Python call per node).
    """
    lists, dicts = ([doc], []) if type(doc) is list else ([], [doc])
    for _ in range(MAX_JSON_DEPTH):
        children = list(chain(chain.from_iterable(lists), chain.from_iterable(map(dict.values, dicts))))
        lists = [c for c in children if type(c) is list and c]
        dicts = [c for c in children if type(c) is dict and c]
        if not lists and not dicts:
            return False
    return True


def load_json(data: bytes) -> Any:
    """Strict JSON (UTF-8, optional BOM) or None when ``data`` is not JSON.

    Invalid UTF-8, syntax errors and integers too long to convert give None. An array or object that
    may hold more than :data:`MAX_JSON_NODES` values (counted before parsing) or nests deeper than
    :data:`MAX_JSON_DEPTH` levels (``[[[[…`` × 100,000 included) raises :class:`DocumentTooComplex`.
    """
    data = strip_bom(data)
    if data[:1] not in (b"{", b"["):  # a scalar or not JSON: nothing to count, nothing nests
        try:
            return json.loads(data.decode("utf-8"))
        except ValueError:
            return None
    nodes = data.count(b"{") + data.count(b"[") + data.count(b",")
    if nodes > MAX_JSON_NODES:
        raise DocumentTooComplex(f"the JSON document may hold {nodes:,} values, more than the "
                                 f"{MAX_JSON_NODES:,} a metadata document is allowed")
    too_deep = DocumentTooComplex(f"the JSON document nests more than {MAX_JSON_DEPTH} levels deep")
    try:
        doc = json.loads(data.decode("utf-8"))
    except RecursionError:
        raise too_deep from None
    except ValueError:
        return None
    if isinstance(doc, dict | list) and _json_too_deep(doc):
        raise too_deep
    return doc


def local_name(el: etree._Element) -> str:
    tag = el.tag
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


def attr(el: etree._Element, name: str) -> str | None:
    """Attribute ``name`` of ``el``, matched case-insensitively and ignoring namespaces."""
    want = name.lower()
    for k, v in el.attrib.items():
        if str(k).rsplit("}", 1)[-1].lower() == want:
            return str(v)
    return None


def to_int(value: object, what: str, default: int | None = None) -> int:
    """A JSON number or a numeric string as an int; MetadataError otherwise."""
    if value is None or value == "":
        if default is not None:
            return default
        raise MetadataError(f"missing {what}")
    if isinstance(value, bool):
        raise MetadataError(f"invalid {what}: {value!r}")
    if isinstance(value, int):
        return value
    try:
        f = float(str(value).strip()) if not isinstance(value, float) else value
    except ValueError:
        raise MetadataError(f"invalid {what}: {value!r}") from None
    if f != f or f in (float("inf"), float("-inf")) or f != int(f):
        raise MetadataError(f"invalid {what}: {value!r}")
    return int(f)


def referer(url: str) -> tuple[tuple[str, str], ...]:
    """Level headers as dezoomify-rs sends them: ``Referer: <tile (0,0) URL>`` (http(s) only)."""
    return (("Referer", url),) if is_url(url) else ()


def split_query(url: str) -> str:
    """``url`` without its query string and fragment (local paths are returned unchanged)."""
    if not is_url(url):
        return url
    parts = urlsplit(url)
    return parts._replace(query="", fragment="").geturl()


def last_segment(url: str) -> str:
    path = urlsplit(url).path if is_url(url) else url
    return path.rstrip("/").rsplit("/", 1)[-1]
