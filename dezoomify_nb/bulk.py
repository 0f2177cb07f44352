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
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import DezoomifyError, WriterError, hint_for
from .progress import BulkProgress
from .results import BulkItem as BulkItem
from .results import BulkSummary as BulkSummary
from .results import numbered_path as numbered_path

if TYPE_CHECKING:
    from .zoomable import ZoomableImage

log = logging.getLogger("dezoomify_nb.bulk")




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
    redownload: bool = False,
    archive: str | os.PathLike[str] | None = None,
    partial: bool = True,
    format: str | None = None,  # noqa: A002 - as in ZoomableImage.save
) -> BulkSummary:
    """Download each image in turn and return what happened to each.

    Names come from the titles (collisions get ``_0001``, ``_0002``…), or, with ``outfile``, are
    ``<stem>_0001<ext>``, ``<stem>_0002<ext>``… by position (an existing one is kept and that image fails,
    unless ``overwrite``). ``report`` receives one line per step
    (``[i/N] title``, the saved path or the failure); default: the ``dezoomify_nb.bulk`` logger.
    ``client`` (a ``distributed.Client`` or a scheduler address): the images are saved in parallel on its
    workers instead (see :func:`dezoomify_nb.distributed.save_all_on_cluster`).

    Run again over the same images, it skips those whose output is complete: each finished output is
    recorded in the output folder's journal (``.dezoomify-nb.jsonl``, see :mod:`dezoomify_nb.resume`) and
    an item is skipped when the file recorded for it is still there, unchanged, with no ``OUT.failed.json``
    beside it. A partial output is downloaded again in place (with a tile cache, only its missing tiles are
    requested). ``redownload=True`` downloads everything again (recorded outputs are replaced).
    ``archive`` (a file): items listed there are skipped, finished ones are added (one source URL a line).
    ``partial=False``: an image with missing tiles is not written (the item fails; ``OUT.failed.json`` is).
    """
    from . import resume

    say = report or log.info
    largest = max_width is None and max_height is None and zoom_level is None
    folder = Path(outfile).expanduser().parent if outfile else Path(directory).expanduser()
    if images:
        try:  # the folder asked for is made as needed (a file name's folder too)
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WriterError(f"Cannot create the output folder {folder}: {exc.strerror or exc}",
                              hint="Choose a folder you can write to.") from exc
    journal = resume.Journal(folder)
    done_archive = resume.Archive(archive) if archive is not None else None
    summary = BulkSummary()
    total = len(images)
    # what to do with each image: (path, overwrite) to download, or a BulkItem already settled
    plans: list[tuple[Path | None, bool] | BulkItem] = []
    plans_asked: list[str] = []
    for i, image in enumerate(images):
        title = image.title or f"Image {i + 1}"
        key = resume.item_key(image)
        path = numbered_path(outfile, i + 1) if outfile else None
        asked = _asked(path, journal.folder, format)
        plans_asked.append(asked)
        if not redownload and done_archive is not None and key in done_archive:
            plans.append(BulkItem(i, title, "skipped", None, "in the download archive"))
            continue
        recorded = journal.output(key, asked)
        if recorded is not None:
            at, status = recorded
            if status == "done" and not redownload and not resume.failed_path(at).exists():
                plans.append(BulkItem(i, title, "skipped", at, "already downloaded"))
                if done_archive is not None:
                    done_archive.add(key)
                continue
            path = at  # a partial output (or --redownload): written again in place
        plans.append((path, overwrite or recorded is not None))
    if client is not None:
        from .distributed import save_all_on_cluster

        todo = [i for i, plan in enumerate(plans) if not isinstance(plan, BulkItem)]
        for plan in plans:
            if isinstance(plan, BulkItem):
                say(_skipped_line(plan, total))
        remote = save_all_on_cluster(
            [images[i] for i in todo], client, paths=[plans[i][0] for i in todo],  # type: ignore[index]
            overwrites=[plans[i][1] for i in todo], directory=directory, max_width=max_width,  # type: ignore[index]
            max_height=max_height, zoom_level=zoom_level, compression=compression, report=say, partial=partial,
            format=format, numbers=[i + 1 for i in todo], total=total)
        by_index = {todo[j]: item for j, item in enumerate(remote.items)}
        for i, plan in enumerate(plans):
            item = plan if isinstance(plan, BulkItem) else by_index[i]
            item.index = i
            summary.items.append(item)
            if item.status in ("done", "partial") and item.path is not None:
                _remember(journal, done_archive, resume.item_key(images[i]), item, plans_asked[i])
        say(summary.describe())
        return summary
    t0 = time.monotonic()
    todo = sum(not isinstance(plan, BulkItem) for plan in plans)
    bars = BulkProgress(todo, progress if todo else False)  # images to download (skipped ones are said)
    try:
        for i, (image, plan) in enumerate(zip(images, plans, strict=True)):
            title = image.title or f"Image {i + 1}"
            if isinstance(plan, BulkItem):
                say(_skipped_line(plan, total))
                summary.items.append(plan)
                continue
            path, replace = plan
            say(f"[{i + 1}/{total}] {title}")
            shown = bars.image(title)  # its bar restarts now: a failure before its first tile is shown as its own
            try:
                level = image.level_index(largest=largest, max_width=max_width, max_height=max_height,
                                          zoom_level=zoom_level)
                extra = {"overwrite": True} if replace else {}
                result = image.save(path, level=level or 0, compression=compression, progress=shown,
                                    allow_partial=True, partial=partial, directory=directory, format=format,
                                    **extra)
            except (DezoomifyError, OSError) as exc:
                bars.image_done(False)
                message = str(exc).split("\n", 1)[0]
                hint = hint_for(exc)
                say(f"[{i + 1}/{total}] failed: {message}" + (f" (hint: {hint})" if hint else ""))
                summary.items.append(BulkItem(i, title, "failed", None, message))
                continue
            bars.image_done(True)
            if result.failed:
                message = f"only {result.tiles - len(result.failed)} tiles out of {result.tiles} could be downloaded"
                say(f"[{i + 1}/{total}] partial: {message}; saved to '{result.path}' (missing tiles in "
                    f"'{resume.failed_path(result.path).name}')")
                item = BulkItem(i, title, "partial", result.path, message)
            else:
                say(f"[{i + 1}/{total}] saved to '{result.path}'")
                item = BulkItem(i, title, "done", result.path)
            summary.items.append(item)
            _remember(journal, done_archive, resume.item_key(image), item, plans_asked[i])
    finally:
        bars.close()
    summary.seconds = time.monotonic() - t0
    say(summary.describe())
    return summary


def _skipped_line(item: BulkItem, total: int) -> str:
    where = f": '{item.path}'" if item.path else ""
    return f"[{item.index + 1}/{total}] {item.title}: skipped, {item.message}{where}"


def _asked(path: Path | None, folder: Path, fmt: str | None) -> str:
    """How an item's output was asked for, recorded with it: the name given (``out_0003.png``) or "" for
    names made from titles, and ``--format``. A run asking otherwise does not take it for its own."""
    name = os.path.relpath(path, folder) if path is not None else ""
    return f"{name}|{fmt}" if fmt else name


def _remember(journal: Any, done_archive: Any, key: str, item: BulkItem, asked: str) -> None:
    """Record a finished item in the journal (and, complete, in the archive); a failure to record is said,
    never fatal."""
    try:
        assert item.path is not None
        journal.record(key, item.path, item.status, asked)
        if done_archive is not None and item.status == "done":
            done_archive.add(key)
    except OSError as exc:
        log.warning("could not record %s as %s: %s", item.path, item.status, exc)
