"""IIPImage (iipsrv): ``…/iipsrv.fcgi?FIF=path/image.tif`` → ``OBJ`` metadata → ``JTL=r,i`` tiles.

Any URL with a ``FIF=`` parameter works: a viewer's tile request (``?FIF=a.tif&JTL=4,11``), a
``?FIF=a.tif&CVT=jpeg`` export, or the metadata request itself. The metadata URL is the server path, the
``FIF`` parameter exactly as written (``fif=`` stays lower-case) and
``&OBJ=Max-size&OBJ=Tile-size&OBJ=Resolution-number``. The reply is ``Key:v1 v2`` lines.

Resolution ``r`` = 0 is the smallest; resolution ``r`` of ``n`` has size ``(W, H) >> (n-1-r)`` (floor,
as dezoomify-rs and iipmooviewer). Tile ``i`` of a resolution is ``row·cols + col``.

Better than dezoomify-rs: ``FIF`` need not be the first parameter (``?WID=…&FIF=…`` works; dezoomify-rs
cuts at the first ``&`` and keeps only what comes before), resolutions that would be 0 px wide are
dropped instead of failing, and the metadata is sanity-capped before anything is built from it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import MetadataError, WrongDezoomer
from ..model import MAX_LEVELS, MAX_SIDE, MAX_TILE_SIDE, Image, Level
from ._common import referer
from .base import Context, Dezoomer

NAME = "IIPImage"
META_SUFFIX = "&OBJ=Max-size&OBJ=Tile-size&OBJ=Resolution-number"
_FIF_RE = re.compile(r"[?&](FIF=[^&#]*)", re.I)


@dataclass(frozen=True)
class IIPLevel(Level):
    """Resolution ``resolution`` (0 = smallest) of the image at ``base`` (``…?FIF=…``)."""

    base: str = ""
    resolution: int = 0

    def tile_url(self, col: int, row: int) -> str:
        return f"{self.base}&JTL={self.resolution},{row * self.cols + col}"


def metadata_url(url: str) -> str:
    """The ``OBJ`` metadata request for any URL carrying a ``FIF`` parameter."""
    if url.endswith(META_SUFFIX):
        return url
    m = _FIF_RE.search(url)
    if m is None or "?" not in url[: m.start() + 1]:
        raise WrongDezoomer("no FIF= parameter in the URL")
    path = url[: url.index("?")]
    return f"{path}?{m.group(1)}{META_SUFFIX}"


def parse_metadata(data: bytes) -> tuple[int, int, int, int, int]:
    """``(W, H, tile_w, tile_h, resolutions)`` from an ``OBJ`` reply; MetadataError if a key is missing."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MetadataError(f"invalid IIPImage metadata: {exc}") from None
    found: dict[str, list[int]] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        nums: list[int] = []
        for word in value.split()[:2]:
            if not re.fullmatch(r"\d{1,12}", word):
                break
            nums.append(int(word))
        found.setdefault(key.strip().lower(), nums)
    need = {"Max-size": 2, "Tile-size": 2, "Resolution-number": 1}
    for pretty, n in need.items():
        if len(found.get(pretty.lower(), [])) < n:
            raise MetadataError(f"missing key '{pretty}' in the IIPImage metadata",
                                hint="The server did not answer the OBJ request like iipsrv does.")
    (w, h), (tw, th), (n,) = found["max-size"][:2], found["tile-size"][:2], found["resolution-number"][:1]
    if not (0 < w <= MAX_SIDE and 0 < h <= MAX_SIDE):
        raise MetadataError(f"invalid IIPImage Max-size {w}x{h}")
    if not (0 < tw <= MAX_TILE_SIDE and 0 < th <= MAX_TILE_SIDE):
        raise MetadataError(f"invalid IIPImage Tile-size {tw}x{th}")
    if not 0 < n <= MAX_LEVELS:
        raise MetadataError(f"invalid IIPImage Resolution-number {n}")
    return w, h, tw, th, n


def build_levels(meta_url: str, data: bytes) -> list[IIPLevel]:
    """Every resolution, smallest first (resolutions that would be empty are left out)."""
    base = meta_url[: -len(META_SUFFIX)]
    w, h, tw, th, n = parse_metadata(data)
    levels: list[IIPLevel] = []
    for r in range(n):
        shift = n - 1 - r
        lw, lh = w >> shift, h >> shift
        if lw == 0 or lh == 0:
            continue
        first = f"{base}&JTL={r},0"
        levels.append(IIPLevel(lw, lh, tw, th, headers=referer(first), name=NAME, base=base, resolution=r))
    return levels


class IIPImageDezoomer(Dezoomer):
    name = "IIPImage"
    description = "IIPImage server (…/iipsrv.fcgi?FIF=image.tif, JTL tiles)"

    def images(self, ctx: Context) -> list[Image]:
        url = metadata_url(ctx.url)
        levels = build_levels(url, ctx.get(url))
        return [Image(levels=tuple(levels), title=None, dezoomer=self.name, url=url)]
