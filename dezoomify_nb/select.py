"""Choosing a zoom level (levels are always ordered largest first: index 0 = full resolution)."""

from __future__ import annotations

from collections.abc import Sequence

from .errors import LevelSelectionError
from .model import Level


def choose_level(
    levels: Sequence[Level],
    *,
    largest: bool = False,
    max_width: int | None = None,
    max_height: int | None = None,
    zoom_level: int | None = None,
) -> int | None:
    """Index of the level matching the constraints, or None when none was given.

    - ``zoom_level``: 0 is full resolution, 1 the next smaller, … for every format (dezoomify-rs uses
      each format's own order instead). Out of range raises.
    - ``largest``: index 0.
    - ``max_width`` / ``max_height``: the largest level that fits both; raises if none fits.
    """
    if not levels:
        raise LevelSelectionError("the image has no zoom level")
    if zoom_level is not None:
        if not 0 <= zoom_level < len(levels):
            raise LevelSelectionError(
                f"zoom level {zoom_level} does not exist",
                hint=f"This image has levels 0 (full resolution, {levels[0].width}x{levels[0].height}) "
                f"to {len(levels) - 1} (smallest).",
            )
        return zoom_level
    if max_width is not None or max_height is not None:
        fits = [
            i
            for i, lv in enumerate(levels)
            if (max_width is None or lv.width <= max_width) and (max_height is None or lv.height <= max_height)
        ]
        if not fits:
            smallest = levels[-1]
            raise LevelSelectionError(
                f"no level fits in {max_width or '∞'}x{max_height or '∞'}",
                hint=f"The smallest level is {smallest.width}x{smallest.height}.",
            )
        return max(fits, key=lambda i: levels[i].width * levels[i].height)
    if largest:
        return 0
    return None
