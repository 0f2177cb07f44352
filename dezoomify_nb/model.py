"""Plain, frozen, picklable data: zoom levels and images. No I/O here.

A :class:`Level` describes one resolution of a tiled image: its size, its tile grid and how to
build the URL of a tile. Each format subclasses it (a frozen dataclass defined at module level, so it
pickles to dask workers) and implements :meth:`Level.tile_url`.
"""

from __future__ import annotations

import math
import os
import posixpath
from dataclasses import dataclass, field, replace
from urllib.parse import unquote, urljoin, urlsplit

#: Sanity caps applied to untrusted metadata before anything is allocated from it.
#:
#: Two tiers. The **hard** caps below are checked by :class:`Level` and :class:`Image` themselves, so no
#: dezoomer can ever build anything past them: 10^7 px per side, 2^44 px (~17.6 Tpx) per level, tiles of at
#: most 32768 px a side, 2^28 tiles per level, 64 levels. The **soft** cap :data:`DEFAULT_MAX_PIXELS`
#: (10^12 px = 1 Tpx, ~3 TB as RGB) is checked by :func:`check_image_size` when an image is opened; a user
#: whose image really is larger raises it with ``--max-pixels`` / ``dz.open(..., max_pixels=...)`` (up to
#: the hard cap). Dezoomers see the value as ``ctx.options["max_pixels"]``.
MAX_SIDE = 10_000_000  # pixels per side
MAX_PIXELS = 1 << 44  # ~17.6 Tpx: far more than any real image, far less than overflow
MAX_TILE_SIDE = 1 << 15  # 32768 px per tile side
MAX_TILES = 1 << 28  # tiles per level
MAX_LEVELS = 64
DEFAULT_MAX_PIXELS = 10**12


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class Level:
    """One zoom level: a ``width`` × ``height`` image cut into ``tile_width`` × ``tile_height`` tiles.

    Tile ``(col, row)`` covers the pixels ``[col·tw, min((col+1)·tw, W))`` × ``[row·th, …)``. A tile
    image may carry ``overlap`` extra pixels on each side that touches a neighbour (Deep Zoom); they are
    cropped on decode. ``headers`` are extra HTTP headers for this level's tiles (e.g. a Referer).
    """

    width: int
    height: int
    tile_width: int
    tile_height: int
    overlap: int = 0
    headers: tuple[tuple[str, str], ...] = ()
    name: str = ""

    def __post_init__(self) -> None:
        from .errors import MetadataError

        for attr in ("width", "height", "tile_width", "tile_height"):
            v = getattr(self, attr)
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise MetadataError(f"invalid {attr}: {v!r}")
        if self.width > MAX_SIDE or self.height > MAX_SIDE or self.width * self.height > MAX_PIXELS:
            raise MetadataError(f"image size {self.width}x{self.height} is over the sanity cap "
                                f"({MAX_SIDE} px per side, {MAX_PIXELS} px in all)")
        if self.tile_width > MAX_TILE_SIDE or self.tile_height > MAX_TILE_SIDE:
            raise MetadataError(f"tile size {self.tile_width}x{self.tile_height} is over the sanity cap")
        if not (0 <= self.overlap < min(self.tile_width, self.tile_height)):
            raise MetadataError(f"invalid overlap {self.overlap}")
        if self.cols * self.rows > MAX_TILES:
            raise MetadataError(f"{self.cols * self.rows} tiles is over the sanity cap")

    # --- geometry -------------------------------------------------------------------------------
    @property
    def cols(self) -> int:
        return ceil_div(self.width, self.tile_width)

    @property
    def rows(self) -> int:
        return ceil_div(self.height, self.tile_height)

    @property
    def n_tiles(self) -> int:
        return self.cols * self.rows

    @property
    def size(self) -> tuple[int, int]:
        return (self.width, self.height)

    @property
    def tile_size(self) -> tuple[int, int]:
        return (self.tile_width, self.tile_height)

    def tile_box(self, col: int, row: int) -> tuple[int, int, int, int]:
        """``(x, y, w, h)`` of the pixels tile ``(col, row)`` covers in this level."""
        x, y = col * self.tile_width, row * self.tile_height
        return x, y, min(self.tile_width, self.width - x), min(self.tile_height, self.height - y)

    def tile_offset(self, col: int, row: int) -> tuple[int, int]:
        """Pixels to skip at the left and top of the served tile image (overlap with neighbours)."""
        return (self.overlap if col > 0 else 0, self.overlap if row > 0 else 0)

    def tile_url(self, col: int, row: int) -> str:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must implement tile_url")

    def postprocess(self, data: bytes) -> bytes:
        """Turn the bytes served for a tile into an encoded image (run at decode; the cache keeps the
        served bytes). Identity by default; e.g. Google Arts & Culture decrypts its tiles here."""
        return data

    def tile_positions(self):
        """Every ``(col, row)`` of the grid, row-major."""
        for row in range(self.rows):
            for col in range(self.cols):
                yield col, row

    def describe(self) -> str:
        return f"{self.name or type(self).__name__} ({self.width:>5} x {self.height:>5} pixels, {self.n_tiles:>5} tiles)"


