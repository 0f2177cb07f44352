"""Any tile URL → its image: a tile a viewer requested is mapped back to the image it belongs to.

:func:`match` recognises the tile URLs of every tile-addressed format and says where the image's
metadata is (no I/O):

=============================================  ==========================================  ==================
tile URL                                       metadata tried, in order                    fallback template
=============================================  ==========================================  ==================
Zoomify ``…/TileGroup3/5-12-7.jpg``            ``…/ImageProperties.xml``                   —
Deep Zoom ``…/name_files/12/3_4.jpg``          ``…/name.dzi``, ``…/name.xml``              ``name_files/{z}/{x}_{y}``
IIIF ``…/{region}/{size}/{rot}/{quality}.fmt`` ``…/info.json``                             —
IIPImage ``…?FIF=a.tif&JTL=4,11``              the ``OBJ`` request of ``FIF``              —
krpano ``…/l3/2/l3_2_5.jpg``                   —                                           ``l{z}/{y}/l{z}_{y}_{x}``
generic ``…/{z}/{x}/{y}.png``                  —                                           ``{z}/{x}/{y}``
=============================================  ==========================================  ==================

:class:`TileUrlDezoomer` (registry row ``tile_url``) opens the metadata with its format's parser; when
there is none (or it cannot be fetched), the tile's URL becomes a template whose bounds are probed as
the ``generic`` dezoomer does (:func:`~.generic.search_2d`): first the deepest level ``z`` whose first
tile exists (from the tile's own ``z`` upwards), then the last column and row of that level. Indices that
count from 1 (krpano) are found by probing the first tile at 0, then at 1; zero-padding is kept as seen.
The browser mode and HAR files (:mod:`.recorded`) use the same :func:`match` for the tiles a viewer
requested without its metadata being seen.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from ..errors import FetchError, MetadataError, WrongDezoomer
from ..model import Image, ImageRef, Level
from ._common import referer
from .base import Context, Dezoomer
from .generic import probe_image, search_2d

#: the deepest level probed above the tile's own (a level holds 4× the pixels of the one below)
MAX_LEVELS_UP = 12
_EXT = r"\.(?P<ext>jpe?g|png|webp|gif|avif|tiff?)"
_TAIL = r"(?P<query>[?#].*)?$"
_ZOOMIFY_RE = re.compile(r"^(?P<base>.+)/TileGroup\d+/(?P<z>\d+)-(?P<x>\d+)-(?P<y>\d+)" + _EXT + _TAIL, re.I)
_DZI_RE = re.compile(r"^(?P<stem>.+)_files/(?P<z>\d+)/(?P<x>\d+)_(?P<y>\d+)" + _EXT + _TAIL, re.I)
_IIIF_RE = re.compile(
    r"^(?P<base>https?://.+?)/(?:full|square|\d+,\d+,\d+,\d+|pct:[\d.,]+)/(?:full|max|\^?!?\d*,\d*|\^?pct:[\d.]+)"
    r"/!?\d+(?:\.\d+)?/(?:default|color|colour|gray|grey|bitonal|native)\.\w+(?:[?#].*)?$", re.I)
_IIP_RE = re.compile(r"[?&]FIF=[^&#]+.*&JTL=\d+,\d+", re.I)
_KRPANO_RE = re.compile(
    r"^(?P<pre>.+/)l(?P<z>\d{1,2})/(?P<y>\d+)/l(?P=z)_(?P=y)_(?P<x>\d+)" + _EXT + _TAIL, re.I)
_XYZ_RE = re.compile(r"^(?P<pre>https?://[^?#]+?)/(?P<z>\d{1,2})/(?P<x>\d{1,7})/(?P<y>\d{1,7})" + _EXT + _TAIL, re.I)


@dataclass(frozen=True)
class TileMatch:
    """What a tile URL tells about its image."""

    #: the format (``"zoomify"``, ``"deepzoom"``, ``"iiif"``, ``"IIPImage"``, ``"krpano"``, ``"xyz"``)
    kind: str
    #: the same for every tile of one image (its base URL): groups tiles by image
    key: str
    #: ``(metadata URL, dezoomer)`` to try, in order
    metadata: tuple[tuple[str, str], ...]
    #: a ``str.format`` template with ``{z}``, ``{x}``, ``{y}`` (padding included), or "" when the tile grid
    #: cannot be described without the metadata
    template: str
    z: int
    x: int
    y: int


def _index(text: str, name: str) -> str:
    """The format field of an index written as ``text`` (``"05"``: zero-padded to 2)."""
    return f"{{{name}:0{len(text)}d}}" if len(text) > 1 and text.startswith("0") else f"{{{name}}}"


def _braces(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def match(url: str) -> TileMatch | None:
    """The image ``url`` is a tile of, or None when it is not a tile URL of a known shape (no I/O)."""
    if not url.startswith(("http://", "https://")) or "{{" in url or len(url) > 8192:
        return None
    if m := _ZOOMIFY_RE.match(url):
        base = m.group("base")
        return TileMatch("zoomify", base, ((base + "/ImageProperties.xml", "zoomify"),), "",
                         int(m.group("z")), int(m.group("x")), int(m.group("y")))
    if m := _DZI_RE.match(url):
        stem, ext, query = m.group("stem"), m.group("ext"), m.group("query") or ""
        template = f"{_braces(stem)}_files/{{z}}/{_index(m.group('x'), 'x')}_{_index(m.group('y'), 'y')}.{ext}" \
                   + _braces(query)
        return TileMatch("deepzoom", stem, ((stem + ".dzi", "deepzoom"), (stem + ".xml", "deepzoom")), template,
                         int(m.group("z")), int(m.group("x")), int(m.group("y")))
    if m := _IIIF_RE.match(url):
        base = m.group("base")
        return TileMatch("iiif", base, ((base + "/info.json", "iiif"),), "", 0, 0, 0)
    if _IIP_RE.search(url):
        from .iipimage import metadata_url

        meta = metadata_url(url)
        return TileMatch("IIPImage", meta, ((meta, "IIPImage"),), "", 0, 0, 0)
    for kind, rx in (("krpano", _KRPANO_RE), ("xyz", _XYZ_RE)):
        if m := rx.match(url):
            pre, ext, query = _braces(m.group("pre")), m.group("ext"), _braces(m.group("query") or "")
            x, y = _index(m.group("x"), "x"), _index(m.group("y"), "y")
            template = (f"{pre}l{{z}}/{y}/l{{z}}_{y}_{x}.{ext}" if kind == "krpano"
                        else f"{pre}/{{z}}/{x}/{y}.{ext}") + query
            return TileMatch(kind, template, (), template, int(m.group("z")), int(m.group("x")), int(m.group("y")))
    return None


@dataclass(frozen=True)
class TileTemplateLevel(Level):
    """One level of a tile URL template: tile ``(col, row)`` is ``template`` at ``(z, first+col, first+row)``."""

    template: str = ""
    z: int = 0
    first: int = 0

    def tile_url(self, col: int, row: int) -> str:
        return self.template.format(z=self.z, x=self.first + col, y=self.first + row)


def open_metadata(ctx: Context, found: TileMatch) -> list[Image | ImageRef] | None:
    """The images of ``found``'s metadata, opened with its format's parser; None when none could be read
    (NeedsData goes up to the driver)."""
    from .page import _parsers

    parsers = _parsers()
    for url, name in found.metadata:
        try:
            images = parsers[name].images(Context(url, ctx.pages, ctx.options))
        except (WrongDezoomer, FetchError, MetadataError):
            continue
        if images:
            return list(images)
    return None


def probe_template(ctx: Context, found: TileMatch) -> Image:
    """The image of ``found.template``, its deepest level and its bounds found by probing tiles."""
    sizes: dict[str, tuple[int, int] | str] = {}

    def size(z: int, x: int, y: int) -> tuple[int, int] | None:
        url = found.template.format(z=z, x=x, y=y)
        if url not in sizes:
            sizes[url] = probe_image(ctx.try_get(url))
        got = sizes[url]
        return None if isinstance(got, str) else got

    first = 0 if min(found.x, found.y) == 0 or size(found.z, 0, 0) is not None else 1
    if size(found.z, first, first) is None:
        raise MetadataError(f"the first tile of level {found.z} could not be downloaded or decoded: "
                            f"{found.template.format(z=found.z, x=first, y=first)}",
                            hint="Open the viewer's metadata URL instead, or describe the grid in a tiles.yaml file "
                                 "(--dezoomer custom_yaml).")
    z = found.z
    while z < found.z + MAX_LEVELS_UP and size(z + 1, first, first) is not None:
        z += 1
    last_x, last_y = search_2d(lambda x, y: size(z, first + x, first + y) is not None)
    tw, th = size(z, first, first)  # type: ignore[misc]
    lw, lh = size(z, first + last_x, first + last_y)  # type: ignore[misc]
    width, height = last_x * tw + min(lw, tw), last_y * th + min(lh, th)
    zero = found.template.format(z=z, x=first, y=first)
    level = TileTemplateLevel(width, height, tw, th, headers=referer(zero), name=f"{found.kind} level {z}",
                              template=found.template, z=z, first=first)
    return Image(levels=(level,), title=None, dezoomer="tile_url", url=zero,
                 metadata=(("tile_template", found.template),))


def open_tile(ctx: Context, found: TileMatch) -> list[Image | ImageRef]:
    """The image(s) a tile belongs to: its metadata when it can be read, else its template probed."""
    images = open_metadata(ctx, found)
    if images is not None:
        return images
    if not found.template:
        tried = ", ".join(u for u, _ in found.metadata)
        raise MetadataError(f"this {found.kind} tile's metadata could not be read ({tried})",
                            hint="Open the viewer's page (with --browser if it needs JavaScript) or its metadata URL.")
    return [probe_template(ctx, found)]


class TileUrlDezoomer(Dezoomer):
    name = "tile_url"
    description = ("any tile URL (Zoomify, Deep Zoom, IIIF, IIPImage, krpano, …/{z}/{x}/{y}): its metadata, "
                   "else its grid probed")

    def images(self, ctx: Context) -> list[Image | ImageRef]:
        found = match(ctx.url)
        if found is None:
            raise WrongDezoomer("not a tile URL of a known shape")
        return [replace(im, metadata=im.metadata + (("tile_url", ctx.url),)) if isinstance(im, Image) else im
                for im in open_tile(ctx, found)]


__all__ = ["TileMatch", "TileTemplateLevel", "TileUrlDezoomer", "match", "open_tile"]
