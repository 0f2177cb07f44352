"""The writer contract: writers pull horizontal strips and never need the whole image at once."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np


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


@dataclass
class ArraySource:
    """A :class:`StripSource` over an in-memory array (tests, small images)."""

    array: np.ndarray
    strip_height: int = 256
    icc_profile: bytes | None = None
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
    """Writes a :class:`StripSource` to a file. One module per writer; registered by suffix."""

    name: str = ""
    suffixes: tuple[str, ...] = ()

    def check(self, width: int, height: int, channels: int) -> None:  # noqa: B027 - optional hook
        """Raise :class:`~dezoomify_nb.errors.ImageTooLargeError` if the image cannot be written.

        Called **before** any tile is downloaded.
        """

    @abstractmethod
    def write(self, path: Path, source: StripSource, *, compression: int = 5) -> None:
        """Write ``source`` to ``path``. ``compression`` is 0–100 (dezoomify-rs's meaning)."""
