"""Generic kinds of the test server: one level, the full image, as ``tile_{x}_{y}.png`` / ``.jpg``."""

from __future__ import annotations

import re

from .._http import Response, _not_found
from ._base import Geometry, Source

KINDS = ("generic", "generic-jpg")


def geometry(kind: str, W: int, H: int, ts: int) -> Geometry:
    return Geometry(((W, H),), ts, ts, fmt="png" if kind == "generic" else "jpg")


def path(kind: str) -> str:
    ext = "png" if kind == "generic" else "jpg"
    return f"/{kind}/tile_{{{{X}}}}_{{{{Y}}}}.{ext}"


def tile_path(src: Source, kind: str, k: int, col: int, row: int, fmt: str | None) -> str:
    return f"/{kind}/tile_{col}_{row}.{src._geom(kind).fmt}"


def route(src: Source, kind: str, rest: str) -> Response:
    g = src._geom(kind)
    m = re.fullmatch(r"tile_(\d+)_(\d+)\.(\w+)", rest)
    if not m or m.group(3) != g.fmt:
        return _not_found()
    return src._tile_response(kind, 0, int(m.group(1)), int(m.group(2)))
