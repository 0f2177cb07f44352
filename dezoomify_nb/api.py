"""The Python API: ``open(url)`` → :class:`ZoomableImage` with lazy levels and ``save``."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import DownloadError
from .lazy import events
from .lazy.decode import channels_of
from .lazy.store import OnError, TilePyramidStore
from .lazy.strips import LevelStrips
from .model import Image, Level
from .net import NetConfig, parse_header
from .progress import ProgressCallback, track
from .resolve import resolve
from .select import choose_level

if TYPE_CHECKING:
    import dask.array
    import zarr

log = logging.getLogger("dezoomify_nb")

#: target bytes of one dask chunk made of k×k tiles
DASK_CHUNK_BYTES = 32 * 1024 * 1024


@dataclass
class SaveResult:
    """What :meth:`ZoomableImage.save` wrote."""

    path: Path
    level: int
    width: int
    height: int
    tiles: int
    failed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


def _headers(headers: Mapping[str, str] | Sequence[str] | None) -> tuple[tuple[str, str], ...]:
    if not headers:
        return ()
    if isinstance(headers, Mapping):
        return tuple((str(k), str(v)) for k, v in headers.items())
    return tuple(parse_header(h) for h in headers)


class ZoomableImage:
    """A zoomable image found by a dezoomer. Nothing is downloaded until pixels are asked for.

    ``levels[0]`` is full resolution; each next level is smaller.
    """

    def __init__(self, image: Image, net: NetConfig | None = None, *, mode: str = "RGB") -> None:
        channels_of(mode)
        self.image = image
        self.net = net or NetConfig()
        self.mode = mode

    # --- description ------------------------------------------------------------------------------
    @property
    def levels(self) -> list[Level]:
        return list(self.image.levels)

    @property
    def title(self) -> str | None:
        return self.image.title

    @property
    def url(self) -> str:
        return self.image.url

    @property
    def dezoomer(self) -> str:
        return self.image.dezoomer

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
        return TilePyramidStore(self.image, self.net, mode=self.mode, on_error=on_error)

    def zarr(self, level: int = 0, *, on_error: OnError = "raise") -> zarr.Array:
        """Level ``level`` as a read-only ``zarr.Array`` (chunks = tiles)."""
        import zarr

        self.image.levels[level]  # IndexError early
        return zarr.open_array(store=self.store(on_error=on_error), path=str(level), mode="r")

    def to_dask(self, level: int = 0, *, chunks: Any = "auto", on_error: OnError = "raise") -> dask.array.Array:
        """Level ``level`` as a lazy ``(H, W, C)`` uint8 dask array; a slice fetches only its tiles.

        ``chunks="auto"`` groups k×k tiles per dask chunk (about 32 MiB), so a dask thread keeps several
        requests in flight.
        """
        import dask.array as da

        arr = self.zarr(level, on_error=on_error)
        if chunks == "auto":
            lv = self.image.levels[level]
            tile_bytes = lv.tile_width * lv.tile_height * arr.shape[2]
            k = max(1, int((DASK_CHUNK_BYTES / tile_bytes) ** 0.5))
            chunks = (k * lv.tile_height, k * lv.tile_width, arr.shape[2])
        return da.from_zarr(arr, chunks=chunks)

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
        directory: str | os.PathLike[str] = ".",
    ) -> SaveResult:
        """Download one level and write it to ``path`` (format from the extension), streaming.

        Without ``path`` the name comes from the title (or ``dezoomified``), never overwriting a file.
        The level is ``level`` or chosen by ``largest``/``max_width``/``max_height``/``zoom_level``
        (default: full resolution). Tiles that fail after their retries leave that area empty; then
        :class:`~dezoomify_nb.errors.DownloadError` is raised (the file is still written) unless
        ``allow_partial`` — the returned :class:`SaveResult` lists the failures either way.
        """
        from .writers import naming, writer_for

        if level is None:
            level = self.level_index(largest=largest, max_width=max_width, max_height=max_height, zoom_level=zoom_level)
            level = 0 if level is None else level
        lv = self.image.levels[level]
        channels = channels_of(self.mode)
        explicit = path is not None
        out = naming.output_path(path, title=self.title, width=lv.width, height=lv.height, directory=directory)
        writer = writer_for(out)
        writer.check(lv.width, lv.height, channels)
        out = naming.reserve(out, explicit=explicit)
        store = TilePyramidStore(self.image, self.net, mode=self.mode, on_error="fill", token=uuid.uuid4().hex)
        source = LevelStrips(store, level)
        log.info("Downloading %s (%dx%d, %d tiles) to %s", lv.describe(), lv.width, lv.height, lv.n_tiles, out)
        try:
            with track(store.token, lv.n_tiles, progress):
                writer.write(out, source, compression=compression)
        except BaseException:
            naming.release(out)
            raise
        failed = list(events.stats(store.token).failed)
        result = SaveResult(out, level, lv.width, lv.height, lv.n_tiles, failed)
        if failed and len(failed) >= lv.n_tiles:
            out.unlink(missing_ok=True)  # an all-black image is no result
            raise DownloadError(
                f"Could not get any tile of the image ({len(failed)} failed; first: {failed[0][1]})",
                failed=len(failed), total=lv.n_tiles,
            )
        if failed and not allow_partial:
            raise DownloadError(
                f"Only {lv.n_tiles - len(failed)} tiles out of {lv.n_tiles} could be downloaded. "
                f"The resulting image was still created in '{out}'.",
                failed=len(failed), total=lv.n_tiles, path=str(out),
            )
        return result


def open_all(
    url: str | os.PathLike[str],
    *,
    dezoomer: str = "auto",
    headers: Mapping[str, str] | Sequence[str] | None = None,
    net: NetConfig | None = None,
    mode: str = "RGB",
    **net_options: Any,
) -> list[ZoomableImage]:
    """Every image found at ``url`` (one for most formats; several for manifests)."""
    url = os.fspath(url)
    net = net or NetConfig(**net_options)
    extra = _headers(headers)
    if extra:
        net = replace(net, headers=net.headers + extra)
    if net.referer is None and url.startswith(("http://", "https://")):
        net = replace(net, referer=url)
    return [ZoomableImage(im, net, mode=mode) for im in resolve(url, dezoomer=dezoomer, net=net)]


def open(  # noqa: A001 - the natural name, like builtins.open / zarr.open
    url: str | os.PathLike[str],
    *,
    dezoomer: str = "auto",
    image_index: int = 0,
    headers: Mapping[str, str] | Sequence[str] | None = None,
    net: NetConfig | None = None,
    mode: str = "RGB",
    **net_options: Any,
) -> ZoomableImage:
    """Open the zoomable image at ``url`` (a URL or a local path). Only metadata is fetched.

    ``net_options`` are :class:`~dezoomify_nb.net.NetConfig` fields: ``parallelism``, ``min_interval``,
    ``timeout``, ``connect_timeout``, ``retries``, ``retry_delay``, ``accept_invalid_certs``, …
    ``mode`` is the pixel mode of the arrays: ``"RGB"`` (default), ``"RGBA"``, ``"L"`` or ``"LA"``.
    """
    images = open_all(url, dezoomer=dezoomer, headers=headers, net=net, mode=mode, **net_options)
    return images[min(max(image_index, 0), len(images) - 1)]
