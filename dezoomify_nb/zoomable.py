"""A zoomable image: :class:`ZoomableImage`, its lazy levels (zarr, dask, xarray) and ``save``.

:func:`dezoomify_nb.api.open` makes them (and re-exports this class); :class:`~dezoomify_nb.collection.CollectionImage`
is one whose metadata is fetched when first needed.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .budget import check_budget, fmt_bytes
from .cache import TileCache
from .errors import DezoomifyError, DownloadError, GeoError, WriterError, hint_for_failures
from .geo import bounds_of, level_georef, parse_bbox
from .lazy import events
from .lazy.decode import channels_of
from .lazy.store import OnError, TilePyramidStore
from .lazy.strips import LevelStrips, strip_bytes, tile_buffers
from .model import GeoRef, Image, Level
from .net import NetConfig
from .net.cancel import cancel_scope
from .progress import CancelToken, ProgressCallback, cancellable, track
from .results import SaveResult
from .select import choose_level

if TYPE_CHECKING:
    import dask.array
    import zarr
    import zarr.abc.store

log = logging.getLogger("dezoomify_nb")

#: target bytes of one dask chunk made of k×k tiles
DASK_CHUNK_BYTES = 32 * 1024 * 1024




class ZoomableImage:
    """A zoomable image found by a dezoomer. Nothing is downloaded until pixels are asked for.

    ``levels[0]`` is full resolution; each next level is smaller.
    """

    def __init__(
        self, image: Image, net: NetConfig | None = None, *, mode: str = "RGB", cache: TileCache | None = None,
        bbox: Any = None, bbox_crs: str | None = None,
    ) -> None:
        channels_of(mode)
        self.image = image
        #: the bounding box given to :func:`open` (``(west, south, east, north)`` in ``bbox_crs``, default
        #: lon/lat): what :meth:`save` cuts by default
        self.bbox = None if bbox is None else parse_bbox(bbox)
        self.bbox_crs = bbox_crs
        self.net = net or NetConfig()
        self.mode = mode
        #: the resumable tile cache, or None
        self.cache = cache
        if cache is not None:
            from .net.loop import run

            run(cache.register(image))

    # --- description ------------------------------------------------------------------------------
    @property
    def levels(self) -> list[Level]:
        return list(self.image.levels)

    @property
    def title(self) -> str | None:
        return self.image.title

    @property
    def file_title(self) -> str | None:
        """The title default output names are made from: the title; for an image found in a web page (named
        after the page) and the images of a collection, its compact form (``The_Kitchen_Vermeer_1658``); an
        untitled IIIF image is named after its identifier (never ``info``)."""
        from .model import image_name
        from .writers.naming import compact_title

        title = self.title
        if title and any(key == "found_in_page" for key, _ in self.image.metadata):
            return compact_title(title) or None
        if not title and self.image.url.lower().rstrip("/").endswith("/info.json"):
            return compact_title(image_name(self.image.url)) or None
        return title

    @property
    def url(self) -> str:
        return self.image.url

    @property
    def dezoomer(self) -> str:
        return self.image.dezoomer

    @property
    def region(self) -> tuple[int, int, int, int] | None:
        """The part of the image its source paints (an IIIF manifest's region selector), saved by default."""
        return self.image.region

    # --- georeference (map sources) --------------------------------------------------------------------
    @property
    def georef(self) -> GeoRef | None:
        """Where the full-resolution level lies on Earth (map sources), or None."""
        return self.image.georef

    @property
    def crs(self) -> str | None:
        """The CRS of a map source (``"EPSG:3857"``…), or None."""
        return None if self.image.georef is None else self.image.georef.crs

    @property
    def transform(self) -> tuple[float, float, float, float, float, float] | None:
        """The GDAL geotransform of level 0 (``X = c + a·col``, ``Y = f + e·row``), or None."""
        return self.transform_of(0)

    def georef_of(self, level: int) -> GeoRef | None:
        """The georeference of level ``level`` (its own geotransform: map levels start at different tile edges)."""
        self.image.levels[level]  # IndexError early
        return level_georef(self.image, level)

    def transform_of(self, level: int) -> tuple[float, float, float, float, float, float] | None:
        """The GDAL geotransform of level ``level``, or None when the image is not a north-up map."""
        geo = self.georef_of(level)
        return None if geo is None else geo.transform

    def bbox_in_level(self, bbox: Any, level: int, crs: str | None = None) -> tuple[int, int, int, int]:
        """``(x, y, w, h)``: the pixels of level ``level`` under ``bbox`` (west, south, east, north in ``crs``,
        default lon/lat), clamped to the level; GeoError when the image is no map or the box misses it."""
        from .geo import LONLAT, pixel_box, transform_bbox

        transform, lv = self.transform_of(level), self.image.levels[level]
        if transform is None or self.crs is None:
            raise GeoError(f"{self.title or self.url} is not a map: a bounding box cannot be placed on it",
                           hint="--bbox works with map sources (XYZ, TileJSON, ArcGIS, WMTS); give --region "
                                "X,Y,W,H in pixels instead.")
        box = transform_bbox(parse_bbox(bbox), crs or LONLAT, self.crs)
        got = pixel_box(transform, box, lv.width, lv.height)
        if got is None:
            west, south, east, north = bounds_of(transform, lv.width, lv.height)
            raise GeoError(f"the box {bbox} is outside the map (its extent is {west:.6g},{south:.6g},{east:.6g},"
                           f"{north:.6g} in {self.crs})")
        return got

    def to_xarray(self, level: int = 0, *, chunks: Any = "auto", on_error: OnError = "raise") -> Any:
        """Level ``level`` as an ``xarray.DataArray`` ``(y, x, band)`` on the lazy dask array of :meth:`to_dask`,
        with coordinates (pixel centres in the map's CRS, else pixel indices), attributes (title, source URL,
        level) and, when ``rioxarray`` is installed, its CRS and transform (see :mod:`dezoomify_nb.xarrays`)."""
        from .xarrays import to_xarray

        return to_xarray(self, level, chunks=chunks, on_error=on_error)

    def to_datatree(self, *, chunks: Any = "auto", on_error: OnError = "raise") -> Any:
        """An ``xarray.DataTree`` with one node per level (``level_0`` = full resolution), each as :meth:`to_xarray`."""
        from .xarrays import to_datatree

        return to_datatree(self, chunks=chunks, on_error=on_error)

    @property
    def width(self) -> int:
        return self.image.levels[0].width

    @property
    def height(self) -> int:
        return self.image.levels[0].height

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.height, self.width, channels_of(self.mode))

    def __repr__(self) -> str:
        lv = self.image.levels[0]
        return (
            f"<ZoomableImage {self.title or self.url!r} {lv.width}x{lv.height} via {self.dezoomer}, "
            f"{len(self.image.levels)} levels>"
        )

    def _repr_html_(self) -> str:
        """Title, source kind, preview and levels table (HTML built in :mod:`dezoomify_nb.display`)."""
        from .display import image_html

        return image_html(self)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """In a kernel: the picker widget for this image, with the HTML summary for static renderers."""
        from .display import image_bundle

        return image_bundle(self)

    def level_index(
        self,
        *,
        largest: bool = False,
        max_width: int | None = None,
        max_height: int | None = None,
        zoom_level: int | None = None,
    ) -> int | None:
        """Index of the level matching the constraints (see :func:`~dezoomify_nb.select.choose_level`)."""
        return choose_level(
            self.image.levels, largest=largest, max_width=max_width, max_height=max_height, zoom_level=zoom_level
        )

    # --- lazy access ------------------------------------------------------------------------------
    def store(self, *, on_error: OnError = "raise") -> TilePyramidStore:
        """The whole pyramid as a read-only zarr Store (group with one array per level)."""
        return TilePyramidStore(self.image, self.net, mode=self.mode, on_error=on_error, cache=self.cache)

    def zarr(self, level: int = 0, *, on_error: OnError = "raise") -> zarr.Array:
        """Level ``level`` as a read-only ``zarr.Array`` (chunks = tiles)."""
        import zarr

        lv = self.image.levels[level]  # IndexError early
        chunk = lv.tile_width * lv.tile_height * channels_of(self.mode)
        check_budget(3 * chunk, f"Reading level {level} by chunks of one {lv.tile_width}×{lv.tile_height} px tile",
                     hint="Save it to a file instead (save() streams rows of tiles), choose a smaller level")
        return zarr.open_array(store=self.store(on_error=on_error), path=str(level), mode="r")

    def to_dask(self, level: int = 0, *, chunks: Any = "auto", on_error: OnError = "raise") -> dask.array.Array:
        """Level ``level`` as a lazy ``(H, W, C)`` uint8 dask array; a slice fetches only its tiles.

        ``chunks="auto"`` groups k×k tiles per dask chunk (about 32 MiB), so a dask thread keeps several
        requests in flight. Interrupting a ``compute()`` (a kernel interrupt) or any failure of it cancels
        the tile requests it still has running (see :mod:`dezoomify_nb.lazy.interrupt`).
        """
        import dask.array as da

        from .lazy.interrupt import install

        install()  # an interrupted or failed compute cancels its tile requests
        arr = self.zarr(level, on_error=on_error)
        if chunks == "auto":
            lv = self.image.levels[level]
            tile_bytes = lv.tile_width * lv.tile_height * arr.shape[2]
            k = max(1, int((DASK_CHUNK_BYTES / tile_bytes) ** 0.5))
            chunks = (k * lv.tile_height, k * lv.tile_width, arr.shape[2])
        return da.from_zarr(arr, chunks=chunks)

    def region_in_level(self, region: tuple[int, int, int, int], level: int) -> tuple[int, int, int, int]:
        """A full-resolution ``(x, y, w, h)`` as the covering box in level ``level``'s pixels."""
        from .errors import LevelSelectionError

        full, lv = self.image.levels[0], self.image.levels[level]
        x, y, w, h = (int(v) for v in region)
        if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > full.width or y + h > full.height:
            raise LevelSelectionError(
                f"region {x},{y},{w},{h} is not inside the {full.width}x{full.height} image",
                hint="Give x,y,width,height in full-resolution pixels, inside the image.",
            )
        sx, sy = lv.width / full.width, lv.height / full.height
        x0, y0 = int(x * sx), int(y * sy)
        x1 = min(lv.width, max(x0 + 1, math.ceil((x + w) * sx)))
        y1 = min(lv.height, max(y0 + 1, math.ceil((y + h) * sy)))
        return x0, y0, x1 - x0, y1 - y0

    # --- saving -----------------------------------------------------------------------------------
    def save(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        level: int | None = None,
        largest: bool = False,
        max_width: int | None = None,
        max_height: int | None = None,
        zoom_level: int | None = None,
        compression: int = 5,
        progress: bool | ProgressCallback | Any = True,
        allow_partial: bool = False,
        partial: bool = True,
        overwrite: bool = False,
        directory: str | os.PathLike[str] = ".",
        format: str | None = None,  # noqa: A002 - the natural name, as in PIL's Image.save
        region: tuple[int, int, int, int] | None = None,
        cancel: CancelToken | None = None,
        client: Any = None,
        bbox: Any = None,
        bbox_crs: str | None = None,
    ) -> SaveResult:
        """Download one level and write it to ``path`` (format from the extension), streaming.

        Without ``path`` the name comes from the title (or ``dezoomified``), never overwriting a file;
        an explicit ``path`` that exists raises :class:`~dezoomify_nb.errors.WriterError` unless
        ``overwrite=True`` (the old file is then replaced only once the new one is complete). The image is
        written under a hidden temporary name (``.NAME.<random>.partial``) and renamed when complete: should
        another run write the same explicit ``path`` meanwhile, the first to finish keeps it and this one
        raises :class:`~dezoomify_nb.errors.WriterError` (with ``overwrite=True``: the last one wins).
        The level is ``level`` or chosen by ``largest``/``max_width``/``max_height``/``zoom_level``
        (default: full resolution). Tiles that fail after their retries leave that area empty; then
        :class:`~dezoomify_nb.errors.DownloadError` is raised (the file is still written) unless
        ``allow_partial`` — the returned :class:`SaveResult` lists the failures either way — and
        ``OUT.failed.json`` beside it lists the missing tiles (see :mod:`dezoomify_nb.resume`:
        :func:`dezoomify_nb.repair` fetches only them, from a download with a tile cache).
        ``partial=False`` writes no image with holes: :class:`~dezoomify_nb.errors.DownloadError` is raised
        (``.path`` None) and only ``OUT.failed.json`` is written. A complete download removes a stale one.
        ``format`` names the writer (``"tiff"``, ``"tiff-jpeg"``, ``"iiif"``, ``"ome-zarr"``, ``"png"``,
        ``"jpeg"``…) instead of the extension; pyramid formats also write the levels below the chosen one.
        ``region=(x, y, w, h)`` in full-resolution pixels saves only that part of the chosen level, and
        fetches only the tiles under it. Default: the image's own :attr:`~dezoomify_nb.model.Image.region`
        (an IIIF manifest painting a part of an image), else all of it.
        ``bbox=(west, south, east, north)`` (map sources; lon/lat unless ``bbox_crs="EPSG:…"``) saves the pixels
        of the chosen level under that box, fetching only their tiles; default: the ``bbox`` given to :func:`open`.
        ``cancel`` (a :class:`threading.Event`, set from another thread) stops the download between two
        tile rows: :class:`~dezoomify_nb.errors.DownloadCancelled` is raised and no output is left.
        ``client`` (a ``distributed.Client`` or a scheduler address): the tile rows are fetched and decoded
        on its workers, the file is written here (see :mod:`dezoomify_nb.distributed`).
        Before anything is fetched, a level whose rows of tiles, tiles in decoding and writer buffers (a whole
        canvas for JPEG) cannot fit the memory budget raises :class:`~dezoomify_nb.errors.MemoryBudgetError`
        (see :mod:`dezoomify_nb.budget`, ``$DEZOOMIFY_NB_MEMORY_BUDGET``).
        """
        from .lazy.pyramid import RemoteLevelSource
        from .lazy.raw import peek_metadata
        from .writers import Output, naming, writer_for, writer_named
        from .writers.geo import georef_for, georef_label, usable, warp_option

        t0 = time.monotonic()
        if level is None:
            level = self.level_index(largest=largest, max_width=max_width, max_height=max_height, zoom_level=zoom_level)
            level = 0 if level is None else level
        lv = self.image.levels[level]
        channels = channels_of(self.mode)
        explicit = path is not None
        if bbox is not None and region is not None:
            raise GeoError("both a region and a bounding box given", hint="Give --region X,Y,W,H or --bbox, not both.")
        opened_box = bbox is None and region is None and self.bbox is not None  # the box given to open()
        if opened_box:
            bbox, bbox_crs = self.bbox, bbox_crs or self.bbox_crs
        implied = region is None and bbox is None and self.image.region is not None  # the part a manifest paints
        if implied:
            region = self.image.region
        if self.image.rotation % 360:
            log.warning("%s: the source turns this image by %g° clockwise; saved as served, not turned",
                        self.title or self.url, self.image.rotation)
        box = self.region_in_level(region, level) if region is not None else (0, 0, lv.width, lv.height)
        if bbox is not None:
            box = self.bbox_in_level(bbox, level, bbox_crs)
            region = box  # a part of the level (for the checks below)
        out_w, out_h = box[2], box[3]
        out = naming.output_path(path, title=self.file_title, width=out_w, height=out_h, directory=directory)
        writer = writer_named(format) if format else writer_for(out)
        if format and not Path(os.fspath(path or "")).suffix and writer.suffixes:
            out = out.with_name(out.name.removesuffix(out.suffix) + writer.suffixes[0])
        if opened_box and writer.pyramid and not writer.crops:
            log.warning("%s: the %s writer saves whole levels: the tiles under the box are saved whole",
                        self.title or self.url, writer.name)
            region, box = None, (0, 0, lv.width, lv.height)
            out_w, out_h = lv.width, lv.height
        if implied and writer.pyramid and not writer.crops:
            log.warning("%s: the source paints the region %s of this image; the %s writer saves whole levels: "
                        "the whole image is saved", self.title or self.url, ",".join(map(str, region or ())),
                        writer.name)
            region, box = None, (0, 0, lv.width, lv.height)
            out_w, out_h = lv.width, lv.height
        if region is not None and writer.pyramid and not writer.crops:
            raise WriterError(f"the {writer.name} writer saves whole levels, not a region",
                              hint="Save the region as PNG, JPEG or TIFF, or drop --region (--bbox).")
        georef = georef_for(self.image, level, box)  # where the written pixels lie (map sources)
        if georef is not None and not usable(georef):
            log.warning("%s: its georeference is unusable (a singular or non-finite transform, or under 3 GCPs): "
                        "the output is not georeferenced", self.title or self.url)
            georef = None
        writer.check(out_w, out_h, channels)
        _check_memory(writer, lv, level, box, channels, self.net.parallelism)
        out = naming.choose(out, explicit=explicit, overwrite=overwrite, directory=writer.directory)
        # written under a temporary name of its own (made now: a missing or read-only folder fails before any
        # download), renamed to ``out`` only once complete; a file that appears there meanwhile is kept
        target = Output(out, explicit=explicit, overwrite=overwrite, directory=writer.directory).prepare()
        try:  # nothing may leave the temporary behind
            store = TilePyramidStore(
                self.image, self.net, mode=self.mode, on_error="fill", token=uuid.uuid4().hex, cache=self.cache
            )
            total = lv.n_tiles
            if writer.pyramid and region is None:  # the levels below too (downloaded when exact halvings, else computed)
                source = RemoteLevelSource(store, level)
                total = source.expected_tiles()
            else:
                source = LevelStrips(store, level, region=box)  # a pyramid writer computes the levels below
                total = source.n_tiles
                source.icc_profile, source.exif = peek_metadata(store, level, *source.first_tile)  # to PNG/JPEG
            if writer.georeferenced:
                source.georef = georef  # type: ignore[union-attr]
            source = cancellable(source, cancel)
            log.info("Downloading %s (%dx%d, %d tiles) to %s", lv.describe(), out_w, out_h, total, out)
            cluster: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
            if client is not None:
                from .distributed import as_client
                from .lazy.strips import attach_cluster

                cluster = attach_cluster(store.token, as_client(client))
        except BaseException:
            target.discard()
            raise
        try:
            # an interrupt (or any failure) cancels the tile requests still running, rows fetched ahead too
            with track(store.token, total, progress), cluster, target.active(), cancel_scope():
                writer.write(out, source, compression=compression)
        except OSError as exc:  # disk full, permission denied, … (FetchError is an OSError too)
            target.discard()
            if isinstance(exc, DezoomifyError):
                raise
            raise WriterError(f"Cannot write {out}: {exc.strerror or exc}",
                              hint="Check that the folder is writable and has free space, "
                                   "or choose another output path.") from exc
        except BaseException:
            target.discard()
            raise
        stats = events.stats(store.token)
        failed, failed_at = list(stats.failed), list(stats.failed_at)
        if failed and len(failed) >= total:  # an all-black image is no result
            target.discard()
            raise DownloadError(
                f"Could not get any tile of the image ({len(failed)} failed; first: {failed[0][1]})",
                failed=len(failed), total=total, hint=hint_for_failures([r for _, r in failed]),
            )
        from . import resume

        def record(at: Path, written: bool) -> Path:
            levels = range(level, len(self.image.levels)) if writer.pyramid else range(level, level + 1)
            return resume.write_failed(
                at, image=self.image, level=level, region=region, width=out_w, height=out_h, writer=writer.name,
                mode=self.mode, compression=compression, tiles=total, cache=self.cache, written=written,
                missing=resume.failed_tiles(self.image, failed, failed_at, levels))

        hint = hint_for_failures([r for _, r in failed]) if failed else None
        if failed and not partial:
            target.discard()
            sidecar = record(out, False)
            raise DownloadError(
                f"{len(failed)} tiles out of {total} could not be downloaded: no image was written "
                f"(partial images refused: --no-partial, partial=False); the missing tiles are listed in '{sidecar}'.\n{_first_failures(failed)}",
                failed=len(failed), total=total, hint=_repair_hint(out, self.cache, hint))
        out = target.publish()
        placed = None
        if georef is not None and writer.georeferenced:
            placed = f"{georef_label(georef)}, in the file (a Cloud-Optimized GeoTIFF)"
        elif georef is not None and not writer.directory:
            placed = f"{georef_label(georef)}, in {' and '.join(p.name for p in _write_sidecars(out, georef))} beside it"
        if placed and georef is not None and georef.transform is None:
            placed += f": warp it with gdalwarp {warp_option(georef)}"
        result = SaveResult(out, level, out_w, out_h, total, failed, seconds=time.monotonic() - t0,
                            georeference=placed)
        if not failed:
            resume.clear_failed(out)
            return result
        sidecar = record(out, True)
        if not allow_partial:
            raise DownloadError(
                f"Only {total - len(failed)} tiles out of {total} could be downloaded. "
                f"The resulting image was still created in '{out}'; the missing tiles are listed in "
                f"'{sidecar.name}'.\n{_first_failures(failed)}",
                failed=len(failed), total=total, path=str(out), hint=_repair_hint(out, self.cache, hint),
            )
        return result


