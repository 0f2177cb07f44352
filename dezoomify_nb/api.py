"""The Python API, the door: ``open(url)`` → :class:`ZoomableImage` (or an
:class:`~dezoomify_nb.collection.ImageCollection`) with lazy levels and ``save``; :func:`repair`.

The classes live in :mod:`.zoomable` (:class:`ZoomableImage`), :mod:`.results` (:class:`SaveResult`) and
:mod:`.collection`; this module opens sources and re-exports them.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import errors as E
from . import resume
from .cache import TileCache
from .collection import CollectionImage, ImageCollection, is_multi
from .errors import NOTICE, DezoomifyError, MetadataError, NoDezoomerFound
from .geo import parse_bbox
from .model import DEFAULT_MAX_PIXELS, Image, ImageRef, check_image_size, check_max_pixels
from .net import NetConfig, parse_header
from .net.cookies import CookieSet
from .net.local import root_of
from .resolve import resolve_scoped
from .results import SaveResult as SaveResult
from .zoomable import DASK_CHUNK_BYTES as DASK_CHUNK_BYTES
from .zoomable import ZoomableImage as ZoomableImage

if TYPE_CHECKING:
    import zarr
    import zarr.abc.store

log = logging.getLogger("dezoomify_nb")


def _headers(headers: Mapping[str, str] | Sequence[str] | None) -> tuple[tuple[str, str], ...]:
    if not headers:
        return ()
    if isinstance(headers, Mapping):
        return tuple((str(k), str(v)) for k, v in headers.items())
    return tuple(parse_header(h) for h in headers)


def open_all(
    url: str | os.PathLike[str],
    *,
    dezoomer: str = "auto",
    headers: Mapping[str, str] | Sequence[str] | None = None,
    net: NetConfig | None = None,
    mode: str = "RGB",
    cache: str | os.PathLike[str] | zarr.abc.store.Store | TileCache | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    tile_format: str | None = None,
    all_sequences: bool = False,
    cookies: str | os.PathLike[str] | Mapping[str, str] | None = None,
    bbox: Any = None,
    bbox_crs: str | None = None,
    browser: bool | str | None = None,
    browser_path: str | os.PathLike[str] | None = None,
    browser_timeout: float = 30.0,
    **net_options: Any,
) -> list[ZoomableImage]:
    """Every image found at ``url`` (one for most formats; several for manifests)."""
    url = os.fspath(url)
    try:
        max_pixels = check_max_pixels(max_pixels)
    except ValueError as exc:
        raise MetadataError(str(exc), hint="Give max_pixels as a whole number, e.g. max_pixels=10**13.") from None
    options: dict[str, Any] = {"max_pixels": max_pixels}
    if tile_format is not None:
        from .dezoomers.iiif import check_tile_format

        options["tile_format"] = check_tile_format(tile_format)
    if all_sequences:
        options["all_sequences"] = True
    if bbox is not None:  # map sources: only the tiles under the box make the image
        from .geo import parse_crs

        bbox = parse_bbox(bbox)
        bbox_crs = parse_crs(bbox_crs) if bbox_crs else None
        options["bbox"], options["bbox_crs"] = bbox, bbox_crs
    tile_cache = TileCache.of(cache)
    net = net or NetConfig(**net_options)
    if cookies is not None:
        net = replace(net, cookies=CookieSet.of(cookies))
    extra = _headers(headers)
    if extra:
        net = replace(net, headers=net.headers + extra)
    if net.referer is None and url.startswith(("http://", "https://")):
        net = replace(net, referer=url)
    if net.local_root is None:  # the user's own local input: files in its folder may be read
        root = root_of(url)
        if root is not None:
            net = replace(net, local_root=root)
    images, net = _find(url, dezoomer, net, tile_cache, options, browser, browser_path, browser_timeout)
    for im in images:
        if isinstance(im, Image):
            check_image_size(im, max_pixels)
    if is_multi(images):  # a manifest, a bulk list: items resolved one by one when used
        return [CollectionImage(im, net, mode=mode, cache=tile_cache, index=i, max_pixels=max_pixels, options=options)
                for i, im in enumerate(images)]
    return [ZoomableImage(im, net, mode=mode, cache=tile_cache, bbox=bbox, bbox_crs=bbox_crs) for im in images]


BROWSER_HINT = E.BROWSER_HINT


def _find(
    url: str,
    dezoomer: str,
    net: NetConfig,
    cache: TileCache | None,
    options: dict[str, Any],
    browser: bool | str | None,
    browser_path: str | os.PathLike[str] | None,
    browser_timeout: float,
) -> tuple[list[Image | ImageRef], NetConfig]:
    """The images at ``url`` and the config to fetch them with: a HAR file's recording, the browser's
    (``browser=True``), or the dezoomers' (``browser="auto"``: the browser's when a page shows nothing)."""
    from .net.local import is_http
    from .recorded import is_har

    if browser not in (None, False, True, "auto", "on", "off"):
        raise MetadataError(f"invalid browser={browser!r}", hint="Give browser=True, False or 'auto'.")
    always = browser in (True, "on")
    if is_har(url) and not always:
        return _open_har(url, net, cache, options)
    if always:
        return _open_in_browser(url, net, cache, options, browser_path, browser_timeout)
    try:
        return resolve_scoped(url, dezoomer=dezoomer, net=net, cache=cache, options=options)
    except NoDezoomerFound as exc:
        if not (is_http(url) and dezoomer == "auto" and exc.reasons and exc.reasons[0][0] == "page"):
            raise
        from .browser import unavailable

        if unavailable(browser_path) is not None:
            raise
        if browser != "auto":
            exc.hint = BROWSER_HINT
            raise
        log.log(NOTICE, "Nothing found in the page itself: looking with a headless browser")
        return _open_in_browser(url, net, cache, options, browser_path, browser_timeout)


def _open_in_browser(url: str, net: NetConfig, cache: TileCache | None, options: dict[str, Any],
                     browser_path: str | os.PathLike[str] | None,
                     browser_timeout: float) -> tuple[list[Image | ImageRef], NetConfig]:
    from .browser import record
    from .recorded import open_recording

    return open_recording(record(url, net=net, executable=browser_path, timeout=browser_timeout), net,
                          options=options, cache=cache)


def _open_har(url: str, net: NetConfig, cache: TileCache | None,
              options: dict[str, Any]) -> tuple[list[Image | ImageRef], NetConfig]:
    """A HAR file (local or http(s)) read as a recording: its size capped by :data:`~.recorded.MAX_HAR_BYTES`,
    each kept body by ``max_metadata_bytes``."""
    from .net.fetch import fetch_sync
    from .recorded import MAX_HAR_BYTES, open_recording, read_har

    data = fetch_sync(url, replace(net, max_metadata_bytes=max(net.max_metadata_bytes, MAX_HAR_BYTES)), metadata=True)
    recording = read_har(data, url, body_cap=net.max_metadata_bytes)
    del data
    return open_recording(recording, net, options=options, cache=cache)


_warm = threading.Event()


def warm_up(transport: str = "aiohttp") -> None:
    """Do now, in a background thread, what the first :func:`open` of the process would otherwise wait for:
    import the dezoomers and the HTTP client (``transport``), start the I/O loop (~0.3–0.5 s, which a notebook
    user would see between pressing Enter and the first tile). Once per process; returns at once."""
    if _warm.is_set():
        return
    _warm.set()

    def run() -> None:
        from . import registry
        from .net import loop

        try:
            registry.list_dezoomers()
            loop.get_loop()
            if transport == "aiohttp":
                import aiohttp  # noqa: F401 - imported for its side effect: loaded once, here
        except Exception as exc:  # noqa: BLE001 - a failure here shows again, and is reported, at the open
            log.debug("warm-up failed", exc_info=exc)

    threading.Thread(target=run, name="dezoomify_nb-warm-up", daemon=True).start()


def open(  # noqa: A001 - the natural name, like builtins.open / zarr.open
    url: str | os.PathLike[str],
    *,
    dezoomer: str = "auto",
    image_index: int | None = None,
    headers: Mapping[str, str] | Sequence[str] | None = None,
    net: NetConfig | None = None,
    mode: str = "RGB",
    cache: str | os.PathLike[str] | zarr.abc.store.Store | TileCache | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    tile_format: str | None = None,
    all_sequences: bool = False,
    cookies: str | os.PathLike[str] | Mapping[str, str] | None = None,
    bbox: Any = None,
    bbox_crs: str | None = None,
    browser: bool | str | None = None,
    browser_path: str | os.PathLike[str] | None = None,
    browser_timeout: float = 30.0,
    **net_options: Any,
) -> ZoomableImage | ImageCollection:
    """Open the zoomable image at ``url`` (a URL or a local path). Only metadata is fetched.

    A source holding several images (an IIIF manifest or collection, a bulk list) gives an
    :class:`~dezoomify_nb.collection.ImageCollection` (``len``, iteration, ``[i]``; each image's metadata is
    fetched only when that image is used), unless ``image_index`` picks one (past the end: the last).

    ``net_options`` are :class:`~dezoomify_nb.net.NetConfig` fields: ``parallelism``, ``min_interval``,
    ``timeout`` (a whole request's deadline), ``connect_timeout``, ``read_timeout``, ``retries``,
    ``retry_delay``, ``accept_invalid_certs``, ``max_metadata_bytes`` / ``max_tile_bytes`` (body caps,
    decoded), ``max_inflight_bytes``, …
    ``mode`` is the pixel mode of the arrays: ``"RGB"`` (default), ``"RGBA"``, ``"L"`` or ``"LA"``.

    ``cache`` is a directory or any zarr 3 Store: tiles are kept there as served and reused by every later
    download, lazy read or process (a killed run resumes where it stopped); ``offline=True`` then works
    from the cache alone, without the server.

    ``headers`` go only to the input URL's site (same host, or same registrable domain; see
    :func:`~dezoomify_nb.net.config.site_of`), except non-secret ones (Referer, User-Agent, Accept…);
    ``header_all_hosts=True`` sends them everywhere. A local path as ``url`` lets the files in its folder
    (and sub-folders) be read; a document fetched over http(s) can never lead to a local file.

    ``max_pixels`` (default 10^12) is the sanity cap on the declared image size: metadata declaring more
    raises :class:`~dezoomify_nb.errors.MetadataError` before anything is fetched or allocated.

    ``tile_format`` (IIIF): the format of the tiles to ask for (``"png"``, ``"webp"``…) instead of the
    default (the server's ``preferredFormats``, else ``jpg``); refused (4xx) by the server, jpg is used.
    ``all_sequences`` (IIIF Presentation 2): read every sequence of a manifest, not only the first (default).

    ``cookies``: a Netscape cookies.txt path (as browser extensions export) or a ``{name: value}`` dict; a
    file's cookies go to the hosts their domain matches (path, secure and expiry rules too), a dict's to
    the input URL's site like ``headers``.

    ``bbox=(west, south, east, north)`` (map sources: XYZ, TileJSON, ArcGIS, WMTS), in lon/lat unless
    ``bbox_crs="EPSG:…"`` (other CRSs than lon/lat and Web Mercator need pyproj): the image is made of the
    tiles under the box only (an XYZ template needs no tile 0/0/0 then), and :meth:`ZoomableImage.save` cuts
    the box out of the chosen level.

    ``browser=True``: load the page in headless Chromium (Playwright; ``browser_path``: the binary, default
    Debian's ``/usr/bin/chromium``), nudge its viewer and open what it requested, with the cookies and
    headers it sent (``browser_timeout`` seconds at most, default 30); ``browser="auto"``: only when the
    page itself shows nothing (see :mod:`dezoomify_nb.browser`). A ``.har`` file (path or URL) is read the
    same way (see :mod:`dezoomify_nb.recorded`).
    """
    images = open_all(url, dezoomer=dezoomer, headers=headers, net=net, mode=mode, cache=cache,
                      max_pixels=max_pixels, tile_format=tile_format, all_sequences=all_sequences, cookies=cookies,
                      bbox=bbox, bbox_crs=bbox_crs, browser=browser, browser_path=browser_path,
                      browser_timeout=browser_timeout, **net_options)
    if image_index is None:
        if len(images) > 1 or isinstance(images[0], CollectionImage):
            return ImageCollection(images, url=os.fspath(url))
        image_index = 0
    return images[min(max(image_index, 0), len(images) - 1)]


# --- repair -----------------------------------------------------------------------------------------
def repair(
    path: str | os.PathLike[str],
    *,
    cache: str | os.PathLike[str] | TileCache | None = None,
    progress: Any = True,
    net: NetConfig | None = None,
    **net_options: Any,
) -> SaveResult:
    """Fetch the tiles ``OUT.failed.json`` lists and write ``path`` again, complete if they all come.

    ``cache`` (default: the tile cache the download used, as recorded) must hold the other tiles: only the
    missing ones are then requested. Returns the :class:`~dezoomify_nb.api.SaveResult` (``.failed``: the tiles
    still missing, listed again in ``OUT.failed.json``; removed once the image is complete).
    """
    from .cache.tilecache import source_key
    from .model import with_page_referer
    from .net.loop import run

    out = Path(path).expanduser()
    doc = resume.read_failed(out)
    spec = cache if cache is not None else doc.get("cache")
    if spec is None:
        raise DezoomifyError(
            f"{out} was downloaded without a tile cache: its other tiles are not kept anywhere",
            hint="Download it again with a tile cache (-c DIR, cache= in Python) and --overwrite; then "
                 "--repair fetches only the missing tiles.")
    if isinstance(spec, str | os.PathLike) and not os.path.isdir(spec):
        raise DezoomifyError(f"the tile cache {os.fspath(spec)!r} of {out} does not exist",
                             hint="Give the cache directory of the download with -c DIR.")
    tile_cache = TileCache.of(spec)
    src = doc["source"]
    found = open_all(src["url"], dezoomer=src["dezoomer"], net=net, cache=tile_cache, mode=doc["mode"],
                         **net_options)
    image = next((im for im in found[:8] if source_key(im.image) == src["key"]), None)
    if image is None:
        raise DezoomifyError(
            f"the source {src['url']} no longer serves the image of {out} (its levels or tiles changed)",
            hint="Download it again (with --overwrite).")
    if src.get("referer"):
        image.image = with_page_referer(image.image, src["referer"])
    missing = [t for t in doc["failed"] if t.get("level") is not None]

    async def forget_404s() -> None:
        for t in missing:
            key = tile_cache.tile_key(src["key"], t["level"], t["col"], t["row"]) + ".404"
            await tile_cache.delete(key)

    run(forget_404s())
    log.log(NOTICE, "Repairing %s: %d missing tile(s) of level %d; the others from the tile cache %s",
            out, len(doc["failed"]), doc["level"], resume.cache_location(tile_cache) or tile_cache)
    region = tuple(doc["region"]) if doc["region"] is not None else None
    result = image.save(out, level=doc["level"], region=region, format=doc["format"],  # type: ignore[arg-type]
                        compression=doc["compression"], progress=progress, overwrite=True, allow_partial=True)
    journal = resume.Journal(out.parent)
    if journal.path.exists():
        journal.rerecord(result.path, "partial" if result.failed else "done")
    return result