@dataclass(frozen=True)
class TemplateLevel(Level):
    """A level whose tile URLs come from a ``str.format`` template with ``{col}`` and ``{row}``."""

    template: str = ""

    def tile_url(self, col: int, row: int) -> str:
        return self.template.format(col=col, row=row)


@dataclass(frozen=True)
class GeoRef:
    """Where an image lies on Earth (map sources: WMTS, XYZ/TMS, TileJSON, ArcGIS; IIIF georeferencing).

    ``crs``: the coordinate reference system, as ``"EPSG:<code>"`` when there is one, else WKT.
    ``transform``: the GDAL geotransform of the **full-resolution** level, ``(c, a, b, f, d, e)`` with
    ``X = c + a·col + b·row`` and ``Y = f + d·col + e·row`` for the pixel corner ``(col, row)`` (north-up:
    ``b = d = 0``, ``e < 0``); None when only ground control points are known. ``gcps``: ground control
    points ``(col, row, X, Y)`` in full-resolution pixels and ``crs`` units (a IIIF Georeference
    Annotation), which a GIS warps with.
    """

    crs: str
    transform: tuple[float, float, float, float, float, float] | None = None
    gcps: tuple[tuple[float, float, float, float], ...] = ()
    #: how the source says to warp with the GCPs: ``"polynomial1"`` … ``"polynomial3"``, ``"thinPlateSpline"``
    #: (a IIIF Georeference Annotation's ``transformation``), ``""`` when it does not say
    warp: str = ""

    def for_level(self, level: Level, full: Level) -> GeoRef:
        """This georeference for ``level`` (a reduction of ``full``): pixel sizes and GCP pixels scaled.

        A level that knows its own geotransform (a ``geotransform`` attribute, as the tile matrices of map
        sources do: their levels start at different tile edges, so they are not exact reductions) gives it.
        """
        sx, sy = full.width / level.width, full.height / level.height
        transform = None
        own = getattr(level, "geotransform", None)
        if own is not None and self.transform is not None:
            transform = tuple(float(v) for v in own)  # type: ignore[assignment]
        elif self.transform is not None:
            c, a, b, f, d, e = self.transform
            transform = (c, a * sx, b * sy, f, d * sx, e * sy)
        gcps = tuple((col / sx, row / sy, x, y) for col, row, x, y in self.gcps)
        return replace(self, transform=transform, gcps=gcps)


def _minus_pixels(level: Level) -> int:
    return -level.width * level.height


def _ground_area(level: Level) -> float:
    """Sort key of map levels, full resolution first: a pixel's area on the ground (levels cut to a box start
    at different tile edges, so a coarser one may have more pixels than a finer one)."""
    gt = level.geotransform  # type: ignore[attr-defined]
    return abs(gt[1] * gt[5] - gt[2] * gt[4])


