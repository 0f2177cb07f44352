"""Hungaricana (hungaricana.hu): ECW images behind 512-px tiles with encrypted (hashed) names.

Inputs: the image-size URL ``https://static-cdn.hungaricana.hu/tile/imagesize/<path>.ecw`` (any URL
ending in ``.ecw``), or a viewer page of ``*.hungaricana.hu`` (or any page whose text matches
``imagepath … .ecw`` / ``files … .ecw``, the JS contents rule). From a page, the image-size URL is
``layerUrl + path + FILE``, where ``FILE`` is ``imagepath = "…"``, else entry ``pg=N`` (or ``img=N``) of
the page's ``files: [...]`` / ``images: [...]`` array, else of the JSON array served at ``files_url``.

The image-size URL returns ``{"width": W, "height": H}``. Splitting it at ``imagesize/`` gives ``base``
and ``path``; tiles are ``base + "image/" + path + "/" + hex32``. Zoom ``z`` = 0 is one 512-px tile and
the finest zoom is the smallest ``z`` with ``512·2^z ≥ max(W, H)`` (JS: ``ceil(log2(max/512))``). The
32 hex digits are the AES-128 encryption (key: the 16 ASCII bytes ``dGhpcyBpcyBubyBr``, zero IV, i.e.
ECB of the first block) of ``"{s}|{z}|{x}|{y}"`` right-padded with ``*`` to 16 bytes, ``s`` being the sum
of the code points of ``path`` modulo 100 (reference §7; checked against a tile URL quoted in
dezoomify issue #346).

Better than the JS dezoomer, which only downloads the finest zoom: every zoom is a level, of size
``ceil(W / 2^(finest - z))`` (assumed: the halving rule of the viewer, not verified on the live site);
an image smaller than 256 px gets zoom 0 (the JS asks for zoom -1); a page without ``pg=`` whose
``files`` array lists several images gives one image per entry (``dz.open`` returns a collection).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ..errors import MetadataError, WrongDezoomer
from ..model import MAX_LEVELS, MAX_SIDE, Image, ImageRef, Level, ceil_div, url_stem
from ._common import load_json, to_int
from .base import Context, Dezoomer

NAME = "hungaricana"
KEY = b"dGhpcyBpcyBubyBr"
TILE_SIZE = 512
#: at most this many images are listed from one page's ``files`` array
MAX_PAGES = 10_000

_HOST_RE = re.compile(r"hungaricana\.hu", re.I)
_ECW_RE = re.compile(r"\.ecw$", re.I)
_CONTENTS_RE = re.compile(rb"(?:imagepath|files )[^\n]{0,2000}?\.ecw", re.I)
_LAYER_URL_RE = re.compile(r"""layer_?[uU]rl["']?\s*:\s*['"]([^'"]*)""")
_PATH_RE = re.compile(r"""\Wpath["']?\s*:\s*["']([^"']*)""")
_IMAGEPATH_RE = re.compile(r"""imagepath["']?\s*=\s*["']([^"']*)""")
_FILES_RE = re.compile(r"""(?:files|images)["']?\s*:\s*(\[.*?\])""", re.S)
_FILES_URL_RE = re.compile(r"""files_url["']?\s*:\s*['"]([^'"]*)""")
_INDEX_RE = re.compile(r"(?:img|pg)=(\d{1,9})")
_TITLE_RE = re.compile(r"<title[^>]*>([^<]{1,300})</title>", re.I)
_SKIP_RE = re.compile(r"\{\{|\.(?:jpe?g|png|gif|webp|tiff?|bmp|avif)(?:[?#].*)?$", re.I)
_PAGE_HINT = ("Give the URL of a Hungaricana viewer page (…hungaricana.hu/…/view/…?pg=0) or the image-size URL "
              "(…/tile/imagesize/….ecw) seen in the browser's network tab.")


def path_salt(path: str) -> int:
    """``s``: the sum of the code points of ``path``, modulo 100."""
    return sum(map(ord, path)) % 100


def tile_hash(salt: int, zoom: int, x: int, y: int) -> str:
    """The 32 hex digits naming tile ``(x, y)`` of zoom ``zoom`` (AES-128 of the padded position)."""
    plain = f"{salt}|{zoom}|{x}|{y}".ljust(16, "*").encode("ascii")[:16]
    enc = Cipher(algorithms.AES(KEY), modes.ECB()).encryptor()
    return (enc.update(plain) + enc.finalize()).hex()


def finest_zoom(width: int, height: int) -> int:
    """The smallest ``z`` ≥ 0 with ``512·2^z ≥ max(width, height)``."""
    return (ceil_div(max(width, height), TILE_SIZE) - 1).bit_length()


@dataclass(frozen=True)
class HungaricanaLevel(Level):
    """Zoom ``zoom`` of the image whose tiles live under ``origin`` (``…/image/<path>/``)."""

    origin: str = ""
    salt: int = 0
    zoom: int = 0

    def tile_url(self, col: int, row: int) -> str:
        return self.origin + tile_hash(self.salt, self.zoom, col, row)


def split_imagesize_url(url: str) -> tuple[str, str]:
    """``(base, path)`` of an image-size URL: ``…/tile/`` and ``maps/…/x.ecw``."""
    url = url.split("#", 1)[0]
    base, sep, path = url.partition("imagesize/")
    if not sep or not path:
        raise MetadataError(f"{url!r} is not a Hungaricana image-size URL (no 'imagesize/' in it)", hint=_PAGE_HINT)
    return base, path


def parse_size(data: bytes) -> tuple[int, int]:
    doc = load_json(data)
    if not isinstance(doc, dict) or "width" not in doc or "height" not in doc:
        raise MetadataError("the Hungaricana image-size document is not JSON with a width and a height",
                            hint=_PAGE_HINT)
    w, h = to_int(doc.get("width"), "width"), to_int(doc.get("height"), "height")
    if not (0 < w <= MAX_SIDE and 0 < h <= MAX_SIDE):
        raise MetadataError(f"invalid Hungaricana image size {w}x{h}")
    return w, h


def build_levels(meta_url: str, width: int, height: int) -> list[HungaricanaLevel]:
    """Every zoom, smallest first (zoom 0 is one tile)."""
    base, path = split_imagesize_url(meta_url)
    origin, salt, top = f"{base}image/{path}/", path_salt(path), finest_zoom(width, height)
    levels = []
    for zoom in range(max(0, top + 1 - MAX_LEVELS), top + 1):
        div = 1 << (top - zoom)
        levels.append(HungaricanaLevel(ceil_div(width, div), ceil_div(height, div), TILE_SIZE, TILE_SIZE,
                                       name=f"Hungaricana zoom {zoom}", origin=origin, salt=salt, zoom=zoom))
    return levels


def _text(data: bytes) -> str:
    return html.unescape(data.decode("utf-8", errors="replace"))


def _file_list(raw: bytes | str, where: str) -> list[str]:
    doc = load_json(raw.encode() if isinstance(raw, str) else raw)
    if not isinstance(doc, list) or not doc or not all(isinstance(f, str) and f for f in doc):
        raise MetadataError(f"the list of image files in {where} is not a JSON array of names", hint=_PAGE_HINT)
    return doc[:MAX_PAGES]


def page_metadata_urls(ctx: Context, page_url: str, text: str) -> list[tuple[str, str | None]]:
    """``(image-size URL, title)`` of the image(s) a viewer page shows (one when it says which)."""
    layer = _LAYER_URL_RE.search(text)
    if layer is None:
        raise MetadataError("Unable to find the layer base url (layerUrl) in the Hungaricana page", hint=_PAGE_HINT)
    path_m = _PATH_RE.search(text)
    prefix = layer.group(1) + (path_m.group(1) if path_m else "")
    title_m = _TITLE_RE.search(text)
    title = " ".join(title_m.group(1).split()) if title_m else None
    single = _IMAGEPATH_RE.search(text)
    if single is not None:
        return [(urljoin(page_url, prefix + single.group(1)), title)]
    array = _FILES_RE.search(text)
    if array is not None:
        files = _file_list(array.group(1), "the page")
    else:
        files_url = _FILES_URL_RE.search(text)
        if files_url is None:
            raise MetadataError("Unable to find the layer file name in the Hungaricana page", hint=_PAGE_HINT)
        listing = urljoin(page_url, files_url.group(1))
        files = _file_list(ctx.get(listing), listing)
    index = _INDEX_RE.search(urlsplit(page_url).query + "&" + urlsplit(page_url).fragment)
    if index is None and len(files) > 1:
        return [(urljoin(page_url, prefix + f), f"{title} - {i + 1}" if title else None) for i, f in enumerate(files)]
    i = int(index.group(1)) if index else 0
    if i >= len(files):
        raise MetadataError(f"page {i} does not exist: this document has {len(files)} images (pg=0 to "
                            f"pg={len(files) - 1})", hint="Change the pg= number in the URL.")
    return [(urljoin(page_url, prefix + files[i]), title)]


class HungaricanaDezoomer(Dezoomer):
    name = NAME
    description = "Hungaricana (hungaricana.hu viewer pages, …/tile/imagesize/….ecw)"

    def images(self, ctx: Context) -> list[Image | ImageRef]:
        url = ctx.url
        bare = url.split("#", 1)[0].split("?", 1)[0]
        if _ECW_RE.search(bare):
            return [self._image(ctx, url, url_stem(bare))]
        if _SKIP_RE.search(url):
            raise WrongDezoomer("not a Hungaricana page or .ecw image-size URL")
        if not _HOST_RE.search(url):
            data = ctx.get(url)  # contents detection, as the JS (already fetched when auto reaches us)
            if not _CONTENTS_RE.search(data[:2_000_000]):
                raise WrongDezoomer("no Hungaricana .ecw image path in the page")
        found = page_metadata_urls(ctx, url, _text(ctx.get(url)))
        if len(found) > 1:
            return [ImageRef(meta, title=title, dezoomer=NAME, found_by=NAME) for meta, title in found]
        meta, title = found[0]
        return [self._image(ctx, meta, title or url_stem(meta))]

    def _image(self, ctx: Context, meta_url: str, title: str | None) -> Image:
        split_imagesize_url(meta_url)  # fail early, before fetching, on a URL we cannot turn into tiles
        width, height = parse_size(ctx.get(meta_url))
        levels = build_levels(meta_url, width, height)
        return Image(levels=tuple(levels), title=title, dezoomer=NAME, url=meta_url)
