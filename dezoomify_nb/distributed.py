"""dask.distributed support: tiles fetched and decoded on the workers, images spread across a cluster.

Nothing here is needed for local use; ``pip install 'dezoomify_nb[distributed]'`` brings ``distributed``.

- **Lazy arrays.** ``img.to_dask()`` works on a cluster as is: the graph carries the zarr store, a
  picklable recipe (URLs, headers, geometry, :class:`~dezoomify_nb.net.NetConfig`), never a live client.
  Each worker process builds one HTTP client per config (an ``aiohttp.ClientSession`` on the event loop
  that fetches, zarr's I/O loop; an ``httpx.Client`` with ``transport="httpx"`` or
  ``cluster_parallelism``), one connection pool per host (:mod:`dezoomify_nb.net.clients`), and decodes
  on its own threads.
- **Writers.** ``img.save(path, client=c)`` streams the file here while the workers fetch and decode
  the tile rows (:func:`dezoomify_nb.lazy.strips.remote_row`); only encoding happens in this process.
- **Politeness.** ``dz.open(url, cluster_parallelism=4)`` (``--cluster-parallelism 4``) caps the requests
  in flight per host across the whole cluster with a ``distributed.Semaphore`` named after the host
  (held from worker threads: these requests go through httpx); ``parallelism`` still caps each process.
- **Bulk.** :func:`save_all_on_cluster` (``bulk.save_all(..., client=c)``, ``--bulk LIST --scheduler
  ADDRESS``) saves each image in a task on some worker; outputs are written by the workers, so on a real
  cluster the output folder must be shared (on a ``LocalCluster`` it is the local disk).
- **Tile cache.** A cache path or zarr Store given to ``dz.open(url, cache=...)`` travels as a recipe;
  every worker reads and writes it (``LocalStore`` writes are atomic renames, so workers may share it).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .errors import DezoomifyError, hint_for
from .results import BulkItem, BulkSummary, SaveResult, numbered_path

if TYPE_CHECKING:
    from .cache import TileCache
    from .model import Image
    from .net import NetConfig


class ClusterImage(Protocol):
    """What the cluster glue uses of an image (a :class:`~dezoomify_nb.zoomable.ZoomableImage`): its recipe,
    its title, its level choice and ``save``. A Protocol, not the class: ``ZoomableImage.save(client=…)``
    calls this module, so naming the class here, even for the type checker alone, would tie the two modules
    in a circle."""

    @property
    def title(self) -> str | None: ...
    @property
    def image(self) -> Image: ...
    @property
    def net(self) -> NetConfig: ...
    @property
    def mode(self) -> str: ...
    @property
    def cache(self) -> TileCache | None: ...

    def level_index(self, *, largest: bool = ..., max_width: int | None = ..., max_height: int | None = ...,
                    zoom_level: int | None = ...) -> int | None: ...

    def save(self, path: str | os.PathLike[str] | None = ..., *, level: int | None = ..., compression: int = ...,
             progress: bool = ..., allow_partial: bool = ..., partial: bool = ..., overwrite: bool = ...,
             directory: str | os.PathLike[str] = ..., format: str | None = ...) -> SaveResult: ...  # noqa: A002


def as_client(client: Any) -> Any:
    """A ``distributed.Client`` from a client or a scheduler address (``"tcp://host:8786"``)."""
    try:
        import distributed
    except ImportError as exc:
        raise DezoomifyError("dask.distributed is not installed",
                             hint="pip install 'dezoomify_nb[distributed]'") from exc
    if isinstance(client, distributed.Client):
        return client
    if isinstance(client, str):
        try:
            return distributed.Client(client, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise DezoomifyError(f"cannot reach the dask scheduler at {client}: {exc}",
                                 hint="Start one with `dask scheduler` (and `dask worker ADDRESS` on each "
                                      "machine), then give its tcp://host:port.") from exc
    raise TypeError(f"expected a distributed.Client or a scheduler address, got {client!r}")


# --- images as recipes ------------------------------------------------------------------------------
def image_recipe(image: ClusterImage) -> tuple[Any, ...]:
    """What rebuilds ``image`` on a worker: plain picklable data, no lock, no client.

    The recipe names the image's class (pickled by reference: ``ZoomableImage`` or ``CollectionImage``), so
    this cluster glue, which the door's ``save`` and ``bulk`` use, needs to import neither of them."""
    if hasattr(image, "entry"):  # a CollectionImage: its line or canvas, resolved on the worker
        return ("collection", type(image), image.entry, image.net, image.mode, image.cache,
                image.index, image.image_index, image.max_pixels, image.options)
    return ("image", type(image), image.image, image.net, image.mode, image.cache)


