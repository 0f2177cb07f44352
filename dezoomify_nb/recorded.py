"""What a viewer requested, as a source: a browser's recording (:mod:`.browser`) or a HAR file.

A :class:`Recording` lists the requests a page made (URL, status, kind, request headers) with the bodies of
the documents worth reading (JSON, XML, text; never images), and the cookies. :func:`candidates` finds in
it, best first:

1. **metadata** the viewer read: IIIF manifests (then their image services are not listed apart), IIIF
   ``info.json``, Deep Zoom ``.dzi``/XML/JSON, Zoomify ``ImageProperties.xml``, krpano XML, IIPImage ``OBJ``
   replies — by URL, or by their body when the URL says nothing (an API answering an ``info.json``);
2. **tiles** seen without their metadata (:func:`~.dezoomers.tile_url.match`), one group per image:
   opened from the tile of the deepest level seen (its metadata, else its grid probed).

:func:`open_recording` opens each candidate with the ordinary driver (:func:`~.resolve.resolve_scoped`),
its ``pages`` filled with the recorded bodies: a document the browser already fetched is not fetched
again. The images' tiles are requested with the headers the viewer sent for them (``Referer``, ``Origin``,
``Authorization``, ``X-…``) and the recorded cookies (each to the hosts it was sent to, or its domain).

Trust: entries other than http(s) GETs are ignored (a HAR, even a local one, leads only to http(s)); a
body over ``max_metadata_bytes`` is dropped (fetched again if needed), recorded bodies add up to at most
:data:`MAX_RECORDED_BYTES`, and :data:`MAX_EXCHANGES` requests are read.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from .cache import TileCache
from .errors import NOTICE, DezoomifyError, FetchError, MetadataError, NoDezoomerFound
from .model import Image, ImageRef
from .net import NetConfig
from .net.cookies import Cookie, CookieSet
from .net.local import is_http
from .resolve import scoped

log = logging.getLogger("dezoomify_nb.recorded")

MiB = 1 << 20
#: requests read from a recording (a HAR's entries past it are ignored)
MAX_EXCHANGES = 20_000
#: bytes of recorded bodies kept in all (past it, documents are fetched again when needed)
MAX_RECORDED_BYTES = 32 * MiB
#: the largest HAR file read (one with every tile embedded in base64 is large; bodies are dropped as read)
MAX_HAR_BYTES = 256 * MiB
#: memory a HAR document takes while parsed, per byte of the file (its text, then its strings and objects)
HAR_PARSE_FACTOR = 4
#: candidates opened at most
MAX_CANDIDATES = 16
MAX_COOKIES = 1000
#: request headers of the viewer reused for its tiles (cookies are carried apart, with their scope)
CARRIED_HEADERS = frozenset({"referer", "origin", "authorization"})
TEXT_TYPE = re.compile(r"json|xml|text/plain|octet-stream|^$", re.I)
_IMAGE_URL = re.compile(r"\.(?:jpe?g|png|webp|gif|avif|tiff?)(?:[?#].*)?$", re.I)


@dataclass(frozen=True)
class Exchange:
    """One request of the viewer and what came back."""

    url: str
    status: int = 200
    #: the browser's resource type (``document``, ``xhr``, ``fetch``, ``image``, …) or ""
    resource_type: str = ""
    content_type: str = ""
    request_headers: tuple[tuple[str, str], ...] = ()
    #: the body when recorded (documents only, capped), else None
    body: bytes | None = None
    #: the document (page or frame) that made the request, when known
    frame: str = ""


@dataclass
class Recording:
    """The requests a page made, in order, and its cookies."""

    page: str
    exchanges: list[Exchange] = field(default_factory=list)
    cookies: tuple[Cookie, ...] = ()
    #: where it comes from, for messages (``"the browser"``, a HAR path)
    source: str = ""
    seconds: float = 0.0
    #: the page's title (names a single image found, as the page dezoomer does)
    title: str = ""

    def bodies(self) -> dict[str, bytes | FetchError]:
        """Recorded bodies by URL (the first successful one of each URL)."""
        out: dict[str, bytes | FetchError] = {}
        for ex in self.exchanges:
            if ex.body is not None and 200 <= ex.status < 300 and ex.url not in out:
                out[ex.url] = ex.body
        return out


def carried(headers: Mapping[str, str] | list[tuple[str, str]] | tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """The request headers worth sending again: :data:`CARRIED_HEADERS` and ``X-…`` ones (capped sizes)."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    out = []
    for name, value in items:
        low = str(name).lower()
        if (low in CARRIED_HEADERS or low.startswith("x-")) and len(str(value)) <= 8192 and "\n" not in str(value) \
                and "\r" not in str(value):
            out.append((str(name), str(value)))
    return tuple(out[:32])


