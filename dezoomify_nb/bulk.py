"""Bulk downloads (dezoomify-rs §13): every image of a collection, one after the other.

Used by ``dezoomify-nb --bulk SOURCE`` and :meth:`ImageCollection.save_all
<dezoomify_nb.collection.ImageCollection.save_all>`. The full resolution is taken unless ``max_width``,
``max_height`` or ``zoom_level`` is given. A failure does not stop the run: it is recorded, and the
:class:`BulkSummary` lists every image as done, partial or failed.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import DezoomifyError, hint_for
from .progress import BulkProgress

if TYPE_CHECKING:
    from .api import ZoomableImage

log = logging.getLogger("dezoomify_nb.bulk")


@dataclass
class BulkItem:
    """The outcome for one image: ``status`` is ``"done"``, ``"partial"`` or ``"failed"``."""

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
    def ok(self) -> bool:
        """True when every image was downloaded completely."""
        return self.done == len(self.items)

    def describe(self) -> str:
        return (f"Bulk download finished: {len(self.items)} images, {self.done} done, "
                f"{self.partial} partial, {self.failed} failed")


def numbered_path(outfile: str | os.PathLike[str], number: int) -> Path:
    """``out.jpg`` → ``out_0003.jpg`` (1-based ``number``); ``out`` → ``out_0003`` (extension added later)."""
    path = Path(outfile).expanduser()
    suffix = path.suffix if path.suffix != "." else ""
    stem = path.name[: len(path.name) - len(suffix)] if suffix else path.name.rstrip(".")
    return path.with_name(f"{stem}_{number:04d}{suffix}")


def save_all(
    images: Sequence[ZoomableImage],
    *,
    outfile: str | os.PathLike[str] | None = None,
    directory: str | os.PathLike[str] = ".",
    max_width: int | None = None,
    max_height: int | None = None,
    zoom_level: int | None = None,
    compression: int = 5,
    progress: Any = True,
    overwrite: bool = False,
    report: Callable[[str], None] | None = None,
    client: Any = None,
) -> BulkSummary:
    """Download each image in turn and return what happened to each.

    Names come from the titles (collisions get ``_0001``, ``_0002``…), or, with ``outfile``, are
    ``<stem>_0001<ext>``, ``<stem>_0002<ext>``… by position (an existing one is kept and that image fails,
    unless ``overwrite``). ``report`` receives one line per step
    (``[i/N] title``, the saved path or the failure); default: the ``dezoomify_nb.bulk`` logger.
    ``client`` (a ``distributed.Client`` or a scheduler address): the images are saved in parallel on its
    workers instead (see :func:`dezoomify_nb.distributed.save_all_on_cluster`).
    """
    say = report or log.info
    if client is not None:
        from .distributed import save_all_on_cluster

        return save_all_on_cluster(images, client, outfile=outfile, directory=directory, max_width=max_width,
                                   max_height=max_height, zoom_level=zoom_level, compression=compression,
                                   overwrite=overwrite, report=say)
    t0 = time.monotonic()
    summary = BulkSummary()
    total = len(images)
    largest = max_width is None and max_height is None and zoom_level is None
    bars = BulkProgress(total, progress)
    try:
        for i, image in enumerate(images):
            title = image.title or f"Image {i + 1}"
            say(f"[{i + 1}/{total}] {title}")
            path = numbered_path(outfile, i + 1) if outfile else None
            try:
                level = image.level_index(largest=largest, max_width=max_width, max_height=max_height,
                                          zoom_level=zoom_level)
                extra = {"overwrite": True} if overwrite else {}
                result = image.save(path, level=level or 0, compression=compression, progress=bars.image(title),
                                    allow_partial=True, directory=directory, **extra)
            except (DezoomifyError, OSError) as exc:
                bars.image_done(False)
                message = str(exc)
                hint = hint_for(exc)
                say(f"[{i + 1}/{total}] failed: {message}" + (f" (hint: {hint})" if hint else ""))
                summary.items.append(BulkItem(i, title, "failed", None, message))
                continue
            bars.image_done(True)
            if result.failed:
                message = f"only {result.tiles - len(result.failed)} tiles out of {result.tiles} could be downloaded"
                say(f"[{i + 1}/{total}] partial: {message}; saved to '{result.path}'")
                summary.items.append(BulkItem(i, title, "partial", result.path, message))
            else:
                say(f"[{i + 1}/{total}] saved to '{result.path}'")
                summary.items.append(BulkItem(i, title, "done", result.path))
    finally:
        bars.close()
    summary.seconds = time.monotonic() - t0
    say(summary.describe())
    return summary