@dataclass(frozen=True)
class Image:
    """What a dezoomer found: levels sorted **largest first** (``levels[0]`` is full resolution; levels that
    all know their geotransform are sorted by resolution, finest first)."""

    levels: tuple[Level, ...]
    title: str | None = None
    dezoomer: str = ""
    url: str = ""
    metadata: tuple[tuple[str, str], ...] = field(default=())
    #: the part of the image that is meant, ``(x, y, w, h)`` in full-resolution pixels (an IIIF manifest
    #: painting a region of an image): what ``save`` writes unless told otherwise; None: all of it
    region: tuple[int, int, int, int] | None = None
    #: clockwise degrees the source says to turn the image by (noted, not applied to the pixels)
    rotation: float = 0
    #: where the image lies on Earth (map sources), for ``levels[0]``; see :meth:`GeoRef.for_level`
    georef: GeoRef | None = None

    def __post_init__(self) -> None:
        from .errors import MetadataError

        if not self.levels:
            raise MetadataError("A zoomable image was found, but it did not contain any zoom level")
        if len(self.levels) > MAX_LEVELS:
            raise MetadataError(f"{len(self.levels)} levels is over the sanity cap")
        mapped = all(getattr(lv, "geotransform", None) is not None for lv in self.levels)
        ordered = tuple(sorted(self.levels, key=_ground_area if mapped else _minus_pixels))
        object.__setattr__(self, "levels", ordered)
        if self.region is not None:  # clipped to the image; nothing left of it: the whole image
            x, y, w, h = (int(v) for v in self.region)
            full = ordered[0]
            x0, y0 = min(max(x, 0), full.width), min(max(y, 0), full.height)
            x1, y1 = min(max(x + w, 0), full.width), min(max(y + h, 0), full.height)
            box = (x0, y0, x1 - x0, y1 - y0)
            whole = box == (0, 0, full.width, full.height) or box[2] <= 0 or box[3] <= 0
            object.__setattr__(self, "region", None if whole else box)


@dataclass(frozen=True)
class ImageRef:
    """An image that is known but not resolved yet (a manifest canvas, a line of a bulk list).

    Resolving it runs the dezoomer ``dezoomer`` (``"auto"`` to detect) on ``url``; nothing is fetched
    before that. ``title`` is known now; ``width``/``height`` are a hint from the source (a canvas size),
    not authoritative. ``found_by`` is the dezoomer that listed it.
    """

    url: str
    title: str | None = None
    dezoomer: str = "auto"
    width: int | None = None
    height: int | None = None
    found_by: str = ""
    #: given to the :class:`Image` it resolves to (see :attr:`Image.region`, :attr:`Image.rotation`)
    region: tuple[int, int, int, int] | None = None
    rotation: float = 0
    #: the web page it was found in: the image it resolves to is fetched with it as Referer
    page: str | None = None
    #: where the image lies on Earth (a IIIF Georeference Annotation), GCP pixels in ``width × height``
    #: coordinates: scaled to the image it resolves to
    georef: GeoRef | None = None

    @property
    def size_hint(self) -> tuple[int, int] | None:
        if self.width and self.height:
            return (self.width, self.height)
        return None


def with_page_referer(image: Image, page: str | None) -> Image:
    """``image`` whose tiles are requested with ``Referer: page`` (the web page, or frame, whose viewer shows
    it: what a browser sends) instead of the level's own (its first tile). A user's Referer still wins."""
    if not page or not page.startswith(("http://", "https://")):
        return image
    levels = tuple(replace(lv, headers=tuple(h for h in lv.headers if h[0].lower() != "referer")
                           + (("Referer", page),)) for lv in image.levels)
    return replace(image, levels=levels)


def ref_georef(ref: ImageRef, image: Image) -> GeoRef | None:
    """``ref.georef`` for the image ``ref`` resolved to: GCP pixels scaled from ``ref``'s size (the size the
    annotation or canvas declared) to the image's full resolution."""
    if ref.georef is None:
        return None
    full = image.levels[0]
    sx, sy = (full.width / ref.width, full.height / ref.height) if ref.width and ref.height else (1.0, 1.0)
    if sx == sy == 1:
        return ref.georef
    gcps = tuple((col * sx, row * sy, x, y) for col, row, x, y in ref.georef.gcps)
    transform = None
    if ref.georef.transform is not None:
        c, a, b, f, d, e = ref.georef.transform
        transform = (c, a / sx, b / sy, f, d / sx, e / sy)
    return replace(ref.georef, transform=transform, gcps=gcps)


