"""Helpers shared by the dezoomers: safe XML parsing, lenient numbers, URL bits."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

from lxml import etree

from ..errors import MetadataError
from ..model import is_url


def xml_parser() -> etree.XMLParser:
    """An lxml parser that never reads files or the network and never expands entities."""
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, dtd_validation=False
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


def _declares_entities(data: bytes) -> bool:
    return any(marker in data for marker in _ENTITY_MARKERS)


def parse_xml(data: bytes) -> etree._Element | None:
    """The root element, or None when ``data`` is not well-formed XML or declares entities.

    No real Zoomify or DZI descriptor declares entities; refusing them outright (in any encoding) rules
    out XXE and entity-expansion bombs (libxml2 expands internal entities in attributes even when told
    not to). The parser itself never loads a DTD, never touches the network and never resolves external
    entities either. A document that does not decode as its declared encoding (or UTF-8) and is not
    valid UTF-8 is read again as Latin-1, as browsers do with mislabelled pages.
    """
    if _declares_entities(data):
        return None
    data = strip_bom(data)
    try:
        return etree.fromstring(data, parser=xml_parser())
    except (etree.XMLSyntaxError, ValueError):
        pass
    try:
        data.decode("utf-8")
        return None  # valid UTF-8 (or another declared encoding lxml already tried): really broken
    except UnicodeDecodeError:
        pass
    text = _XML_DECL.sub("", data.decode("latin-1"), count=1)
    try:
        return etree.fromstring(text.encode("utf-8"), parser=xml_parser())
    except (etree.XMLSyntaxError, ValueError):
        return None


def load_json(data: bytes) -> Any:
    """Strict JSON (UTF-8, optional BOM) or None when ``data`` is not JSON.

    Never raises: invalid UTF-8, syntax errors, integers too long to convert and nesting deep enough
    to exhaust the interpreter's recursion limit (``[[[[…`` × 100,000) all give None.
    """
    try:
        return json.loads(strip_bom(data).decode("utf-8"))
    except (ValueError, RecursionError):
        return None


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
