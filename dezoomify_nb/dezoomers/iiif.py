"""IIIF Image API 1.1, 2 and 3: ``info.json`` → levels of region requests.

Tile URLs follow OpenSeadragon's ``IIIFTileSource.getTileUrl`` (static level-0 trees are generated for
it, so its names are the ones that exist on disk). Where this differs from dezoomify-rs:

* level size is ``ceil(W / sf)`` (IIIF spec, OpenSeadragon); dezoomify-rs floors, asking one pixel short;
* region ``full`` when one tile covers the whole image; size ``full`` (v2) / ``max`` (v3) when the tile is
  requested at full resolution over the full width (v2) / whole image (v3);
* v2 sizes are ``w,h`` when the server supports ``sizeByWh`` (level 2): the exact size, so a server that
  derives the height from the aspect ratio cannot round it differently; otherwise the canonical ``w,``
  (every v2 level-1 server and every static level-0 tree has it); v3 sizes are ``w,h`` (canonical in v3), v1.1 sizes
  are ``w,`` for level 0 or a one-tile level and ``w,h`` otherwise (as OpenSeadragon);
* v3 ``id``/``type``, top-level ``extraFormats``/``extraQualities``/``extraFeatures`` and
  ``maxWidth``/``maxHeight``/``maxArea`` are read;
* without ``tiles``: a server allowing region requests gets synthesized 1024-px tiles (capped by the
  limits) at scale factors 1, 2, 4, … until the image fits one tile (dezoomify-rs: 512 px, factor 1
  only); a level-0 server gets one whole-image request per listed ``sizes`` entry within the limits (dezoomify-rs ignores
  ``sizes``), plus ``full``/``max`` when it is at most 8192 px per side and within ``maxWidth``/``maxHeight``/
  ``maxArea`` (v2 profile limits too); past the limits, v3's ``max`` at the size they give (a level-0
  server must serve it), v2 the listed sizes only, else ``max`` (2.1);
* ``grey`` ranks as ``gray``; without any quality, v1.1 asks for ``native``;
* tile format (OpenSeadragon, dezoomify-rs): ``jpg`` by default, even when ``png`` is listed (static
  level-0 trees made from a template list png but hold jpg; servers transcode png at 5-10x the bytes);
  the first ``preferredFormats`` entry we decode comes first (a v3 property, read in every version, as
  both do); another format only on request (``tile_format``: ``--tile-format png``,
  ``dz.open(..., tile_format="png")``) or when jpg is not offered: a ``formats`` list (v1.1 top level,
  v2 profile object) without jpg is taken at its word, whatever the compliance level implies (libvips'
  ``dzsave --layout iiif --suffix .png`` writes level 0 and ``"formats": ["png"]``). Such a format
  (requested, or not the server's own preference) is probed with the first tile of the smallest level:
  a 4xx answer falls back to jpg, once, with a warning. A tree that says nothing of its png tiles
  (libvips' ``--layout iiif3``) needs ``tile_format="png"``;
"""

from __future__ import annotations

import logging
import math
import re
import reprlib
from dataclasses import dataclass, field
from typing import Any

from ..errors import DezoomifyError, FetchError, MetadataError, WrongDezoomer
from ..imageformats import allowed_formats
from ..model import MAX_LEVELS, MAX_SIDE, MAX_TILE_SIDE, Image, Level, level_for_scale, resolve_relative
from . import _json5
from ._common import last_segment, load_json, referer, to_int
from .base import Context, Dezoomer

log = logging.getLogger(__name__)

_V1 = "http://library.stanford.edu/iiif/image-api/1.1/compliance.html#level"
_V2 = "http://iiif.io/api/image/2/level"
_V3 = "http://iiif.io/api/image/3/level"
_V2_BASE = ["baseUriRedirect", "cors", "jsonldMediaType"]