def check_max_pixels(value: object) -> int:
    """``value`` as a pixel cap: a positive whole number (``1e13`` is accepted), else ValueError."""
    if isinstance(value, bool):
        raise ValueError(f"max_pixels must be a positive number of pixels, not {value!r}")
    try:
        number = float(value) if isinstance(value, str) else value
        cap = int(number)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"max_pixels must be a positive number of pixels, not {value!r}") from None
    if cap <= 0 or cap != number:
        raise ValueError(f"max_pixels must be a positive whole number of pixels, not {value!r}")
    return cap


def check_image_size(image: Image, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """Refuse ``image`` when its largest level has more than ``max_pixels`` pixels (MetadataError).

    Called before anything is fetched or allocated for the pixels; see :data:`DEFAULT_MAX_PIXELS`.
    """
    from .errors import MetadataError

    lv = max(image.levels, key=lambda lv: lv.width * lv.height)
    pixels = lv.width * lv.height
    if pixels > max_pixels:
        raise MetadataError(
            f"the metadata declares a {lv.width}x{lv.height} image ({pixels:.3g} pixels), over the sanity cap "
            f"of {max_pixels:.3g} pixels",
            hint=f"If the image really is that large, raise the cap: --max-pixels {pixels} "
            f"(in Python: max_pixels={pixels}); the hard limit is {MAX_PIXELS} pixels.",
        )


def is_url(s: str) -> bool:
    return s.startswith(("http://", "https://"))


def resolve_relative(base: str, path: str) -> str:
    """Resolve ``path`` against ``base`` (a URL or a local file path), as dezoomify-rs does."""
    if is_url(path) or path.startswith("file://"):
        return path
    if is_url(base):
        return urljoin(base, path)
    if base.startswith("file://"):
        base = unquote(urlsplit(base).path)  # file:///my%20docs/a.dzi is in "/my docs"
    if os.path.isabs(path):
        return path
    return os.path.join(os.path.dirname(base), path)


def url_stem(url: str) -> str:
    """Last non-empty path segment without its extension: ``http://x/a/b.dzi`` → ``b``."""
    path = urlsplit(url).path if is_url(url) else url
    seg = posixpath.basename(path.rstrip("/"))
    return seg.rsplit(".", 1)[0] if "." in seg else seg


_IMAGE_EXTENSIONS = (".tif", ".tiff", ".ptif", ".jp2", ".jpx", ".jpg", ".jpeg", ".png", ".webp")


def image_name(url: str) -> str:
    """A name for an untitled image, from its URL: an IIIF ``…/{identifier}/info.json`` gives its identifier
    (URL-decoded, without an image file extension; a short one such as ``f1`` with the segment before it:
    ``btv1b84_f1``), anything else :func:`url_stem` (``…/scan.dzi`` → ``scan``)."""
    path = urlsplit(url).path if is_url(url) else url.replace(os.sep, "/")
    segments = [seg for seg in path.split("/") if seg]
    if len(segments) >= 2 and segments[-1].lower() == "info.json":
        ident = unquote(segments[-2])
        if ident.lower().endswith(_IMAGE_EXTENSIONS):
            ident = ident.rsplit(".", 1)[0]
        if len(ident) < 4 and len(segments) >= 3:
            ident = f"{unquote(segments[-3])}_{ident}"
        return ident
    return url_stem(url)


def level_for_scale(width: int, height: int, scale: float) -> tuple[int, int]:
    """Size of a level downscaled by ``scale`` ≥ 1, rounding up (the IIIF / OpenSeadragon rule)."""
    return max(1, math.ceil(width / scale)), max(1, math.ceil(height / scale))