# --- HAR files ------------------------------------------------------------------------------------------
def is_har(url: str) -> bool:
    """Does ``url`` (a path or URL) name a HAR file (``.har``)?"""
    return bool(re.search(r"\.har(?:[?#].*)?$", url.strip(), re.I))


class _Budget:
    def __init__(self, cap: int, total: int) -> None:
        self.cap, self.left = cap, total

    def keep(self, body: bytes | None) -> bytes | None:
        if body is None or len(body) > self.cap or len(body) > self.left:
            return None
        self.left -= len(body)
        return body


def _har_body(content: Any, budget: _Budget) -> bytes | None:
    if not isinstance(content, dict):
        return None
    text, mime = content.get("text"), str(content.get("mimeType") or "")
    if not isinstance(text, str) or not TEXT_TYPE.search(mime.split(";")[0]):
        return None
    if content.get("encoding") == "base64":
        if len(text) * 3 // 4 > min(budget.cap, budget.left):
            return None
        try:
            return budget.keep(base64.b64decode(text, validate=False))
        except (binascii.Error, ValueError):
            return None
    if len(text) > min(budget.cap, budget.left):  # a char is at least a byte
        return None
    return budget.keep(text.encode("utf-8", "replace"))


def _pairs(items: Any) -> list[tuple[str, str]]:
    if not isinstance(items, list):
        return []
    return [(str(h.get("name")), str(h.get("value", ""))) for h in items[:200]
            if isinstance(h, dict) and h.get("name") and not str(h.get("name")).startswith(":")]


def read_har(data: bytes, source: str, *, body_cap: int) -> Recording:
    """A HAR document (``log.entries``) as a :class:`Recording`; MetadataError when it is not one.

    Its parse must fit the memory budget (:func:`~.budget.check_budget`, :data:`HAR_PARSE_FACTOR`)."""
    from .budget import check_budget, fmt_bytes

    check_budget(len(data) * HAR_PARSE_FACTOR, f"Reading the HAR file {source} ({fmt_bytes(len(data))})",
                 hint="Save the HAR without content (its documents are then fetched again)")
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        doc = None
    entries = doc.get("log", {}).get("entries") if isinstance(doc, dict) and isinstance(doc.get("log"), dict) else None
    if not isinstance(entries, list):
        raise MetadataError(f"{source} is not a HAR file (no log.entries)",
                            hint="Save it from the browser's developer tools: Network tab, right click, "
                                 "'Save all as HAR (with content)'.")
    budget = _Budget(body_cap, MAX_RECORDED_BYTES)
    rec = Recording(page="", source=source)
    cookies: dict[tuple[str, str], Cookie] = {}
    for entry in entries[:MAX_EXCHANGES]:
        request = entry.get("request") if isinstance(entry, dict) else None
        response = entry.get("response") if isinstance(entry, dict) else None
        if not isinstance(request, dict) or not isinstance(response, dict):
            continue
        url = str(request.get("url") or "")
        if not is_http(url) or str(request.get("method") or "GET").upper() != "GET":
            continue
        headers = _pairs(request.get("headers"))
        kind = str(entry.get("_resourceType") or "")
        content = response.get("content")
        mime = str(content.get("mimeType") or "") if isinstance(content, dict) else ""
        if not rec.page and (kind == "document" or mime.startswith("text/html")):
            rec.page = url
        status = response.get("status")
        rec.exchanges.append(Exchange(url, status if isinstance(status, int) else 0, kind, mime, tuple(headers),
                                      _har_body(content, budget)))
        host = urlsplit(url).hostname or ""
        sent = _pairs(request.get("cookies")) or [
            tuple(p.strip().split("=", 1)) for v in (v for n, v in headers if n.lower() == "cookie")
            for p in v.split(";") if "=" in p]
        for name, value in sent:
            if len(cookies) < MAX_COOKIES:
                cookies.setdefault((host.lower(), name), (host.lower(), False, "/", False, 0.0, name, value))
    pages = doc["log"].get("pages")
    if isinstance(pages, list) and pages and isinstance(pages[0], dict):
        title = str(pages[0].get("title") or "")
        rec.title = "" if is_http(title) else title[:300]
    rec.cookies = tuple(cookies.values())
    rec.page = rec.page or (rec.exchanges[0].url if rec.exchanges else "")
    del doc, entries
    return rec


