"""Helpers shared by the dezoomers: safe XML parsing, lenient numbers, URL bits."""

from __future__ import annotations

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


def parse_xml(data: bytes) -> etree._Element | None:
    """The root element, or None when ``data`` is not well-formed XML or declares entities.

    No real Zoomify or DZI descriptor declares entities; refusing them outright also rules out
    entity-expansion bombs (libxml2 expands internal entities in attributes even when told not to).
    """
    if b"<!ENTITY" in data:
        return None
    try:
        root = etree.fromstring(strip_bom(data), parser=xml_parser())
    except (etree.XMLSyntaxError, ValueError):
        return None
    return root


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