#: Compliance level URI → (level, implied formats, qualities, features).
PROFILES: dict[str, tuple[int, list[str], list[str], list[str]]] = {
    _V1 + "0": (0, [], ["native"], []),
    _V1 + "1": (1, ["jpg"], ["native"], ["regionByPx", "sizeByW", "sizeByH", "sizeByPct", "rotationBy90s"]),
    _V1 + "2": (2, ["jpg", "png"], ["native", "color", "grey", "bitonal"],
                ["regionByPx", "regionByPct", "sizeByW", "sizeByH", "sizeByPct", "sizeByWh", "rotationBy90s"]),
    _V2 + "0.json": (0, ["jpg"], ["default"], ["sizeByWhListed"]),
    _V2 + "1.json": (1, ["jpg"], ["default"],
                     _V2_BASE + ["regionByPx", "sizeByW", "sizeByH", "sizeByPct", "sizeByWhListed"]),
    _V2 + "2.json": (2, ["jpg", "png"], ["default", "bitonal"],
                     _V2_BASE + ["regionByPx", "regionByPct", "sizeByW", "sizeByH", "sizeByPct", "sizeByWh",
                                 "sizeByWhListed", "sizeByConfinedWh", "sizeByDistortedWh", "sizeByForcedWh",
                                 "rotationBy90s"]),
    _V3 + "0.json": (0, ["jpg"], ["default"], []),
    _V3 + "1.json": (1, ["jpg"], ["default"],
                     _V2_BASE + ["regionByPx", "regionSquare", "sizeByW", "sizeByH", "sizeByWh"]),
    _V3 + "2.json": (2, ["jpg", "png"], ["default"],
                     _V2_BASE + ["regionByPx", "regionByPct", "regionSquare", "sizeByW", "sizeByH", "sizeByPct",
                                 "sizeByWh", "sizeByConfinedWh", "rotationBy90s"]),
}
for _n in "012":  # IIIF 1.0 URIs and the bare v3 names
    PROFILES["http://library.stanford.edu/iiif/image-api/compliance.html#level" + _n] = PROFILES[_V1 + _n]
    PROFILES["level" + _n] = PROFILES[_V3 + _n + ".json"]

QUALITY_RANK = ["bitonal", "gray", "color", "native", "default"]  # worst to best
#: when jpg is not offered: the formats we decode, worst to best
FORMAT_RANK = ["bmp", "tif", "gif", "avif", "webp", "png", "jpeg", "jpg"]
#: IIIF format names → the Pillow format that decodes them (see :mod:`dezoomify_nb.imageformats`)
DECODERS = {"jpg": "JPEG", "jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "gif": "GIF", "tif": "TIFF",
            "tiff": "TIFF", "bmp": "BMP", "avif": "AVIF"}
PLACEHOLDER_RE = re.compile(r"^https?://((www\.)?example\.|localhost)", re.I)
DISTINCTIVE = ("@id", "protocol", "@context", "tiles", "formats")
_REQUEST_RE = re.compile(
    r"^(?P<base>.+?)/(?:full|square|\d+,\d+,\d+,\d+|pct:[\d.,]+)/(?:full|max|\^?!?\d*,\d*|\^?pct:[\d.]+)"
    r"/!?\d+(?:\.\d+)?/[A-Za-z]+\.\w+(?:[?#].*)?$")
_IMAGE_EXT_RE = re.compile(r"\.(?:jpe?g|png|gif|webp|tiff?|bmp|avif)(?:[?#].*)?$", re.I)
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")
FULL_REQUEST_MAX = 8192


@dataclass(frozen=True)
class IIIFLevel(Level):
    """Tiles of a level at scale factor ``scale`` of a ``full_width`` × ``full_height`` image."""

    base: str = ""
    scale: int = 1
    full_width: int = 0
    full_height: int = 0
    quality: str = "default"
    format: str = "jpg"
    version: int = 2
    level0: bool = False
    #: v2 only: ask for ``w,h`` (the server supports sizeByWh) instead of ``w,``
    exact_size: bool = False

    def tile_url(self, col: int, row: int) -> str:
        tw, th, s, fw, fh = self.tile_width, self.tile_height, self.scale, self.full_width, self.full_height
        x, y = col * tw * s, row * th * s
        rw, rh = min(tw * s, fw - x), min(th * s, fh - y)
        region = "full" if (x, y, rw, rh) == (0, 0, fw, fh) else f"{x},{y},{rw},{rh}"
        sw, sh = min(tw, self.width - col * tw), min(th, self.height - row * th)
        if self.version >= 3:
            size = "max" if (sw, sh) == (fw, fh) else f"{sw},{sh}"
        elif self.version == 2:
            size = "full" if sw == fw else (f"{sw},{sh}" if self.exact_size else f"{sw},")
        elif self.level0 or (self.width < tw and self.height < th):
            size = f"{sw},"
        else:
            size = f"{sw},{sh}"
        return f"{self.base}/{region}/{size}/0/{self.quality}.{self.format}"


