"""Thumbnails: a small preview of an image, made from its smallest level that is at least ~256 px.

Only that level's tiles are fetched (a few, never the full resolution when the source has smaller
levels), through the same tile path as downloads; tiles that fail leave their area black. The result
is kept per image object, so the picker, the rich display and a re-display share one fetch.

At the door's level (the rich display of :mod:`.display` uses it; the picker through
``dezoomify_nb.widgets.thumbnail``, which re-exports it).
"""

from __future__ import annotations

import io
import threading
import uuid
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from .cache import TileCache
    from .model import Image, Level
    from .net import NetConfig


class Previewable(Protocol):
    """What a preview reads of an image (a :class:`~dezoomify_nb.zoomable.ZoomableImage`, a collection's
    image): its levels, and the recipe its tiles are fetched by. A Protocol, not the class: the image's own
    rich display reaches this module (through :mod:`.display`), so naming ``ZoomableImage`` here, even for
    the type checker alone, would draw a circle in the import graph."""

    @property
    def levels(self) -> Sequence[Level]: ...
    @property
    def image(self) -> Image: ...
    @property
    def net(self) -> NetConfig: ...
    @property
    def mode(self) -> str: ...
    @property
    def cache(self) -> TileCache | None: ...

#: a level whose longer side is at least this is a good preview source
MIN_SIDE = 256
#: the preview is scaled down to fit this box
BOX = 256
#: never fetch a level larger than this for a preview (single-level sources)
MAX_PREVIEW_PIXELS = 16_000_000

_cache: weakref.WeakKeyDictionary[Previewable, bytes] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def thumbnail_level(img: Previewable, min_side: int = MIN_SIDE) -> int | None:
    """Index of the smallest level whose longer side is at least ``min_side`` (else the largest level);
    None when that level is over :data:`MAX_PREVIEW_PIXELS` (no preview without a huge fetch)."""
    levels = img.levels
    best = 0
    for k, lv in enumerate(levels):
        if max(lv.width, lv.height) >= min_side:
            best = k
    lv = levels[best]
    if lv.width * lv.height > MAX_PREVIEW_PIXELS:
        return None
    return best


def level_array(img: Previewable, k: int) -> np.ndarray:
    """The whole level ``k`` as an ``(H, W, C)`` array, tiles fetched concurrently (failed tiles black)."""
    from .lazy.store import TilePyramidStore
    from .lazy.strips import LevelStrips

    store = TilePyramidStore(img.image, img.net, mode=img.mode, on_error="fill",
                             token=f"thumb-{uuid.uuid4().hex}", cache=img.cache)
    return np.concatenate(list(LevelStrips(store, k).strips()), axis=0)


def thumbnail_array(img: Previewable, box: int = BOX, min_side: int = MIN_SIDE) -> np.ndarray | None:
    """A preview fitting ``box`` × ``box`` pixels as an ``(h, w, C)`` uint8 array, or None (see
    :func:`thumbnail_level`)."""
    from PIL import Image

    k = thumbnail_level(img, min_side)
    if k is None:
        return None
    arr = level_array(img, k)
    pil = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)
    pil.thumbnail((box, box), Image.Resampling.BOX)
    out = np.asarray(pil)
    return out[:, :, None] if out.ndim == 2 else out


def thumbnail_png(img: Previewable) -> bytes | None:
    """The preview as PNG bytes (fetched once per image object), or None when there is none."""

    with _lock:
        hit = _cache.get(img)
    if hit is not None:
        return hit
    arr = thumbnail_array(img)
    if arr is None:
        return None
    data = to_png(arr)
    with _lock:
        _cache[img] = data
    return data


def to_png(arr: np.ndarray) -> bytes:
    """An ``(h, w, C)`` uint8 array as PNG bytes."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr).save(buf, format="PNG")
    return buf.getvalue()


def from_png(data: bytes) -> np.ndarray:
    """PNG bytes as an ``(h, w, C)`` uint8 array."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        arr = np.asarray(im)
    return arr[:, :, None] if arr.ndim == 2 else arr


def cached_png(img: Previewable) -> bytes | None:
    """The preview if it was already made, without fetching anything."""
    with _lock:
        return _cache.get(img)