# --- candidates ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Candidate:
    """Something in a recording that opens to an image: a metadata URL or a tile."""

    kind: str
    url: str
    dezoomer: str
    #: the request headers the viewer sent for this image (its tiles, else its metadata)
    headers: tuple[tuple[str, str], ...] = ()
    frame: str = ""

    @property
    def label(self) -> str:
        return f"{self.kind} {self.url}"


_URL_KINDS: tuple[tuple[re.Pattern[str], str, str], ...] = (
    (re.compile(r"/manifest(?:\.json)?(?:[?#].*)?$", re.I), "IIIF manifest", "iiif_manifest"),
    (re.compile(r"/info\.json(?:[?#].*)?$", re.I), "IIIF image", "iiif"),
    (re.compile(r"\.dzi(?:[?#].*)?$", re.I), "Deep Zoom", "deepzoom"),
    (re.compile(r"/ImageProperties\.xml(?:[?#].*)?$", re.I), "Zoomify", "zoomify"),
    (re.compile(r"[?&]FIF=[^&#]+&OBJ=", re.I), "IIPImage", "IIPImage"),
)


def _sniff(body: bytes) -> tuple[str, str] | None:
    """The kind of a metadata document by its content (first bytes), or None."""
    head = body[:4096].lstrip()
    if head.startswith(b"<"):
        low = head.lower()
        if b"<image_properties" in low:
            return "Zoomify", "zoomify"
        if b"<krpano" in low:
            return "krpano", "krpano"
        if b"<image" in low and b"tilesize" in low:
            return "Deep Zoom", "deepzoom"
        return None
    if not head.startswith(b"{"):
        return None
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(doc, dict):
        return None
    context = json.dumps(doc.get("@context", ""))[:2000]
    kind = str(doc.get("type") or doc.get("@type") or "")
    if "iiif.io/api/presentation" in context or kind in ("Manifest", "Collection", "sc:Manifest", "sc:Collection"):
        return "IIIF manifest", "iiif_manifest"
    if "iiif.io/api/image" in context or "iiif.io/api/image" in str(doc.get("protocol", "")) \
            or kind.startswith("ImageService"):
        return "IIIF image", "iiif"
    if isinstance(doc.get("Image"), dict) and ("TileSize" in doc["Image"] or "Url" in doc["Image"]):
        return "Deep Zoom", "deepzoom"
    return None


def _classify(ex: Exchange) -> tuple[str, str] | None:
    for rx, kind, name in _URL_KINDS:
        if rx.search(ex.url):
            return kind, name
    if ex.body is not None and not ex.content_type.startswith("text/html"):
        return _sniff(ex.body)
    return None


def _key(url: str, dezoomer: str) -> str:
    """The same key :func:`~.dezoomers.tile_url.match` gives the tiles of this metadata's image."""
    if dezoomer == "IIPImage":
        from .dezoomers.iipimage import metadata_url

        return metadata_url(url)
    return re.sub(r"(?:/info\.json|\.dzi|\.xml|/ImageProperties\.xml)(?:[?#].*)?$", "", url, flags=re.I)


def is_image(ex: Exchange) -> bool:
    return ex.resource_type == "image" or ex.content_type.startswith("image/") or bool(_IMAGE_URL.search(ex.url))


def candidates(rec: Recording) -> list[Candidate]:
    """The images a recording shows, best first (see the module doc)."""
    from .dezoomers import tile_url

    metadata: list[Candidate] = []
    keys: set[str] = set()
    seen: set[str] = set()
    tiles: dict[str, tuple[tile_url.TileMatch, Exchange, tuple[tuple[str, str], ...]]] = {}
    for ex in rec.exchanges:
        if not (200 <= ex.status < 300 or ex.status == 0 or ex.status == 304):
            continue
        if is_image(ex):
            found = tile_url.match(ex.url)
            if found is None:
                continue
            held = tiles.get(found.key)
            if held is None:
                tiles[found.key] = (found, ex, carried(ex.request_headers))
            elif found.z > held[0].z:
                tiles[found.key] = (found, ex, held[2])
            continue
        kind = _classify(ex)
        if kind is None or ex.url in seen:
            continue
        seen.add(ex.url)
        keys.add(_key(ex.url, kind[1]))
        metadata.append(Candidate(kind[0], ex.url, kind[1], carried(ex.request_headers), ex.frame))
    if any(c.dezoomer == "iiif_manifest" for c in metadata):  # the manifest lists its images, with titles
        metadata = [c for c in metadata if c.dezoomer != "iiif"]
        tiles = {k: v for k, v in tiles.items() if v[0].kind != "iiif"}
    with_tiles = []
    for c in metadata:
        t = tiles.get(_key(c.url, c.dezoomer))
        with_tiles.append(replace(c, headers=t[2]) if t is not None and t[2] else c)
    groups = [Candidate(f"{found.kind} tiles", ex.url, "tile_url", headers, ex.frame)
              for key, (found, ex, headers) in tiles.items()
              if key not in keys and not (metadata and not found.metadata)]
    return (with_tiles + groups)[:MAX_CANDIDATES]