@dataclass(frozen=True)
class IIIFSizeLevel(Level):
    """A whole-image request at one size (level-0 servers without tiles): ``full/{size}/0/q.f``."""

    base: str = ""
    size_spec: str = ""
    quality: str = "default"
    format: str = "jpg"

    def tile_url(self, col: int, row: int) -> str:
        return f"{self.base}/full/{self.size_spec}/0/{self.quality}.{self.format}"


@dataclass
class Profile:
    formats: list[str] = field(default_factory=list)
    qualities: list[str] = field(default_factory=list)
    supports: list[str] = field(default_factory=list)
    max_width: int | None = None
    max_height: int | None = None
    max_area: int | None = None
    levels: list[int] = field(default_factory=list)  # compliance levels of the recognised references
    #: the ``formats`` of profile objects (v2: "the set of format values available"), not the ones a
    #: compliance level implies, nor v3's extraFormats (added to the level's)
    stated_formats: list[str] = field(default_factory=list)

    def add(self, other: Profile) -> None:
        self.formats += other.formats
        self.stated_formats += other.stated_formats
        self.qualities += other.qualities
        self.supports += other.supports
        self.levels += other.levels
        for key in ("max_width", "max_height", "max_area"):
            mine, theirs = getattr(self, key), getattr(other, key)
            if theirs is not None:
                setattr(self, key, theirs if mine is None else min(mine, theirs))

    def within(self, w: int, h: int) -> bool:
        """Is a ``w`` × ``h`` image within maxWidth, maxHeight (default maxWidth) and maxArea?"""
        mh = self.max_height if self.max_height is not None else self.max_width
        return ((self.max_width is None or w <= self.max_width) and (mh is None or h <= mh)
                and (self.max_area is None or w * h <= self.max_area))

    def max_size(self, w: int, h: int) -> tuple[int, int]:
        """``(w, h)`` scaled down (aspect ratio kept, never up) to fit maxWidth, maxHeight (default
        maxWidth) and maxArea: the size of a ``max`` request."""
        mh = self.max_height if self.max_height is not None else self.max_width
        scale = 1.0
        if self.max_width is not None:
            scale = min(scale, self.max_width / w)
        if mh is not None:
            scale = min(scale, mh / h)
        if self.max_area is not None:
            scale = min(scale, math.sqrt(self.max_area / (w * h)))
        fw, fh = max(1, math.floor(w * scale)), max(1, math.floor(h * scale))
        while not self.within(fw, fh) and (fw > 1 or fh > 1):  # float rounding: never past a limit
            fw, fh = max(1, fw - 1), max(1, fh - 1)
        return fw, fh

    def crop(self, w: int, h: int) -> tuple[int, int]:
        """``(w, h)`` cropped to maxWidth, maxHeight (default maxWidth) and maxArea."""
        mh = self.max_height if self.max_height is not None else self.max_width
        if self.max_width is not None:
            w = min(w, self.max_width)
        if mh is not None:
            h = min(h, mh)
        if self.max_area is not None and w * h > self.max_area:
            side = max(1, math.isqrt(self.max_area))
            w, h = min(w, side), min(h, side)
        return w, h


def _strings(v: Any) -> list[str]:
    if isinstance(v, str):
        return [v]
    return [x for x in v if isinstance(x, str)] if isinstance(v, list) else []


def _limit(v: Any, what: str) -> int | None:
    if v is None:
        return None
    n = to_int(v, what)
    if n <= 0:
        raise MetadataError(f"invalid {what}: {n}")
    return n


def profile_from(obj: Any) -> Profile:
    """Merge a profile reference, object, or list of them (lists: concatenate, limits take the min)."""
    out = Profile()
    if isinstance(obj, str):
        key = obj.strip().replace("https://", "http://")
        known = PROFILES.get(key) or PROFILES.get(key + ".json")
        if known is None:
            log.warning("IIIF: unknown profile %r", obj)
        else:
            out.levels, out.formats, out.qualities, out.supports = [known[0]], *map(list, known[1:])
    elif isinstance(obj, list):
        for item in obj[:64]:
            out.add(profile_from(item))
    elif isinstance(obj, dict):
        out.formats = _strings(obj.get("formats")) + _strings(obj.get("extraFormats"))
        out.stated_formats = _strings(obj.get("formats"))
        out.qualities = _strings(obj.get("qualities")) + _strings(obj.get("extraQualities"))
        out.supports = _strings(obj.get("supports")) + _strings(obj.get("extraFeatures"))
        out.max_width = _limit(obj.get("maxWidth"), "maxWidth")
        out.max_height = _limit(obj.get("maxHeight"), "maxHeight")
        out.max_area = _limit(obj.get("maxArea"), "maxArea")
    return out


