"""The pattern scanners of :mod:`dezoomify_nb.dezoomers.page`: normalized page text → candidates.

Every search is linear or bounded: anchors (``info.json``, ``.dzi``, ``manifest``, ``FIF=``, …) are
found with one regular expression and expanded to their URL-like token with bounded C-level searches;
JavaScript values (``tileSources: …``, ``IIPMooViewer(…, {…})``) are cut at their matching bracket and
parsed with the lenient :mod:`._json5` parser; counts are capped.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from ..errors import DezoomifyError
from . import _json5, deepzoom, iiif
from ._common import load_json
from ._html import Tag, absolute, token_around

MAX_ANCHORS = 4000
MAX_MATCHES = 64
#: ``tileSources`` settings read, and the longest JavaScript value parsed
MAX_TILESOURCES = 16
MAX_VALUE_CHARS = 256 * 1024
#: variable lookups (``tileSources: [mainImage]``) per page
MAX_LOOKUPS = 8
#: candidates listed at most
MAX_CANDIDATES = 64

KIND_MANIFEST = "IIIF manifest"
KIND_IIIF = "IIIF image"
KIND_DZI = "Deep Zoom"
KIND_ZOOMIFY = "Zoomify"
KIND_KRPANO = "krpano"
KIND_IIP = "IIPImage"
KIND_TILESOURCE = "OpenSeadragon tile source"

# confidence groups, best first; G_SERVICE (services known from image requests, thumbnails, service objects)
# is dropped when a manifest was found: the manifest lists those images, with their titles
G_LINK, G_PARAM, G_MANIFEST_URL, G_INFO, G_SERVICE, G_OSD, G_DZI, G_ZOOMIFY, G_KRPANO, G_IIP = range(10)
_MANIFEST_GROUPS = (G_LINK, G_PARAM, G_MANIFEST_URL)


@dataclass(frozen=True)
class Candidate:
    """A tile source found in a page: ``url`` opened by ``dezoomer``, or an ``inline`` description."""

    kind: str
    url: str
    #: the dezoomer that opens ``url`` (``"auto"``: try the formats in turn); for ``inline``, its parser
    dezoomer: str
    #: an inline descriptor (Deep Zoom XML/JSON, IIIF info JSON) written in the page ``url``
    inline: bytes = b""
    #: what the inline descriptor's relative URLs resolve against (the page's ``<base href>``)
    base: str = ""

    @property
    def label(self) -> str:
        return f"{self.kind} (inline) {self.url}" if self.inline else f"{self.kind} {self.url}"


_ANCHOR_RE = re.compile(
    r"info\.json|\.dzi\b|imageproperties\.xml|manifest|iiif-content=|fif=|"
    r"/(?:default|native|color|colour|gray|grey|bitonal)\.(?:jpe?g|png|gif|webp|tiff?)", re.I)
_PARAM_RE = re.compile(r"[?&#](?:manifest|manifestUri|manifestId|manifestUrl|iiif-content|iiif_content)=([^&#\s]+)",
                       re.I)
_MANIFEST_KEY_RE = re.compile(
    r"""\b(?:manifestId|manifestUri|manifestUrl|data-manifest(?:-url)?|data-iiif-manifest|iiifManifest|manifest)"""
    r"""["']?\s*[:=]\s*["']([^"'\s<>]{1,2000})["']""", re.I)
_SERVICE_MARK_RE = re.compile(r"ImageService[23]?|iiif\.io/api/image/[23]/context\.json")
_TILESOURCES_RE = re.compile(r"""\btileSources["']?\s*[:=]\s*""")
_DZI_XML_RE = re.compile(r"""<Image\b(?=[^<>]{0,2000}TileSize)[^<>]{0,2000}>\s*<Size\b[^<>]{0,500}>\s*"""
                         r"""(?:</Size>\s*)?</Image>""")