# --- opening ------------------------------------------------------------------------------------------
def with_headers(image: Image, headers: tuple[tuple[str, str], ...]) -> Image:
    """``image`` whose tiles are requested with ``headers`` too (replacing same-named level headers)."""
    if not headers:
        return image
    names = {n.lower() for n, _ in headers}
    levels = tuple(replace(lv, headers=tuple(h for h in lv.headers if h[0].lower() not in names) + headers)
                   for lv in image.levels)
    return replace(image, levels=levels)


def recording_net(rec: Recording, net: NetConfig) -> NetConfig:
    """``net`` with the recording's cookies added, its page as Referer, scoped to the page's site; no
    local file may be read from here on."""
    cookies = tuple(net.cookies.items) if net.cookies is not None else ()
    if rec.cookies:
        cookies += tuple(rec.cookies)
    net = replace(net, local_root=None, cookies=CookieSet(cookies) if cookies else None,
                  referer=net.referer if net.referer and not is_har(net.referer) else (rec.page or None))
    return scoped(net, rec.page) if is_http(rec.page) else net


def open_recording(
    rec: Recording,
    net: NetConfig,
    *,
    options: Mapping[str, object] | None = None,
    cache: TileCache | None = None,
) -> tuple[list[Image | ImageRef], NetConfig]:
    """The images a recording shows, and the config to fetch them with (see the module doc).

    Raises :class:`~dezoomify_nb.errors.NoDezoomerFound` with what was seen when nothing opens.
    """
    from .model import with_page_referer
    from .resolve import resolve_scoped

    net = recording_net(rec, net)
    cands = candidates(rec)
    pages = rec.bodies()
    found: list[Image | ImageRef] = []
    reasons: list[tuple[str, str]] = []
    opened: list[str] = []  # the dezoomers of the candidates that gave images
    for cand in cands:
        try:
            images, _ = resolve_scoped(cand.url, dezoomer=cand.dezoomer, net=net, options=options, pages=pages,
                                       cache=cache)
        except DezoomifyError as exc:
            log.debug("%s: %s", cand.label, exc)
            reasons.append((cand.label, str(exc).split("\n", 1)[0]))
            continue
        for im in images:
            if isinstance(im, Image):
                page = cand.frame or rec.page
                im = with_headers(with_page_referer(im, page), cand.headers)
                im = replace(im, metadata=im.metadata + (("found_in_page", rec.page),))
            elif rec.page:
                im = replace(im, page=im.page or cand.frame or rec.page)
            found.append(im)
        opened.append(cand.dezoomer)
        log.log(NOTICE, "Found by %s: %s", rec.source or "the recording", cand.label)
    pages.clear()
    if len(found) == 1 and isinstance(found[0], Image) and rec.title and "iiif_manifest" not in opened:
        found = [replace(found[0], title=rec.title)]
    if not found:
        images_seen = sum(1 for ex in rec.exchanges if is_image(ex))
        what = (f"{len(rec.exchanges)} request{'s' * (len(rec.exchanges) != 1)}"
                + (f" in {rec.seconds:.1f} s" if rec.seconds else "")
                + f" ({images_seen} image{'s' * (images_seen != 1)})")
        if not cands:
            reasons.insert(0, ("browser" if rec.source == "the browser" else "HAR",
                               f"{rec.source or 'the recording'} saw {what}: none was an image's metadata "
                               "(info.json, .dzi, ImageProperties.xml, manifest, krpano XML) or a tile of a known shape"))
        err = NoDezoomerFound(rec.page or rec.source, reasons)
        err.hint = ("The viewer may need a login (--cookies), a click on a particular button, or more time "
                    "(--browser-timeout); or give the tile or metadata URL the browser's developer tools show "
                    "(Network tab) directly.")
        raise err
    return found, net


__all__ = ["Candidate", "Exchange", "Recording", "candidates", "is_har", "open_recording", "read_har"]
