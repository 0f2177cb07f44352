"""The writer contract: writers pull horizontal strips and never need the whole image at once."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from ..errors import WriterError
from ..model import GeoRef
from .atomic import atomic_directory, atomic_output  # noqa: F401 - the writers' way to write outputs


class StripSource(Protocol):
    """An image delivered as horizontal strips, top to bottom.

    ``strips()`` yields uint8 arrays of shape ``(h_i, width, channels)`` whose heights add up to
    ``height``. ``mode`` is the Pillow mode matching ``channels`` (``"L"``, ``"RGB"``, ``"RGBA"``).
    """

    width: int
    height: int
    channels: int
    mode: str
    icc_profile: bytes | None

    def strips(self) -> Iterator[np.ndarray]: ...


class RawTiles(Protocol):
    """A level's tiles **as served** (encoded bytes), for writers that copy them byte for byte.

    The grid is regular: ``cols × rows`` tiles of ``tile_width × tile_height`` px (edge tiles
    smaller), no overlap. ``format`` is the tiles' encoding as Pillow names it (``"JPEG"``,
    ``"PNG"``…). ``tile_rows(decode)`` yields, per tile row top to bottom, ``(tiles, strip)``: the
    ``cols`` encoded tiles (``None`` for one that failed) and, when ``decode`` is true, the row's
    pixels as a ``(tile_height', width, channels)`` strip (else ``None``); rows are fetched (and
    decoded) ahead, concurrently with the consumer.
    """

    width: int
    height: int
    tile_width: int
    tile_height: int
    cols: int
    rows: int
    format: str | None

    def tile_rows(self, decode: bool = False) -> Iterator[tuple[list[bytes | None], np.ndarray | None]]: ...


class PyramidLevel(StripSource, Protocol):
    """One level of a :meth:`LevelSource.pyramid`: a strip source, maybe with its raw tiles."""

    raw: RawTiles | None


class LevelSource(StripSource, Protocol):
    """A :class:`StripSource` that can also deliver the levels below it (pyramid writers).

    ``pyramid(tile)`` returns ``[level 0, level 1, …]``: level ``i`` is
    ``ceil(W / 2**i) × ceil(H / 2**i)`` px, down to the first one that fits in a ``tile × tile``
    square. Levels must be read **in order** (a lower level may be computed while the one above it is
    read, and spilled to a temporary file). ``exif`` (bytes or None) is the tiles' EXIF block.
    """

    def pyramid(self, tile: int) -> Sequence[PyramidLevel]: ...


@dataclass
class ArraySource:
    """A :class:`StripSource` over an in-memory array (tests, small images)."""

    array: np.ndarray
    strip_height: int = 256
    icc_profile: bytes | None = None
    #: where the image lies on Earth (see :attr:`Writer.georeferenced`)
    georef: GeoRef | None = None
    width: int = field(init=False)
    height: int = field(init=False)
    channels: int = field(init=False)
    mode: str = field(init=False)

    def __post_init__(self) -> None:
        a = self.array if self.array.ndim == 3 else self.array[:, :, None]
        self.array = a
        self.height, self.width, self.channels = a.shape
        self.mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[self.channels]

    def strips(self) -> Iterator[np.ndarray]:
        for y in range(0, self.height, self.strip_height):
            yield self.array[y : y + self.strip_height]


class Writer(ABC):
    """Writes a :class:`StripSource` to a file. One module per writer; registered by suffix.

    A writer that also writes the lower levels sets ``pyramid = True`` and reads them with
    :func:`~.pyramid.pyramid_of` (the source is then a :class:`LevelSource` when it comes from a download).
    A writer whose output is a folder sets ``directory = True``. A writer whose file carries a georeference
    (GeoTIFF) sets ``georeferenced = True``: it reads the source's ``georef`` attribute (a
    :class:`~dezoomify_nb.model.GeoRef` of exactly the written pixels, or None); the outputs of the other file
    writers get a world file and a ``.aux.xml`` beside them (:func:`~.geo.write_sidecars`).

    A writer opens its output with :func:`~.atomic.atomic_output` (a file) or
    :func:`~.atomic.atomic_directory` (a folder) and writes only through what they give: a temporary of
    its own, created exclusively, never following a planted symbolic link, renamed to ``path`` only when
    complete and never over a file another run published meanwhile (see :mod:`.atomic`).
    """

    name: str = ""
    suffixes: tuple[str, ...] = ()
    pyramid: bool = False
    directory: bool = False
    georeferenced: bool = False
    #: a pyramid writer that also writes a region of a level (its lower levels then computed from it)
    crops: bool = False

    def memory_estimate(self, width: int, height: int, channels: int) -> int:
        """Peak bytes this writer needs for a ``width × height`` image (0 = small and bounded)."""
        return 0

    def check(self, width: int, height: int, channels: int) -> None:  # noqa: B027 - optional hook
        """Raise :class:`~dezoomify_nb.errors.ImageTooLargeError` if the image cannot be written.

        Called **before** any tile is downloaded.
        """

    @abstractmethod
    def write(self, path: Path, source: StripSource, *, compression: int = 5) -> None:
        """Write ``source`` to ``path``. ``compression`` is 0–100 (dezoomify-rs's meaning)."""


def iter_checked_strips(source: StripSource) -> Iterator[np.ndarray]:
    """``source.strips()`` as C-contiguous uint8 ``(h, width, channels)`` arrays, validated.

    Accepts 2-D strips for single-channel sources. Raises :class:`WriterError` if a strip has the
    wrong width, channel count or dtype, or if the heights do not add up to ``source.height``.
    """
    width, height, channels = source.width, source.height, source.channels
    done = 0
    for strip in source.strips():
        a = np.asarray(strip)
        if a.ndim == 2 and channels == 1:
            a = a[:, :, None]
        if a.dtype != np.uint8:
            raise WriterError(f"strip dtype is {a.dtype}, expected uint8")
        if a.ndim != 3 or a.shape[1:] != (width, channels):
            raise WriterError(f"strip shape {a.shape} does not match (h, {width}, {channels})")
        if a.shape[0] == 0:
            continue
        done += a.shape[0]
        if done > height:
            raise WriterError(f"the source yielded more than its {height} rows")
        yield np.ascontiguousarray(a)
    if done != height:
        raise WriterError(f"the source yielded {done} rows instead of {height}")