_ZOOMIFY_PATH_RE = re.compile(r"""zoomifyImagePath["']?\s*[:=]\s*["']?([^"'&\s<>]{1,2000})""", re.I)
_ZOOMIFY_SHOW_RE = re.compile(r"""Z\.showImage\s*\(\s*["'][^"']{0,200}["']\s*,\s*["']([^"']{1,2000})["']""")
_ZOOMIFY_TEMPLATE_RE = re.compile(r"""["']([^"'\s<>]{0,2000}?)/?\{(?:TileGroup|g)\}/\{z\}-\{x\}-\{y\}""", re.I)
_EMBEDPANO_RE = re.compile(r"""embedpano\s*\(\s*\{""")
_KRPANO_XML_RE = re.compile(r"""\bxml\s*:\s*["']([^"']{1,2000})["']""")
_IIPMOO_RE = re.compile(r"""IIPMooViewer\s*\(\s*["'][^"']{0,200}["']\s*,\s*(?=\{)""")
_FIF_RE = re.compile(r"[?&]FIF=[^&#\s]+", re.I)
_BRACKETS_RE = re.compile(r"""[\[\]{}]|"[^"\n]*"|'[^'\n]*'""")
_STRING_RE = re.compile(r""""([^"\n]{0,4000})"|'([^'\n]{0,4000})'""")
_IDENT_RE = re.compile(r"[A-Za-z_$][\w$.]{0,100}")
_JS_WORDS = {"true", "false", "null", "undefined", "new", "function", "this"}
_TRAILING = ".,:!?"


# --- tokens -----------------------------------------------------------------------------------------
def _stem_ok(path: str, suffix: str) -> bool:
    """Is there a real name before ``suffix`` (``"/info.json"`` alone comes from string concatenation)?"""
    stem = path[: len(path) - len(suffix)] if path.lower().endswith(suffix) else path
    return bool(re.search(r"[A-Za-z0-9]", stem))


