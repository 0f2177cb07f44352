"""What downloads return: :class:`SaveResult` (one image saved), :class:`BulkItem` and :class:`BulkSummary`
(a bulk run), and how a bulk run numbers its outputs (:func:`numbered_path`).

Plain data at the bottom of the door: :mod:`.zoomable` (``save``), :mod:`.bulk` and :mod:`.distributed` (the
same run on a cluster) all build them, so none of those needs another for its results. Their text and HTML
come from :mod:`.reprs`. (``dezoomify_nb.api.SaveResult`` and ``dezoomify_nb.bulk.BulkSummary``, ``BulkItem``,
``numbered_path`` are these, re-exported.)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class SaveResult:
    """What :meth:`ZoomableImage.save` wrote."""

    path: Path
    level: int
    width: int
    height: int
    tiles: int
    failed: list[tuple[str, str]] = field(default_factory=list)
    #: how long the download took (seconds), when known
    seconds: float | None = None
    #: a map: its georeference and where it went (``"EPSG:3857, in map.pgw and map.png.aux.xml beside it"``)
    georeference: str | None = None

    @property
    def ok(self) -> bool:
        return not self.failed

    def __repr__(self) -> str:
        return (f"SaveResult(path={str(self.path)!r}, level={self.level}, size={self.width}x{self.height}, "
                f"tiles={self.tiles}, failed={len(self.failed)})")

    def __str__(self) -> str:
        from .reprs import save_result_text

        return save_result_text(self)

    def _repr_html_(self) -> str:
        """The file (a link), its size, level, tiles and time, a small preview, and the failed tiles if any."""
        from .reprs import save_result_html

        return save_result_html(self)


@dataclass
class BulkItem:
    """The outcome for one image: ``status`` is ``"done"``, ``"skipped"`` (complete from an earlier run, or
    in the archive), ``"partial"`` or ``"failed"``."""

    index: int
    title: str
    status: str
    path: Path | None = None
    message: str = ""


@dataclass
class BulkSummary:
    """Every image of a bulk run (:class:`BulkItem`), in order; ``print(summary)`` lists them, a notebook
    shows them as a table."""

    items: list[BulkItem] = field(default_factory=list)
    #: how long the run took (seconds), when known
    seconds: float | None = None

    def __repr__(self) -> str:
        from .reprs import bulk_repr

        return bulk_repr(self)

    def __str__(self) -> str:
        from .reprs import bulk_text

        return bulk_text(self)

    def _repr_html_(self) -> str:
        from .reprs import bulk_html

        return bulk_html(self)

    def _count(self, status: str) -> int:
        return sum(1 for it in self.items if it.status == status)

    @property
    def done(self) -> int:
        return self._count("done")

    @property
    def partial(self) -> int:
        return self._count("partial")

    @property
    def failed(self) -> int:
        return self._count("failed")

    @property
    def skipped(self) -> int:
        return self._count("skipped")

    @property
    def ok(self) -> bool:
        """True when every image was downloaded completely (now or by an earlier run)."""
        return self.done + self.skipped == len(self.items)

    def describe(self) -> str:
        skipped = f", {self.skipped} skipped (already downloaded)" if self.skipped else ""
        return (f"Bulk download finished: {len(self.items)} images, {self.done} done, "
                f"{self.partial} partial, {self.failed} failed{skipped}")


def numbered_path(outfile: str | os.PathLike[str], number: int) -> Path:
    """``out.jpg`` → ``out_0003.jpg`` (1-based ``number``); ``out`` → ``out_0003`` (extension added later)."""
    path = Path(outfile).expanduser()
    suffix = path.suffix if path.suffix != "." else ""
    stem = path.name[: len(path.name) - len(suffix)] if suffix else path.name.rstrip(".")
    return path.with_name(f"{stem}_{number:04d}{suffix}")