def rebuild(recipe: tuple[Any, ...]) -> ClusterImage:
    if recipe[0] == "collection":
        _, cls, entry, net, mode, cache, index, image_index, max_pixels, options = recipe
        return cls(entry, net, mode=mode, cache=cache, index=index, image_index=image_index,  # type: ignore[no-any-return]
                   max_pixels=max_pixels, options=options)
    _, cls, image, net, mode, cache = recipe
    return cls(image, net, mode=mode, cache=cache)  # type: ignore[no-any-return]


def _save_remote(recipe: tuple[Any, ...], path: str | None, options: dict[str, Any]) -> tuple[str, str | None, str]:
    """Run on a worker: save one image; ``(status, path, message)`` with status done/partial/failed."""
    try:
        image = rebuild(recipe)
        level = image.level_index(largest=options.pop("largest"), max_width=options.pop("max_width"),
                                  max_height=options.pop("max_height"), zoom_level=options.pop("zoom_level"))
        result = image.save(path, level=level or 0, progress=False, allow_partial=True, **options)
    except (DezoomifyError, OSError) as exc:
        hint = hint_for(exc)
        return "failed", None, str(exc) + (f" (hint: {hint})" if hint else "")
    if result.failed:
        n = result.tiles - len(result.failed)
        return "partial", str(result.path), f"only {n} tiles out of {result.tiles} could be downloaded"
    return "done", str(result.path), ""


def save_all_on_cluster(
    images: Sequence[ClusterImage],
    client: Any,
    *,
    outfile: str | os.PathLike[str] | None = None,
    directory: str | os.PathLike[str] = ".",
    max_width: int | None = None,
    max_height: int | None = None,
    zoom_level: int | None = None,
    compression: int = 5,
    overwrite: bool = False,
    report: Callable[[str], None] | None = None,
    paths: Sequence[str | os.PathLike[str] | None] | None = None,
    overwrites: Sequence[bool] | None = None,
    partial: bool = True,
    format: str | None = None,  # noqa: A002 - as in ZoomableImage.save
    numbers: Sequence[int] | None = None,
    total: int | None = None,
) -> BulkSummary:
    """:func:`dezoomify_nb.bulk.save_all` with one task per image on ``client``'s workers.

    ``paths``/``overwrites`` (one per image) replace the names made from ``outfile`` and ``overwrite``;
    ``numbers`` and ``total`` are how the images are numbered in the report lines (a bulk run that skipped
    some)."""
    from distributed import as_completed

    client = as_client(client)
    say = report or (lambda line: None)
    count = len(images)
    total = total or count
    numbers = list(numbers) if numbers is not None else [i + 1 for i in range(count)]
    largest = max_width is None and max_height is None and zoom_level is None
    directory = os.path.abspath(os.fspath(directory))
    futures = {}
    titles = []
    for i, image in enumerate(images):
        title = image.title or f"Image {i + 1}"
        titles.append(title)
        given = paths[i] if paths is not None else (numbered_path(outfile, i + 1) if outfile else None)
        path = os.path.abspath(given) if given is not None else None
        options = {"largest": largest, "max_width": max_width, "max_height": max_height, "zoom_level": zoom_level,
                   "compression": compression, "directory": directory, "partial": partial, "format": format}
        if (overwrites[i] if overwrites is not None else overwrite):
            options["overwrite"] = True
        fut = client.submit(_save_remote, image_recipe(image), path, options, pure=False,
                            key=f"dezoomify_nb-save-{i}-{os.urandom(4).hex()}")
        futures[fut] = i
    say(f"{count} image(s) sent to {len(client.nthreads())} worker(s)")
    items: dict[int, BulkItem] = {}
    for fut in as_completed(list(futures)):
        i = futures[fut]
        try:
            status, path, message = fut.result()
        except Exception as exc:  # the worker died, or a bug: that image failed, the others go on
            status, path, message = "failed", None, f"{type(exc).__name__}: {exc}"
        where = Path(path) if path else None
        if status == "done":
            say(f"[{numbers[i]}/{total}] {titles[i]}: saved to '{where}'")
        elif status == "partial":
            say(f"[{numbers[i]}/{total}] {titles[i]}: partial: {message}; saved to '{where}'")
        else:
            say(f"[{numbers[i]}/{total}] {titles[i]}: failed: {message}")
        items[i] = BulkItem(i, titles[i], status, where, message)
    summary = BulkSummary([items[i] for i in range(count)])
    if paths is None:  # called on its own (not by bulk.save_all, which says it)
        say(summary.describe())
    return summary