def _content_state(value: str) -> str | None:
    """The manifest URL of an ``iiif-content`` value: a URL, or base64url-encoded JSON naming one."""
    if value.startswith(("http://", "https://", "/")):
        return value
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        return None
    doc = load_json(raw)
    stack, steps = [doc], 0
    while stack and steps < 200:
        steps += 1
        node = stack.pop()
        if isinstance(node, dict):
            ident = node.get("id") or node.get("@id")
            kind = str(node.get("type") or node.get("@type") or "")
            if isinstance(ident, str) and kind.lower().endswith("manifest"):
                return ident
            stack.extend(v for v in node.values() if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            stack.extend(node[:50])
    return None


def _token_candidates(token: str, base: str, web_manifests: set[str]) -> Iterator[tuple[int, Candidate]]:
    token = token.rstrip(_TRAILING)
    for m in _PARAM_RE.finditer(token):
        value = unquote(m.group(1))
        target = _content_state(value) if "content" in m.group(0).lower() else value
        url = absolute(base, target) if target else None
        if url:
            yield G_PARAM, Candidate(KIND_MANIFEST, url, "iiif_manifest")
    if _PARAM_RE.search(token):
        return  # a viewer URL: its parameter is the candidate, not the viewer
    url = absolute(base, token)
    raw = re.split(r"[?#]", token, maxsplit=1)[0]  # as written: prose ("see info.json") is not a URL
    if not url or not raw:
        return
    try:
        path = urlsplit(url).path
    except ValueError:
        return
    low, raw_low = path.lower(), raw.lower()
    if raw_low.endswith("info.json") and "/" in raw and _stem_ok(raw, "info.json"):
        yield G_INFO, Candidate(KIND_IIIF, url, "iiif")
    elif raw_low.endswith(".dzi") and _stem_ok(raw.rsplit("/", 1)[-1], ".dzi"):
        yield G_DZI, Candidate(KIND_DZI, url, "deepzoom")
    elif raw_low.endswith("imageproperties.xml") and "/" in raw:
        yield G_ZOOMIFY, Candidate(KIND_ZOOMIFY, url, "zoomify")
    elif _FIF_RE.search(token) and path.strip("/") and "/" in raw:
        yield G_IIP, Candidate(KIND_IIP, url, "IIPImage")
    elif raw_low.endswith(("/manifest", "/manifest/", "manifest.json")) and "/" in raw:
        levels = [seg for seg in low.split("/") if seg]
        if url not in web_manifests and (len(levels) >= 2 or "iiif" in url.lower()) and _stem_ok(raw, "manifest"):
            yield G_MANIFEST_URL, Candidate(KIND_MANIFEST, url, "iiif_manifest")
    elif "/" in raw:
        try:
            info, derived = iiif.info_url(url)
        except DezoomifyError:
            return
        if derived and _stem_ok(info, "/info.json"):
            yield G_SERVICE, Candidate(KIND_IIIF, info, "iiif")


def _anchored(text: str, base: str, web_manifests: set[str]) -> Iterator[tuple[int, Candidate]]:
    done_until = -1
    for n, m in enumerate(_ANCHOR_RE.finditer(text)):
        if n >= MAX_ANCHORS:
            break
        if m.start() < done_until:
            continue
        lo, hi = token_around(text, m.start(), m.end())
        done_until = hi
        yield from _token_candidates(text[lo:hi], base, web_manifests)


def _image_services(text: str) -> Iterator[str]:
    """The ids of IIIF image service objects written in the page (``{"id": …, "type": "ImageService3"}``,
    a v2 ``{"@context": …image/2/context.json, "@id": …}``); full inline info objects are left to
    ``tileSources`` and the ``iiif`` dezoomer."""
    for m in _first(_SERVICE_MARK_RE.finditer(text)):
        lo, hi = max(0, m.start() - 1000), m.end() + 1000  # a service object is small: read around the mark
        for obj in _json5.iter_objects(text[lo:hi], must_contain=("ImageService", "iiif.io/api/image")):
            ident = _service_id(obj)
            if ident:
                yield ident


def _service_id(obj: dict[str, Any]) -> str | None:
    ident = obj.get("id", obj.get("@id"))
    if not isinstance(ident, str) or "width" in obj or "height" in obj:
        return None
    kind = str(obj.get("type", obj.get("@type")) or "")
    marks = str(obj.get("@context", ""))[:500] + str(obj.get("profile", ""))[:500]
    if "ImageService" in kind or "iiif.io/api/image" in marks:
        return ident
    return None


# --- JavaScript values ------------------------------------------------------------------------------
def _bracket_end(text: str, pos: int) -> int | None:
    depth = 0
    for m in _BRACKETS_RE.finditer(text, pos, min(len(text), pos + MAX_VALUE_CHARS)):
        t = m.group()
        if t in "[{":
            depth += 1
            if depth > _json5.MAX_DEPTH:
                return None
        elif t in "]}":
            depth -= 1
            if depth == 0:
                return m.end()
    return None


def _lookup(text: str, name: str, depth: int, budget: list[int]) -> Any:
    """The value assigned to the variable ``name`` (``var name = {…}``, ``name = "…"``)."""
    if budget[0] <= 0 or len(name) < 2:
        return None
    budget[0] -= 1
    pattern = re.compile(re.escape(name) + r"\s*=\s*(?=[\[{\"'])")
    for n, m in enumerate(pattern.finditer(text)):
        if n >= 20:
            break
        before = text[m.start() - 1 : m.start()]
        if not before or not (before.isalnum() or before in "_$."):
            return _js_value(text, m.end(), depth + 1, budget)
    return None


def _js_value(text: str, pos: int, depth: int = 0, budget: list[int] | None = None) -> Any:
    """The JS value written at ``text[pos]``: a literal, or a variable holding one (one lookup deep; at most
    ``budget[0]`` lookups in all, each a search of the whole text)."""
    budget = [MAX_LOOKUPS] if budget is None else budget
    if depth > 2:
        return None
    c = text[pos : pos + 1]
    if c in ("'", '"'):
        m = _STRING_RE.match(text, pos)
        return next((g for g in m.groups() if g is not None), None) if m else None
    if c in ("[", "{"):
        end = _bracket_end(text, pos)
        if end is None:
            return None
        try:
            return _json5.loads(text, pos, end)
        except ValueError:  # e.g. [mainImage, other]: resolve the names
            if depth > 0 or c != "[":
                return None
            names = [n for n in _IDENT_RE.findall(text[pos + 1 : min(end, pos + 2000)]) if n not in _JS_WORDS]
            return [_lookup(text, n, depth, budget) for n in names[:8]]
    m = _IDENT_RE.match(text, pos)
    if m and depth == 0 and m.group() not in _JS_WORDS:
        return _lookup(text, m.group(), depth, budget)
    return None


def _valid_inline(parser: str, blob: bytes) -> bool:
    try:
        if parser == "deepzoom":
            return bool(deepzoom.parse_dzi(blob))
        return bool(iiif.find_infos(blob))
    except DezoomifyError:
        return False


def _tile_source(value: Any, url: str, base: str, depth: int = 0) -> Iterator[Candidate]:
    """Candidates of an OpenSeadragon ``tileSources`` value (a string, an object or a list of them)."""
    if depth > 4 or value is None:
        return
    if isinstance(value, list):
        for item in value[:MAX_MATCHES]:
            yield from _tile_source(item, url, base, depth + 1)
    elif isinstance(value, str):
        yield from _tile_source_url(value, base)
    elif isinstance(value, dict):
        kind = str(value.get("type") or "").lower()
        blob = json.dumps(value, default=str).encode()
        if kind == "zoomifytileservice" and isinstance(value.get("tilesUrl"), str):
            folder = absolute(base, value["tilesUrl"])
            if folder:
                yield Candidate(KIND_ZOOMIFY, folder.rstrip("/") + "/ImageProperties.xml", "zoomify")
        elif "TileSize" in blob.decode() and _valid_inline("deepzoom", blob):
            yield Candidate(KIND_DZI, url, "deepzoom", blob, base)
        elif "width" in value and "height" in value and kind not in ("image", "legacy-image-pyramid") \
                and _valid_inline("iiif", blob):
            yield Candidate(KIND_IIIF, url, "iiif", blob, base)
        elif isinstance(value.get("@id", value.get("id")), str) and "iiif.io/api/image" in blob.decode():
            yield from _tile_source_url(value.get("@id", value.get("id")), base)
        elif "tileSource" in value:
            yield from _tile_source(value["tileSource"], url, base, depth + 1)
        elif isinstance(value.get("url"), str) and kind not in ("image", "legacy-image-pyramid"):
            yield from _tile_source_url(value["url"], base)


def _tile_source_url(value: str, base: str) -> Iterator[Candidate]:
    if value.lstrip().startswith("<"):
        return  # inline XML: found by _DZI_XML_RE
    url = absolute(base, value)
    if not url:
        return
    low = urlsplit(url).path.lower()
    if low.endswith("imageproperties.xml"):
        yield Candidate(KIND_ZOOMIFY, url, "zoomify")
    elif low.endswith((".dzi", ".xml")):
        yield Candidate(KIND_DZI, url, "deepzoom")
    elif low.endswith("info.json"):
        yield Candidate(KIND_IIIF, url, "iiif")
    elif low.endswith(".json"):
        yield Candidate(KIND_TILESOURCE, url, "auto")
    else:
        info, derived = iiif.info_url(url) if "{{" not in url else (url, False)
        yield Candidate(KIND_IIIF, info if derived else url.rstrip("/") + "/info.json", "iiif")


# --- the scan ---------------------------------------------------------------------------------------
def _first(matches: Iterator[re.Match[str]]) -> Iterator[re.Match[str]]:
    return itertools.islice(matches, MAX_MATCHES)


def _folder_props(base: str, path: str) -> str | None:
    path = path.strip()
    if path.lower().endswith(".zif"):
        return None  # single-file Zoomify: not supported
    if not path.lower().endswith(".xml"):
        path = path.rstrip("/") + "/ImageProperties.xml"
    return absolute(base, path)


def scan(url: str, base: str, tags: list[Tag], text: str) -> list[Candidate]:
    """Every candidate of a page, best first (see :mod:`.page`): ``url`` is the page, ``base`` what its
    relative URLs resolve against, ``tags`` its tags, ``text`` its :func:`~._html.normalize`\\ d text."""
    groups: dict[int, dict[Candidate, None]] = {}

    def add(group: int, cand: Candidate | None) -> None:
        found = groups.setdefault(group, {})
        if cand is not None and len(found) < MAX_CANDIDATES:
            found.setdefault(cand)

    web_manifests = {absolute(base, t.get("href")) for t in tags
                     if t.name == "link" and "manifest" in t.get("rel").lower().split()}
    for t in tags:
        if t.name == "link" and "alternate" in t.get("rel").lower().split() and t.get("href"):
            kind, href = t.get("type").lower(), absolute(base, t.get("href"))
            if href and "json" in kind and ("iiif" in kind or "manifest" in href.lower()):
                add(G_LINK, Candidate(KIND_MANIFEST, href, "iiif_manifest"))
    for group, cand in _token_candidates(url, base, web_manifests):  # the page's own ?manifest=
        if group == G_PARAM:
            add(group, cand)
    for m in _MANIFEST_KEY_RE.finditer(text):
        value = m.group(1)
        target = absolute(base, value) if "webmanifest" not in value.lower() and ("/" in value or "." in value) \
            else None
        add(G_PARAM, Candidate(KIND_MANIFEST, target, "iiif_manifest") if target and target != url else None)
    for group, cand in _anchored(text, base, web_manifests | {url}):
        add(group, cand)
    for service in _image_services(text):
        info = absolute(base, service if service.endswith("info.json") else service.rstrip("/") + "/info.json")
        add(G_SERVICE, Candidate(KIND_IIIF, info, "iiif") if info else None)
    lookups = [MAX_LOOKUPS]
    for n, m in enumerate(_TILESOURCES_RE.finditer(text)):
        if n >= MAX_TILESOURCES:
            break
        for cand in _tile_source(_js_value(text, m.end(), budget=lookups), url, base):
            add(G_OSD, cand)
    for m in _first(_DZI_XML_RE.finditer(text)):
        blob = m.group().encode()
        if _valid_inline("deepzoom", blob):
            add(G_OSD, Candidate(KIND_DZI, url, "deepzoom", blob, base))
    for regex in (_ZOOMIFY_PATH_RE, _ZOOMIFY_SHOW_RE, _ZOOMIFY_TEMPLATE_RE):
        for m in _first(regex.finditer(text)):
            props = _folder_props(base, m.group(1))
            add(G_ZOOMIFY, Candidate(KIND_ZOOMIFY, props, "zoomify") if props else None)
    for m in _first(_EMBEDPANO_RE.finditer(text)):
        end = text.find("}", m.end(), m.end() + 4000)
        x = _KRPANO_XML_RE.search(text, m.end(), end if end >= 0 else m.end() + 4000)
        xml = absolute(base, x.group(1)) if x and "%" not in x.group(1) else None
        add(G_KRPANO, Candidate(KIND_KRPANO, xml, "krpano") if xml else None)
    for m in _first(_IIPMOO_RE.finditer(text)):
        opts = _js_value(text, m.end())
        if isinstance(opts, dict) and isinstance(opts.get("image"), str) and opts["image"].strip():
            server = opts.get("server") if isinstance(opts.get("server"), str) else "/fcgi-bin/iipsrv.fcgi"
            image = opts["image"].split(",")[0].strip()
            iip = absolute(base, f"{server}?FIF={image}")
            add(G_IIP, Candidate(KIND_IIP, iip, "IIPImage") if iip else None)
    if any(c.kind == KIND_MANIFEST for g in _MANIFEST_GROUPS for c in groups.get(g, [])):
        groups.pop(G_SERVICE, None)
    out: dict[Candidate, None] = {}
    for _, cands in sorted(groups.items()):  # a candidate found twice keeps its best place
        for c in cands:
            if len(out) < MAX_CANDIDATES:
                out.setdefault(c)
    return list(out)