def _best(candidates: list[str], rank: list[str], default: str) -> str:
    def score(name: str) -> int:
        n = name.lower()
        n = "gray" if n == "grey" else n
        return rank.index(n) if n in rank else -1

    ok = [c for c in candidates if _TOKEN_RE.fullmatch(c)]
    return max(ok, key=score) if ok else default  # max keeps the first of equal scores


def best_quality(qualities: list[str], default: str = "default") -> str:
    return _best(qualities, QUALITY_RANK, default)


def best_format(formats: list[str]) -> str:
    """Among formats offered, the best one we decode (jpg first); jpg when none is."""
    return _best([f for f in formats if decodable(f)], FORMAT_RANK, "jpg")


def decodable(fmt: str) -> bool:
    """Do we decode tiles of the IIIF format ``fmt`` (``jpg``, ``png``, ``webp``…)?"""
    return bool(_TOKEN_RE.fullmatch(fmt)) and DECODERS.get(fmt.lower()) in allowed_formats()


def check_tile_format(fmt: object) -> str:
    """The user's ``tile_format`` checked: an IIIF format name we decode, lower case."""
    if not isinstance(fmt, str) or not decodable(fmt.strip()):
        names = ", ".join(f for f in DECODERS if decodable(f))
        raise DezoomifyError(f"unknown or undecodable tile format {fmt!r}",
                             hint=f"Give an IIIF format name: {names}.")
    return fmt.strip().lower()


def choose_format(offered: list[str], preferred: list[str], requested: str | None = None) -> str:
    """The tile format to ask for: the requested one; else the first of ``preferredFormats`` we decode; else
    jpg when offered or when nothing is said; else the best offered format we decode."""
    if requested:
        return requested
    for f in preferred:
        if decodable(f):
            return f.lower()
    names = [f.lower() for f in offered if _TOKEN_RE.fullmatch(f)]
    return "jpg" if not names or "jpg" in names else best_format(names)


def api_version(info: dict[str, Any]) -> int:
    ctx = " ".join(_strings(info.get("@context")))
    for pattern, v in (("image/3", 3), ("image/2", 2), ("image-api/1", 1), ("image/1", 1)):
        if pattern in ctx:
            return v
    kind = str(info.get("type") or info.get("@type") or "")
    if kind == "ImageService3" or ("id" in info and "@id" not in info):
        return 3
    if "tile_width" in info or "scale_factors" in info:
        return 1
    return 2


def tiles_base(info_url: str, info: dict[str, Any]) -> str:
    ident = info.get("@id") or info.get("id")
    if isinstance(ident, str) and ident.strip() and not PLACEHOLDER_RE.match(ident.strip()):
        base = resolve_relative(info_url, ident.strip()).rstrip("/")
        return base[: -len("/info.json")] if base.endswith("/info.json") else base  # a common server bug
    base = info_url.split("#", 1)[0] if "://" in info_url else info_url
    # …/iipsrv.fcgi?IIIF=/images/a.tif/info.json: the service is named inside the query string
    m = re.fullmatch(r"(?P<base>.+?)/info\.json(?:\?[^/]*)?", base) if "://" in info_url else None
    if m:
        return m.group("base")
    base = (re.split(r"[?#]", base, maxsplit=1)[0] if "://" in info_url else base).rstrip("/")
    return base[: -len("/info.json")] if base.endswith("/info.json") else base


def _scale_factors(v: Any) -> list[int]:
    out = [to_int(x, "scale factor") for x in (v if isinstance(v, list) else [])[:256]]
    if any(not 0 < s <= MAX_SIDE for s in out):
        raise MetadataError(f"invalid scale factors {reprlib.repr(v)} (each must be between 1 and {MAX_SIDE})")
    return list(dict.fromkeys(out))


