"""Web pages: find the zoomable image behind the viewer page a user is looking at.

Most people have the address of a museum's object page, not of an ``info.json`` or a ``.dzi``. When the
input is an HTML page (sniffed), :func:`extract` reads it — bounded (:data:`~._html.MAX_PAGE_BYTES`),
no JavaScript run, HTML entities and JavaScript escapes undone, relative URLs resolved against the page
and its ``<base href>`` — and lists the tile sources it mentions, most trustworthy first:

1. IIIF manifests: ``<link rel="alternate" type="application/ld+json;profile=…iiif…">``, ``manifest=`` /
   ``iiif-content=`` parameters of embedded viewers and drag-and-drop links (Mirador, Universal Viewer),
   ``manifestId``/``manifestUri``/``data-manifest`` settings, then URLs ending in ``/manifest(.json)``;
2. IIIF images: ``…/info.json`` URLs, then image services known from image request URLs (an ``og:image``
   ``…/full/1200,/0/default.jpg``, thumbnails) or from service objects written in the page
   (``{"id": …, "type": "ImageService3"}``) — those only when no manifest was found (it lists them better);
3. OpenSeadragon ``tileSources``: inline Deep Zoom (JS object or XML string) or IIIF info, ``.dzi``,
   ``.xml``, ``info.json`` and service URLs, ``zoomifytileservice`` sources, variables holding them;
4. ``.dzi`` URLs anywhere; 5. Zoomify: ``ImageProperties.xml``, ``zoomifyImagePath``, ``Z.showImage``,
   ``{TileGroup}/{z}-{x}-{y}`` templates; 6. krpano ``embedpano({xml: …})``; 7. IIPImage ``FIF=`` URLs and
   ``IIPMooViewer`` settings;
8. when the page itself gives none: its ``<iframe>``\\ s of the same site, one level deep (at most
   :data:`MAX_FRAMES`, fetched at once);
9. last resort: the ``og:image``/``twitter:image`` picture, a **low-resolution preview**, as a one-tile
   image (its size is read from its header; a warning says so).

One candidate is opened at once through its format's own parser (same fetch loop: a manifest of one
canvas gives that image) and a warning says what was used. Several give one lazily resolved
:class:`~dezoomify_nb.model.ImageRef` each, titled ``"<kind> <URL>"``: ``dz.open`` returns an
:class:`~dezoomify_nb.collection.ImageCollection`, the CLI lists them and ``--image-index`` picks one. A
manifest among several candidates resolves to its first image. An inline description is referred to as
``<page URL>#dezoomify-nb-inline=<n>``. Nothing found raises :class:`NothingInPage`, whose message says
what was looked for and whose hint says how to find the metadata URL by hand.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field, replace

from ..errors import NOTICE, FetchError, MetadataError, WrongDezoomer
from ..model import MAX_TILE_SIDE, Image, ImageRef, TemplateLevel, with_page_referer
from . import _html, deepzoom, iiif
from ._html import absolute
from ._page_scan import KIND_MANIFEST, Candidate, scan
from .base import Context, Dezoomer

log = logging.getLogger(__name__)

#: at most this many same-site iframes are fetched (one round, one level deep)
MAX_FRAMES = 3
#: at most this many candidates are listed (from the page and its frames)
MAX_CANDIDATES = 64

_INLINE_RE = re.compile(r"#dezoomify-nb-inline=(\d{1,4})$")
_NOT_A_PAGE_RE = re.compile(
    r"\.(?:jpe?g|png|gif|webp|tiff?|bmp|avif|jp2|dzi|json|ya?ml|txt|urls|pff|zip|pdf|mp4)(?:[?#].*)?$", re.I)
#: what NothingInPage says was looked for
LOOKED_FOR = (
    "IIIF manifest links and viewer manifest= parameters (Mirador, Universal Viewer)",
    "IIIF info.json and image service URLs",
    "OpenSeadragon tileSources (inline or as URLs)",
    ".dzi files",
    "Zoomify ImageProperties.xml and zoomifyImagePath",
    "krpano embedpano XML",
    "IIPImage FIF= URLs",
    "iframes of the same site",
    "og:image / twitter:image previews",
)
PASTE_HINT = (
    "The viewer may build its image URL with JavaScript, which is not run. Paste the URL of the image's "
    "metadata instead: open the browser's developer tools (F12), Network tab, reload the page and zoom in, "
    "then copy a request ending in info.json, manifest, .dzi, ImageProperties.xml or .xml."
)


class NothingInPage(WrongDezoomer):
    """An HTML page in which no zoomable image was found; the message lists what was looked for."""

    #: auto-detection shows this reason first, with its hint: it explains the input best
    explains_input = True
    hint = PASTE_HINT


class PageCandidateFailed(MetadataError):
    """The one image a page points to could not be opened."""

    explains_input = True


@dataclass
class Findings:
    """What :func:`extract` found in one document."""

    url: str
    title: str | None = None
    candidates: list[Candidate] = field(default_factory=list)
    #: same-site frames worth a look when the page itself gives no candidate
    frames: list[str] = field(default_factory=list)
    #: frames of other sites (never fetched; named in the "nothing found" message)
    foreign_frames: list[str] = field(default_factory=list)
    #: the og:image / twitter:image URL
    preview: str | None = None


def extract(url: str, data: bytes) -> Findings:
    """Every tile source mentioned in the HTML page ``data`` fetched from ``url``, best first.

    The driver runs a dezoomer again after each round of fetches, so the last few results are kept
    (keyed by a digest of the page, never the page itself); treat the result as read-only.
    """
    key = (url, hashlib.blake2b(data[: _html.MAX_PAGE_BYTES], digest_size=16).digest())
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    found = _extract(url, data)
    with _CACHE_LOCK:
        _CACHE[key] = found
        while len(_CACHE) > 8:
            _CACHE.popitem(last=False)
    return found


_CACHE: OrderedDict[tuple[str, bytes], Findings] = OrderedDict()
_CACHE_LOCK = threading.Lock()


def _extract(url: str, data: bytes) -> Findings:
    text = _html.decode(data)
    found = _html.tags(text)
    base = _html.base_url(url, found)
    meta = {t.get("property").lower() or t.get("name").lower(): t.get("content")
            for t in reversed(found) if t.name == "meta" and t.get("content")}
    out = Findings(url, title=meta.get("og:title") or _html.title(text))
    out.candidates = scan(url, base, found, _html.normalize(text))
    for tag in found:
        if tag.name in ("iframe", "frame"):
            src = absolute(base, tag.get("src") or tag.get("data-src"))
            if src and src != url:
                target = out.frames if _html.same_site(url, src) else out.foreign_frames
                if src not in target:
                    target.append(src)
    for key in ("og:image", "og:image:url", "og:image:secure_url", "twitter:image", "twitter:image:src"):
        preview = absolute(base, meta.get(key, ""))
        if preview:
            out.preview = preview
            break
    return out


# --- opening a candidate ---------------------------------------------------------------------------
def _parsers() -> dict[str, Dezoomer]:
    from .iiif_manifest import IIIFManifestDezoomer
    from .iipimage import IIPImageDezoomer
    from .krpano import KrpanoDezoomer
    from .zoomify import ZoomifyDezoomer

    return {d.name: d for d in (IIIFManifestDezoomer(), iiif.IIIFDezoomer(), deepzoom.DeepZoomDezoomer(),
                                 ZoomifyDezoomer(), KrpanoDezoomer(), IIPImageDezoomer())}


#: what an ambiguous tile source (``dezoomer="auto"``) is tried as, in order
AUTO_FORMATS = ("iiif", "deepzoom", "zoomify", "iiif_manifest")


def open_inline(cand: Candidate) -> Image:
    """The image an inline description (Deep Zoom or IIIF info written in the page) describes."""
    base = cand.base or cand.url
    if cand.dezoomer == "deepzoom":
        image = deepzoom.build_image(base, deepzoom.parse_dzi(cand.inline)[0])
    else:
        image = iiif.build_image(base, iiif.find_infos(cand.inline)[0])
    return replace(image, url=cand.url)


def open_candidate(ctx: Context, cand: Candidate) -> list[Image | ImageRef]:
    """Run ``cand``'s parser on its URL inside this fetch loop (NeedsData goes up to the driver).

    A result that is a single reference (a manifest of one canvas) is opened too, up to two hops.
    """
    if cand.inline:
        return [open_inline(cand)]
    parsers = _parsers()
    names = AUTO_FORMATS if cand.dezoomer == "auto" else (cand.dezoomer,)
    found: list[Image | ImageRef] = []
    for i, name in enumerate(names):
        try:
            found = list(parsers[name].images(Context(cand.url, ctx.pages, ctx.options)))
            break
        except WrongDezoomer:
            if i == len(names) - 1:
                raise
    for _ in range(2):
        if len(found) != 1 or not isinstance(found[0], ImageRef) or found[0].dezoomer not in parsers:
            break
        ref = found[0]
        sub = parsers[ref.dezoomer].images(Context(ref.url, ctx.pages, ctx.options))
        found = [replace(im, title=ref.title or im.title) if isinstance(im, Image)
                 else replace(im, title=ref.title or im.title) for im in sub]
    return found


def _image_size(data: bytes, url: str) -> tuple[int, int]:
    from PIL import Image as PILImage

    from .. import imageformats

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
            with imageformats.open_image(data) as im:
                return im.size
    except Exception as exc:  # Pillow raises many types on hostile bytes
        raise MetadataError(f"the page's preview image {url} is not a readable image ({exc})",
                            hint="The page shows no zoomable image and its preview (og:image) is not a "
                                 f"{imageformats.allowed_names()} image; open the viewer's own URL instead.") from None


def preview_image(ctx: Context, url: str, title: str | None) -> Image:
    """The page's og:image as a one-level, one-tile image (its size read from its own header)."""
    try:
        data = ctx.get(url)
    except FetchError as exc:
        raise NothingInPage(_nothing_message([]) + f" Its preview image {url} could not be fetched ({exc}).") \
            from None
    w, h = _image_size(data, url)
    if not (0 < w <= MAX_TILE_SIDE and 0 < h <= MAX_TILE_SIDE):
        raise MetadataError(f"the page's preview image {url} is {w}x{h}, too large for one tile")
    template = url.replace("{", "{{").replace("}", "}}")
    level = TemplateLevel(w, h, w, h, name="low-resolution preview (og:image)", template=template)
    name = f"{title} (preview)" if title else None
    return Image((level,), title=name, dezoomer="page", url=url,
                 metadata=(("found_in_page", ctx.url), ("low_resolution_preview", "og:image")))


