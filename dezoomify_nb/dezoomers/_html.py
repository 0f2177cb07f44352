"""Bounded, regex-based reading of hostile HTML pages for :mod:`dezoomify_nb.dezoomers.page`.

No JavaScript is run and no DOM is built: a page is decoded (at most :data:`MAX_PAGE_BYTES`), its
``<base>``, ``<link>``, ``<meta>``, ``<iframe>`` and ``<title>`` tags are read with linear regular
expressions (attribute values with their HTML entities undone), and :func:`normalize` gives a copy of
the text with JavaScript string escapes (``\\/``, ``\\u002F``, ``\\x2F``, ``\\"``) and HTML entities
undone, in which URLs and viewer configurations are searched. :func:`token_around` expands a match to
the URL-like token around it with bounded C-level searches, so no search is quadratic in the page size.
"""

from __future__ import annotations

import codecs
import html
import ipaddress
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ..model import is_url, resolve_relative
from ._common import strip_bom

#: only this much of a page is read (real viewer pages are far smaller)
MAX_PAGE_BYTES = 4 * 1024 * 1024
#: at most this many tags of each kind are kept
MAX_TAGS = 2000
#: URL-like tokens are cut at this many characters on each side of the match that found them
MAX_TOKEN_SIDE = 2048

_HTML_MARKERS = (b"<!doctype html", b"<html")
_TAG_MARKERS = (b"<head", b"<body", b"<iframe", b"<script", b"<meta", b"<title", b"<div", b"<link")
_CHARSET_RE = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]{1,40})""", re.I)
_TAG_RE = re.compile(r"<(base|link|meta|iframe|frame)\b([^<>]{0,4000})>", re.I)
_ATTR_RE = re.compile(r"""([^\s"'<>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?""")
_TITLE_RE = re.compile(r"<title\b[^<>]{0,200}>([^<]{0,2000})</title", re.I)
_JS_ESCAPE_RE = re.compile(r"\\(?:u([0-9a-fA-F]{4})|x([0-9a-fA-F]{2})|([\\/\"'&<>=]))")
#: charsets no real page is in (a page declaring UTF-16 in ASCII bytes is not UTF-16) or that run escapes
_ODD_CODECS = {"utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be", "utf-7", "idna", "punycode",
               "unicode-escape", "raw-unicode-escape"}
#: characters that end a URL-like token (quotes, brackets, spaces, JS punctuation)
TOKEN_DELIMITERS = tuple(" \t\r\n\"'<>()[]{}`;|\\^")  # not ",": IIIF regions and sizes have commas


def looks_like_html(data: bytes) -> bool:
    """Does ``data`` start like an HTML document (what browsers would render as a page)?"""
    head = strip_bom(data[:4096]).lower()
    if not head or head[:1] in (b"{", b"["):
        return False
    if any(m in head for m in _HTML_MARKERS):
        return True
    return head[:1] == b"<" and not head.startswith(b"<?xml") and any(m in head for m in _TAG_MARKERS)


def decode(data: bytes) -> str:
    """The page as text: its declared charset when Python knows it, else UTF-8 (bad bytes replaced)."""
    data = data[:MAX_PAGE_BYTES]
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", "replace")
    m = _CHARSET_RE.search(data[:4096])
    if m:
        name = m.group(1).decode("ascii", "replace")
        try:
            codec = codecs.lookup(name)
        except LookupError:
            codec = None
        if codec is not None and getattr(codec, "_is_text_encoding", False) and codec.name not in _ODD_CODECS:
            try:
                return data.decode(codec.name, "replace")
            except (LookupError, ValueError, TypeError):  # not a text encoding (rot13, base64, …)
                pass
    return data.decode("utf-8", "replace")


def _js_unescape(m: re.Match[str]) -> str:
    code = m.group(1) or m.group(2)
    return chr(int(code, 16)) if code else m.group(3)


def normalize(text: str) -> str:
    """``text`` with JavaScript string escapes (twice, for JSON inside JSON strings) and HTML entities
    undone: ``https:\\/\\/h\\u002Fa.dzi`` and ``a.php?x=1&amp;FIF=b`` read as written in a browser."""
    for _ in range(2):
        if "\\" not in text:
            break
        text = _JS_ESCAPE_RE.sub(_js_unescape, text)
    return html.unescape(text) if "&" in text else text


@dataclass
class Tag:
    name: str
    attrs: dict[str, str] = field(default_factory=dict)

    def get(self, key: str) -> str:
        return self.attrs.get(key, "").strip()


def tags(text: str) -> list[Tag]:
    """The ``<base>``, ``<link>``, ``<meta>``, ``<iframe>`` and ``<frame>`` tags, attributes lower-cased
    and entity-decoded (tags written by scripts, ``'<iframe src=…>'``, are found too)."""
    out: list[Tag] = []
    for m in _TAG_RE.finditer(text):
        attrs: dict[str, str] = {}
        for a in _ATTR_RE.finditer(m.group(2)):
            value = next((v for v in a.group(2, 3, 4) if v is not None), "")
            attrs.setdefault(a.group(1).lower(), html.unescape(value))
        out.append(Tag(m.group(1).lower(), attrs))
        if len(out) >= MAX_TAGS:
            break
    return out


def title(text: str) -> str | None:
    m = _TITLE_RE.search(text)
    if not m:
        return None
    return " ".join(html.unescape(m.group(1)).split()) or None


def base_url(page_url: str, found: list[Tag]) -> str:
    """The URL relative references resolve against: ``<base href>`` (resolved against the page)."""
    for tag in found:
        if tag.name == "base" and tag.get("href"):
            href = absolute(page_url, tag.get("href"))
            if href:
                return href
            break
    return page_url


def absolute(base: str, ref: str) -> str | None:
    """``ref`` resolved against ``base``, or None when it is not something to fetch.

    Templates, ``data:``/``javascript:`` URLs and (for a web page) anything that is not http(s) — a
    page must never make us read a local file — give None.
    """
    ref = ref.strip()
    if not ref or len(ref) > 4000 or any(c in ref for c in "\n\r\t<>\"") or "{{" in ref or "${" in ref:
        return None
    scheme = ref.split(":", 1)[0].lower() if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", ref) else ""
    if scheme and scheme not in ("http", "https"):
        return None
    if is_url(base):
        if ref.startswith("//"):
            ref = base.split(":", 1)[0] + ":" + ref
        try:
            url = resolve_relative(base, ref)
            urlsplit(url).port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            return None
        return url if is_url(url) else None
    if ref.startswith("//"):
        return None
    return resolve_relative(base, ref)


def token_around(text: str, start: int, end: int) -> tuple[int, int]:
    """The span of the URL-like token containing ``text[start:end]`` (cut at :data:`MAX_TOKEN_SIDE`)."""
    lo = max(0, start - MAX_TOKEN_SIDE)
    hi = min(len(text), end + MAX_TOKEN_SIDE)
    left = max(text.rfind(d, lo, start) for d in TOKEN_DELIMITERS)
    right = min((i for i in (text.find(d, end, hi) for d in TOKEN_DELIMITERS) if i >= 0), default=hi)
    return (left + 1 if left >= 0 else lo), right


def _site(host: str) -> str:
    """The registrable part of a host name, approximately (``a.b.museum.org`` → ``museum.org``)."""
    host = host.lower().rstrip(".")
    try:
        ipaddress.ip_address(host.strip("[]"))
        return host
    except ValueError:
        pass
    labels = host.split(".")
    if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in ("co", "com", "ac", "org", "gov", "edu", "net",
                                                                     "or", "ne", "go", "gv"):
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


def same_site(a: str, b: str) -> bool:
    """Are two URLs of the same site (same registrable domain; local paths go with local paths)?"""
    if not is_url(a) or not is_url(b):
        return not is_url(a) and not is_url(b)
    try:
        ha, hb = urlsplit(a).hostname or "", urlsplit(b).hostname or ""
    except ValueError:
        return False
    return bool(ha) and _site(ha) == _site(hb)