def _write_sidecars(out: Path, georef: Any) -> list[Path]:
    """The world file and ``.aux.xml`` that place ``out`` (a PNG, JPEG…) in a GIS."""
    from .writers.geo import write_sidecars

    try:
        return write_sidecars(out, georef)
    except OSError as exc:
        raise WriterError(f"{out} was written, but not its georeference files: {exc.strerror or exc}",
                          hint="Check that the folder is writable and has free space.") from exc


def _repair_hint(out: Path, cache: TileCache | None, hint: str | None) -> str:
    """The failures' own hint, and how to fetch only the missing tiles later."""
    import shlex

    from .errors import LOCAL_TILES_HINT

    if hint == LOCAL_TILES_HINT:  # refused by the local-file gate: a repair would be refused the same way
        return hint
    if cache is not None:
        return (f"{hint + ' ' if hint else ''}`dezoomify-nb --repair {shlex.quote(str(out))}` fetches only the "
                "missing tiles (the others are in the tile cache); add --retries 5 --retry-delay 5s -n 2 for a "
                "struggling server.")
    return (f"{hint or DownloadError.hint} With a tile cache (-c DIR), `--repair OUT` would fetch only the "
            "missing tiles.")


def _check_memory(writer: Any, lv: Level, level: int, box: tuple[int, int, int, int], channels: int,
                  parallelism: int) -> None:
    """Refuse (:class:`~dezoomify_nb.errors.MemoryBudgetError`), before anything is fetched, a download whose
    buffers cannot fit the memory budget: the strips (one row of tiles across the image each: the one the
    writer holds and one fetched ahead; a third for pyramid writers, whose lower levels download meanwhile),
    the tiles being decoded, and what the writer keeps (a whole canvas for JPEG)."""
    x, y, w, h = box
    tiles = (-(-(x + w) // lv.tile_width) - x // lv.tile_width) * (-(-(y + h) // lv.tile_height) - y // lv.tile_height)
    strip = strip_bytes(lv, w, h, channels)
    held = writer.memory_estimate(w, h, channels)
    need = (3 if writer.pyramid else 2) * strip + tile_buffers(lv, tiles, channels, parallelism) + held
    instead = "save it as PNG or TIFF (streamed), " if held > need // 2 else ""
    check_budget(need, f"Downloading level {level} ({w}×{h} px in {lv.tile_width}×{lv.tile_height} px tiles) "
                       f"as {writer.name}",
                 hint=f"One row of tiles across the image is {fmt_bytes(strip)}: {instead}choose a smaller zoom "
                      "level (--zoom-level, --max-width) or a part of the image (--region)")


def _first_failures(failed: list[tuple[str, str]], n: int = 3) -> str:
    lines = [f"  failed: {url} ({reason.removeprefix(url).removesuffix(f' for {url}').strip(' :') or reason})"
             for url, reason in failed[:n]]
    if len(failed) > n:
        lines.append(f"  … and {len(failed) - n} more")
    return "\n".join(lines)