def _first_set(*values: Any) -> Any:
    """The first value that is not None (0 counts: a tile width of 0 must be refused, not defaulted)."""
    return next((v for v in values if v is not None), None)


def _powers(width: int, height: int, tw: int, th: int) -> list[int]:
    sfs = [1]
    while (math.ceil(width / sfs[-1]) > tw or math.ceil(height / sfs[-1]) > th) and len(sfs) < MAX_LEVELS:
        sfs.append(sfs[-1] * 2)
    return sfs


def build_image(info_url: str, info: dict[str, Any], dezoomer: str = "iiif", tile_format: str | None = None) -> Image:
    """The image an ``info.json`` describes; ``tile_format`` is the user's format (see :func:`choose_format`)."""
    width, height = to_int(info.get("width"), "width"), to_int(info.get("height"), "height")
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise MetadataError(f"invalid IIIF image size {width}x{height}")
    version = api_version(info)
    prof = profile_from(info.get("profile"))
    prof.add(profile_from({k: info.get(k) for k in ("extraFormats", "extraQualities", "extraFeatures",
                                                     "maxWidth", "maxHeight", "maxArea")}))
    base = tiles_base(info_url, info)
    name = base.rsplit("/", 1)[-1] if last_segment(base) else "IIIF Image"
    quality = best_quality(_strings(info.get("qualities")) + prof.qualities, "native" if version == 1 else "default")
    stated = _strings(info.get("formats")) + prof.stated_formats  # a static tree's own list: png only…
    fmt = choose_format(stated or prof.formats, _strings(info.get("preferredFormats")), tile_format)
    level0 = bool(prof.levels) and prof.levels[0] == 0
    can_region = "regionByPx" in prof.supports or not prof.levels or min(prof.levels) > 0

    specs: list[tuple[int, int, list[int]]] = []
    tiles = info.get("tiles") if isinstance(info.get("tiles"), list) else []
    for t in tiles[:64]:
        if isinstance(t, dict):
            tw = to_int(t.get("width"), "tile width")
            th = to_int(t.get("height"), "tile height", default=tw)
            if prof.crop(tw, th) == (tw, th):
                specs.append((tw, th, _scale_factors(t.get("scaleFactors"))))
    v1_tiles = "tile_width" in info or "scale_factors" in info
    first = tiles[0] if tiles and isinstance(tiles[0], dict) else {}
    if (tiles or v1_tiles or can_region) and not any(1 in sfs for _, _, sfs in specs):
        tw = to_int(_first_set(info.get("tile_width"), first.get("width")), "tile_width", default=1024)
        th = to_int(_first_set(info.get("tile_height"), first.get("height")), "tile_height", default=tw)
        if tw <= 0 or th <= 0:
            raise MetadataError(f"invalid IIIF tile size {tw}x{th}")
        tw, th = prof.crop(tw, th)
        sfs = _scale_factors(info.get("scale_factors")) or _powers(width, height, tw, th)
        specs.append((tw, th, sfs))

    levels: dict[tuple[int, int], Level] = {}
    for tw, th, sfs in specs:
        for sf in sfs:
            w, h = level_for_scale(width, height, sf)
            if (w, h) in levels:
                continue
            args = dict(name=name, base=base, scale=sf, full_width=width, full_height=height, quality=quality,
                        format=fmt, version=version, level0=level0,
                        exact_size=version == 2 and not level0 and "sizeByWh" in prof.supports)
            url0 = IIIFLevel(w, h, tw, th, **args).tile_url(0, 0)
            levels[(w, h)] = IIIFLevel(w, h, tw, th, headers=referer(url0), **args)
    if not specs:  # level 0 without tiles: whole-image requests at the sizes the server must serve
        sizes = info.get("sizes") if isinstance(info.get("sizes"), list) else []
        for s in sizes[:MAX_LEVELS]:
            if not isinstance(s, dict):
                continue
            w, h = to_int(s.get("width"), "size width"), to_int(s.get("height"), "size height")
            if not (0 < w <= min(width, MAX_TILE_SIDE) and 0 < h <= min(height, MAX_TILE_SIDE)):
                continue
            if not prof.within(w, h):
                log.info("IIIF: listed size %dx%d is over the server's limits; not asked for", w, h)
                continue
            spec = f"{w},{h}" if version >= 3 else f"{w},"
            levels.setdefault((w, h), _size_level(w, h, name, base, spec, quality, fmt))
        full = "max" if version >= 3 else "full"
        if prof.within(width, height):
            if (width, height) not in levels and max(width, height) <= FULL_REQUEST_MAX:
                levels[(width, height)] = _size_level(width, height, name, base, full, quality, fmt)
        elif version >= 3 or not levels:  # "max": the largest size the server allows (v2.1 has it too)
            w, h = prof.max_size(width, height)
            if (w, h) not in levels and max(w, h) <= FULL_REQUEST_MAX:
                levels[(w, h)] = _size_level(w, h, name, base, "max", quality, fmt)
        if not levels:
            raise MetadataError("IIIF level-0 image without tiles, and no listed size can be downloaded")
    return Image(levels=tuple(levels.values()), title=None, dezoomer=dezoomer, url=info_url)


