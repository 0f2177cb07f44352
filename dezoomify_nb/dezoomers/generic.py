"""Generic tile URL template: ``http://x/tile_{{X}}_{{Y}}.jpg`` (``{{x:03}}`` zero-pads, never truncates).

There is no metadata: the grid is found by probing tiles (a probe succeeds when the bytes decode to a
non-empty image of an allowed format, see :mod:`dezoomify_nb.imageformats`; a 404, a failed fetch or anything
else means "outside"). The search is dezoomify-rs's:
a 1-D search guesses ``3·min+1`` until the first miss, then bisects; the 2-D search runs it on the
diagonal ``(n, n)``, probes ``(d+1, d)`` to learn the orientation, then searches along the longer side.

Better than dezoomify-rs: the tile size comes from tile (0, 0) and the exact image size from the last
tile ``(X, Y)`` (always probed by the search), so smaller edge tiles leave no empty strip.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image as PILImage

from .. import imageformats
from ..errors import MetadataError, WrongDezoomer
from ..model import Image, Level
from ._common import referer
from .base import Context, Dezoomer

TEMPLATE_RE = re.compile(r"\{\{(x|y)(?::0(\d+))?\}\}", re.I)
#: largest tile index a search may reach before we call the grid unbounded
MAX_INDEX = 1 << 20
UNBOUNDED_HINT = ("The server answers every tile index with an image (often a placeholder for missing tiles), so "
                  "the grid size cannot be found by probing. Open the viewer's metadata URL instead (--dezoomer auto), "
                  "or describe the grid in a tiles.yaml file (--dezoomer custom_yaml).")


def fill(template: str, x: int, y: int) -> str:
    """The template with ``{{X}}``/``{{Y}}`` replaced (zero-padded to the width given, if any)."""

    def sub(m: re.Match[str]) -> str:
        value = x if m.group(1).lower() == "x" else y
        return str(value).zfill(int(m.group(2) or 0))

    return TEMPLATE_RE.sub(sub, template)


@dataclass(frozen=True)
class GenericLevel(Level):
    """The single level of a URL template."""

    template: str = ""

    def tile_url(self, col: int, row: int) -> str:
        return fill(self.template, col, row)


class Dichotomy:
    """1-D search for the largest index that exists, knowing ``lo`` exists."""

    def __init__(self, lo: int = 0) -> None:
        self.lo = lo
        self.hi: int | None = None

    def guess(self) -> int:
        return 3 * self.lo + 1 if self.hi is None else (self.lo + self.hi) // 2

    def update(self, ok: bool) -> int | None:
        """Record the answer for :meth:`guess`; the next guess, or None when converged on ``lo``."""
        last = self.guess()
        if ok:
            self.lo = last
        else:
            self.hi = last
        nxt = self.guess()
        return None if nxt == last else nxt


def search_1d(exists: Callable[[int], bool], lo: int = 0) -> int:
    """The largest ``n >= lo`` with ``exists(n)`` (``exists(lo)`` is assumed true)."""
    d = Dichotomy(lo)
    g = d.guess()
    while True:
        if g > MAX_INDEX:
            raise MetadataError(f"tile index {g} still exists: the grid seems unbounded", hint=UNBOUNDED_HINT)
        nxt = d.update(exists(g))
        if nxt is None:
            return d.lo
        g = nxt


def search_2d(exists: Callable[[int, int], bool]) -> tuple[int, int]:
    """``(X, Y)``, the last column and row of a rectangular grid whose tile (0, 0) exists."""
    d = search_1d(lambda n: exists(n, n))
    if exists(d + 1, d):  # landscape: the last row is d
        return search_1d(lambda g: exists(g, d), lo=d + 1), d
    return d, search_1d(lambda g: exists(d, g), lo=d)


def probe_image(data: bytes | None) -> tuple[int, int] | str:
    """``(w, h)`` of an image, or why there is none (missing, not an allowed format, undecodable, empty)."""
    if data is None:
        return "could not be downloaded"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
            with imageformats.open_image(data) as im:
                w, h = im.size
    except imageformats.NotAnImage as exc:
        return str(exc)
    except Exception as exc:  # any decoding problem means "no tile here"
        return f"not a readable image ({exc})"
    return (w, h) if w > 0 and h > 0 else f"an empty {w}x{h} image"


def image_size(data: bytes | None) -> tuple[int, int] | None:
    """``(w, h)`` of an image, or None when ``data`` is missing, not an allowed format, undecodable or empty."""
    got = probe_image(data)
    return None if isinstance(got, str) else got


class GenericDezoomer(Dezoomer):
    name = "generic"
    description = "URL template with {{X}} and {{Y}} (grid size found by probing)"

    def images(self, ctx: Context) -> list[Image]:
        template = ctx.url
        kinds = {m.group(1).lower() for m in TEMPLATE_RE.finditer(template)}
        if not kinds:
            raise WrongDezoomer("no {{X}} or {{Y}} placeholder in the URL")
        sizes: dict[tuple[int, int], tuple[int, int] | str] = {}

        def probe(x: int, y: int) -> tuple[int, int] | None:
            if (x, y) not in sizes:
                sizes[(x, y)] = probe_image(ctx.try_get(fill(template, x, y)))
            got = sizes[(x, y)]
            return None if isinstance(got, str) else got

        first = probe(0, 0)
        if first is None:
            raise MetadataError(f"the first tile could not be downloaded or decoded: {fill(template, 0, 0)} "
                                f"({sizes[(0, 0)]})",
                                hint="Check the template in a browser: tile (0, 0) must exist and be a "
                                     f"{imageformats.allowed_names()} image.")
        if kinds == {"x", "y"}:
            last_x, last_y = search_2d(lambda x, y: probe(x, y) is not None)
        elif kinds == {"x"}:
            last_x, last_y = search_1d(lambda x: probe(x, 0) is not None), 0
        else:
            last_x, last_y = 0, search_1d(lambda y: probe(0, y) is not None)
        tw, th = first
        last = probe(last_x, last_y)
        assert last is not None  # the search only stops on a tile that exists
        width = last_x * tw + min(last[0], tw)
        height = last_y * th + min(last[1], th)
        name = f"Generic image with template {template}"
        level = GenericLevel(width, height, tw, th, headers=referer(fill(template, 0, 0)), name=name,
                             template=template)
        return [Image(levels=(level,), title=None, dezoomer=self.name, url=template)]