def _nothing_message(foreign: list[str]) -> str:
    msg = "no zoomable image found in this web page (its JavaScript is not run); looked for " + \
        "; ".join(LOOKED_FOR) + "."
    if foreign:
        shown = ", ".join(foreign[:3])
        msg += f" The page embeds frames from other sites, not followed: {shown} (try that URL)."
    return msg


class PageDezoomer(Dezoomer):
    name = "page"
    description = "a web page showing a zoomable image (IIIF, Deep Zoom, Zoomify, krpano, IIPImage viewers)"

    def images(self, ctx: Context) -> list[Image | ImageRef]:
        url = ctx.url
        inline = _INLINE_RE.search(url)
        doc_url = url[: inline.start()] if inline else url
        if "{{" in doc_url:
            raise WrongDezoomer("a URL template, not a web page")
        if _NOT_A_PAGE_RE.search(doc_url):
            raise WrongDezoomer("not a web page (the name says so)")
        data = ctx.get(doc_url)
        if not _html.looks_like_html(data):
            raise WrongDezoomer("not an HTML page")
        found = extract(doc_url, data)
        if inline:
            return [with_page_referer(self._inline(found, int(inline.group(1))), doc_url)]
        # (candidate, document it was found in, its index there)
        cands = [(c, doc_url, i) for i, c in enumerate(found.candidates)]
        foreign = list(found.foreign_frames)
        if not cands and found.frames:
            frames = found.frames[:MAX_FRAMES]
            ctx.prefetch(frames)
            seen = set()
            for frame in frames:
                frame_data = ctx.try_get(frame)
                if frame_data is None or not _html.looks_like_html(frame_data):
                    continue
                sub = extract(frame, frame_data)
                foreign += [f for f in sub.foreign_frames if f not in foreign]
                for i, c in enumerate(sub.candidates):
                    if c not in seen and len(cands) < MAX_CANDIDATES:
                        seen.add(c)
                        cands.append((c, frame, i))
        if not cands:
            if found.preview:
                image = preview_image(ctx, found.preview, found.title)
                w, h = image.levels[0].size
                log.warning("No zoomable image found in the page %s; using its og:image, a LOW-RESOLUTION preview "
                            "(%dx%d): %s", doc_url, w, h, found.preview)
                return [image]
            raise NothingInPage(_nothing_message(foreign))
        if len(cands) == 1:
            return self._open_one(ctx, cands[0][0], found.title, cands[0][1])
        return [ImageRef(f"{where}#dezoomify-nb-inline={i}" if c.inline else c.url, c.label,
                         "page" if c.inline else c.dezoomer, found_by=self.name, page=where) for c, where, i in cands]

    def _inline(self, found: Findings, index: int) -> Image:
        if index >= len(found.candidates) or not found.candidates[index].inline:
            raise MetadataError(f"no inline image #{index} in the page {found.url}",
                                hint="Open the page URL itself to list what it shows.")
        return open_inline(found.candidates[index])

    def _open_one(self, ctx: Context, cand: Candidate, title: str | None, page: str) -> list[Image | ImageRef]:
        try:
            found = open_candidate(ctx, cand)
        except (WrongDezoomer, MetadataError, FetchError) as exc:
            raise PageCandidateFailed(
                f"the page shows a {cand.label}, which could not be opened: {exc}",
                hint=getattr(exc, "hint", "") or "Open that URL directly to see what it serves.") from None
        if not found:
            raise PageCandidateFailed(f"the page shows a {cand.label}, which holds no image")
        log.log(NOTICE, "Found in the page: %s", cand.label)  # news, not a warning
        if len(found) == 1 and isinstance(found[0], Image) and title and cand.kind != KIND_MANIFEST:
            found = [replace(found[0], title=title)]
        return [with_page_referer(replace(im, metadata=im.metadata + (("found_in_page", ctx.url),)), page)
                if isinstance(im, Image) else replace(im, page=im.page or page) for im in found]


__all__ = ["Candidate", "Findings", "NothingInPage", "PageCandidateFailed", "PageDezoomer", "extract"]