def _size_level(w: int, h: int, name: str, base: str, spec: str, quality: str, fmt: str) -> IIIFSizeLevel:
    url = f"{base}/full/{spec}/0/{quality}.{fmt}"
    return IIIFSizeLevel(w, h, w, h, headers=referer(url), name=name, base=base, size_spec=spec,
                         quality=quality, format=fmt)


def _is_iiif_object(obj: dict[str, Any]) -> bool:
    if "width" not in obj or "height" not in obj:
        return False
    kind = obj.get("type") or obj.get("@type")
    return any(k in obj for k in DISTINCTIVE) or kind in ("iiif:ImageProfile", "ImageService3", "ImageService2")


def find_infos(data: bytes) -> list[dict[str, Any]]:
    """The info.json object(s) in ``data``: strict JSON first, then embedded object literals."""
    obj = load_json(data)
    if isinstance(obj, dict):
        if "width" in obj and "height" in obj:
            return [obj]
        if "sequences" in obj or obj.get("type") == "Manifest" or obj.get("@type") == "sc:Manifest":
            raise WrongDezoomer("an IIIF presentation manifest, not an image info.json")
        raise WrongDezoomer("JSON without width and height: not an IIIF info.json")
    words = DISTINCTIVE + ("ImageProfile", "ImageService")
    found = [o for o in _json5.iter_objects(data, must_contain=words) if _is_iiif_object(o)]
    if not found:
        raise WrongDezoomer("no IIIF info.json found")
    return found


def info_url(url: str) -> tuple[str, bool]:
    """``(info.json URL, derived)``: an image request URL gives its service's info.json."""
    if "{{" in url:
        raise WrongDezoomer("a URL template, not an IIIF info.json")
    m = _REQUEST_RE.match(url)
    if m:
        return m.group("base") + "/info.json", True
    if _IMAGE_EXT_RE.search(url):
        raise WrongDezoomer("an image file, not an IIIF info.json")
    return url, False


class IIIFDezoomer(Dezoomer):
    name = "iiif"
    description = "IIIF Image API 1.1/2/3 (info.json)"

    def images(self, ctx: Context) -> list[Image]:
        url, derived = info_url(ctx.url)
        try:
            data = ctx.get(url)
        except FetchError as exc:
            if derived:
                raise WrongDezoomer(f"no info.json at {url} ({exc})") from None
            raise
        images: dict[str, Image] = {}
        requested = ctx.options.get("tile_format")
        requested = check_tile_format(requested) if requested else None
        for info in find_infos(data):
            im = build_image(url, info, self.name, requested)
            fmt = getattr(im.levels[-1], "format", "jpg")
            preferred = [f.lower() for f in _strings(info.get("preferredFormats"))]
            if fmt != "jpg" and fmt not in preferred and _refused(ctx, im.levels[-1].tile_url(0, 0), fmt):
                im = build_image(url, info, self.name, "jpg")
            images.setdefault(f"{im.levels[0].tile_url(0, 0)} {im.levels[0].size}", im)
        return list(images.values())


def _refused(ctx: Context, probe: str, fmt: str) -> bool:
    """Does the server refuse (4xx) ``probe``, the first tile of the smallest level in ``fmt``? Said if so."""
    try:
        ctx.get(probe)
    except FetchError as exc:
        if exc.status is not None and 400 <= exc.status < 500:
            log.warning("IIIF: the server refused %s tiles (%s); falling back to jpg", fmt, exc)
            return True
    return False  # served, or failed otherwise (a 5xx, a timeout): the download says what happens
