"""A loopback HTTP server that serves a numpy image as tiled zoomable images.

It is an independent, spec-driven implementation of the *server* side of each
format (it deliberately shares no code with :mod:`dezoomify_nb.dezoomers`), used
by the end-to-end tests, the benchmark and ``make demo``.

Kinds and their input URLs (relative to :attr:`TileServer.base_url`):

================  ==========================================  =====================================
kind              input URL                                   tiles
================  ==========================================  =====================================
zoomify           /zoomify/ImageProperties.xml                TileGroup{g}/{z}-{x}-{y}.jpg
zoomify-even      /zoomify-even/ImageProperties.xml           same, Zoomify-converter level sizes
dzi-png           /dzi-png/image.dzi  (2009 ns, Overlap 1)    image_files/{L}/{col}_{row}.png
dzi-jpg           /dzi-jpg/image.dzi  (2008 ns, Overlap 0)    image_files/{L}/{col}_{row}.jpg
iiif2             /iiif2/info.json    (v2, level2, tiles)     {region}/{size}/0/{quality}.{fmt}
iiif3             /iiif3/info.json    (v3, level1, 512 tiles) {region}/{size}/0/{quality}.{fmt}
iiif2-notiles     /iiif2-notiles/info.json (v2, no ``tiles``) {region}/{size}/0/{quality}.{fmt}
generic           /generic/tile_{{X}}_{{Y}}.png               tile_{x}_{y}.png
generic-jpg       /generic-jpg/tile_{{X}}_{{Y}}.jpg           tile_{x}_{y}.jpg
================  ==========================================  =====================================

Level images
------------
Level ``k`` (0 = full resolution, largest first) of every kind is the full image
resized **once** with Pillow ``Image.resize(size, Image.Resampling.BOX)`` to
the level size the format defines; tiles are cut from that cached level image,
so a PNG tile equals ``level_image(kind, k)[tile box]`` exactly.  Level images
are cached by size and shared between kinds (Deep Zoom and IIIF both use
``ceil(W / 2**k)``).

* Zoomify (``zoomify``): the zoomify.js method -- sizes ``floor(W / 2**k)``
  while the level is larger than one tile; the one-tile level is *not* served
  (an image that fits in one tile is served as a single level).  ``NUMTILES``
  is the sum of the tile counts, so a client using the zoomify.js method finds
  exactly these levels.  ``z`` in tile URLs counts from the smallest level.
* Zoomify (``zoomify-even``): the Zoomify-converter method -- ``(W // 2**k,
  H // 2**k)`` with odd components rounded up to even, down to and including
  the level that fits in one tile; ``NUMTILES`` is their tile count (which the
  zoomify.js method never reproduces, so clients fall back to this method).
* Deep Zoom: ``max_level = ceil(log2(max(W, H)))``, level ``L`` has size
  ``ceil(W / 2**(max_level - L))``, down to 1x1.  Tiles carry ``Overlap``
  extra pixels on every side that touches a neighbour.
* IIIF: scale factors 1, 2, 4, ... up to the first at which the image fits in
  one tile; the level for scale factor ``s`` has size ``ceil(W / s)``.
* Generic: one level, the full image.

IIIF image requests are answered like a real server: the region is cropped
at full resolution and scaled to the requested size.  When the region maps to a
whole-pixel box of a power-of-two level (``x``, ``y`` multiples of ``s``, the far
edge a multiple of ``s`` or the image edge) and the requested size is
``rw / s`` (ceil or floor at the image edge), the pixels are cut from that level
image (truncated by one pixel for floor-rounded edge tiles).  Any other request
is cropped from the full image and resized with ``BOX`` to the requested size.
Every IIIF ``info.json`` says ``"preferredFormats": ["png"]`` (lossless tiles, so downloads compare
exactly; clients ask for jpg by default); jpg is served as well.
"""

from __future__ import annotations

import io
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import numpy as np
from PIL import Image

from ._http import _LRU, Response, Route, _BadRequest, _guess_type, _Headers, _HTTPServer, _not_found
from .iiif_request import parse_region, parse_size

__all__ = ["JPEG_QUALITY", "KINDS", "LEVEL_FILTER", "PNG_COMPRESS_LEVEL", "Response", "TileServer"]

KINDS: tuple[str, ...] = (
    "zoomify",
    "zoomify-even",
    "dzi-png",
    "dzi-jpg",
    "iiif2",
    "iiif3",
    "iiif2-notiles",
    "generic",
    "generic-jpg",
)

#: Pillow filter used to build every lower level from the full image.
LEVEL_FILTER = Image.Resampling.BOX
JPEG_QUALITY = 90
PNG_COMPRESS_LEVEL = 1

_DZI_NS = {
    "dzi-png": "http://schemas.microsoft.com/deepzoom/2009",
    "dzi-jpg": "http://schemas.microsoft.com/deepzoom/2008",
}
_IIIF_KINDS = ("iiif2", "iiif3", "iiif2-notiles")
_CONTENT_TYPES = {"png": "image/png", "jpg": "image/jpeg"}
_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class _Geometry:
    """Level sizes (largest first) and tiling of one kind."""

    sizes: tuple[tuple[int, int], ...]
    tile_w: int
    tile_h: int
    overlap: int = 0
    fmt: str = "png"

    def grid(self, k: int) -> tuple[int, int]:
        w, h = self.sizes[k]
        return _ceil_div(w, self.tile_w), _ceil_div(h, self.tile_h)

    def box(self, k: int, col: int, row: int) -> tuple[int, int, int, int]:
        w, h = self.sizes[k]
        o = self.overlap
        x0 = col * self.tile_w - (o if col > 0 else 0)
        y0 = row * self.tile_h - (o if row > 0 else 0)
        x1 = min((col + 1) * self.tile_w + o, w)
        y1 = min((row + 1) * self.tile_h + o, h)
        return x0, y0, x1, y1

    def tile_count(self, k: int) -> int:
        cols, rows = self.grid(k)
        return cols * rows


@dataclass
class _Fault:
    substring: str
    status: int
    times: int | None  # None: forever
    retry_after: float | str | None = None
    action: str = "fail"  # "fail" | "corrupt" | "delay"
    seconds: float = 0.0


class TileServer:
    """Serve ``image`` as Zoomify, Deep Zoom, IIIF 2/3 and generic tiles on loopback.

    Parameters
    ----------
    image
        ``uint8`` array of shape ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or
        ``(H, W, 4)``.
    latency
        Seconds slept before answering each tile request (metadata requests
        are not delayed).
    tile_size
        Tile size of zoomify, dzi-jpg, iiif2 and generic; dzi-png uses
        ``tile_size - 2`` with overlap 1, iiif3 uses ``2 * tile_size``.
    require_header
        ``(name, value)``: requests without that exact header get 403.
    lossless
        Serve PNG bytes (``Content-Type: image/png``) even at ``.jpg`` URLs so
        that end-to-end tests of JPEG-only formats can compare pixels exactly.
    cache_bytes
        Budget of the LRU cache of encoded tiles.

    Use as a context manager, or call :meth:`start` / :meth:`stop`.
    """

    def __init__(
        self,
        image: np.ndarray,
        *,
        latency: float = 0.0,
        tile_size: int = 256,
        host: str = "127.0.0.1",
        port: int = 0,
        require_header: tuple[str, str] | None = None,
        lossless: bool = False,
        cache_bytes: int = 256 * 2**20,
    ) -> None:
        arr = np.asarray(image)
        if arr.dtype != np.uint8:
            raise TypeError(f"image must be uint8, got {arr.dtype}")
        if arr.ndim == 2:
            arr3 = arr[:, :, None]
        elif arr.ndim == 3 and arr.shape[2] in _MODES:
            arr3 = arr
        else:
            raise ValueError(f"image must have shape (H, W) or (H, W, 1|3|4), got {arr.shape}")
        if arr3.shape[0] < 1 or arr3.shape[1] < 1:
            raise ValueError("image must not be empty")
        if tile_size < 4:
            raise ValueError("tile_size must be at least 4")
        self._ndim = arr.ndim
        self.height, self.width, self.channels = (int(n) for n in arr3.shape)
        self.latency = float(latency)
        self.tile_size = int(tile_size)
        self.require_header = require_header
        self.lossless = bool(lossless)
        self._host = host
        self._requested_port = port

        mode = _MODES[self.channels]
        src = np.ascontiguousarray(arr3[:, :, 0] if self.channels == 1 else arr3)
        self._full = Image.fromarray(src, mode=mode)
        self._levels: dict[tuple[int, int], Image.Image] = {(self.width, self.height): self._full}
        self._level_locks: dict[tuple[int, int], threading.Lock] = {}
        self._tiles = _LRU(cache_bytes)
        self._geometry = {kind: self._make_geometry(kind) for kind in KINDS}

        self._lock = threading.Lock()
        self._requests: list[str] = []
        self._headers_seen: list[_Headers] = []
        self._in_flight = 0
        self._max_in_flight = 0
        self._faults: list[_Fault] = []
        self._routes: list[tuple[str, Route]] = []

        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> TileServer:
        """Bind and start serving in a background thread (idempotent)."""
        if self._httpd is None:
            self._httpd = _HTTPServer((self._host, self._requested_port), self)
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"TileServer:{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, drop open keep-alive connections and close the socket."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        httpd.close_connections()
        httpd.server_close()  # joins the handler threads

    def __enter__(self) -> TileServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._httpd is not None

    @property
    def host(self) -> str:
        return self._require_httpd().server_address[0]

    @property
    def port(self) -> int:
        return int(self._require_httpd().server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>`` (no trailing slash)."""
        return f"http://{self.host}:{self.port}"

    def _require_httpd(self) -> _HTTPServer:
        if self._httpd is None:
            raise RuntimeError("TileServer is not running; use start() or a with-block")
        return self._httpd

    # ------------------------------------------------------------------ URLs and geometry

    def url(self, kind: str) -> str:
        """The metadata (input) URL of ``kind``; for generic kinds, the URL template."""
        return self.base_url + self.path(kind)

    @staticmethod
    def path(kind: str) -> str:
        """Like :meth:`url`, without the scheme and host."""
        if kind in ("zoomify", "zoomify-even"):
            return f"/{kind}/ImageProperties.xml"
        if kind in _DZI_NS:
            return f"/{kind}/image.dzi"
        if kind in _IIIF_KINDS:
            return f"/{kind}/info.json"
        if kind == "generic":
            return "/generic/tile_{{X}}_{{Y}}.png"
        if kind == "generic-jpg":
            return "/generic-jpg/tile_{{X}}_{{Y}}.jpg"
        raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")

    def urls(self) -> dict[str, str]:
        return {kind: self.url(kind) for kind in KINDS}

    def level_sizes(self, kind: str) -> list[tuple[int, int]]:
        """``(width, height)`` of each level of ``kind``, largest first."""
        return list(self._geom(kind).sizes)

    def tile_size_of(self, kind: str) -> tuple[int, int]:
        g = self._geom(kind)
        return g.tile_w, g.tile_h

    def overlap(self, kind: str) -> int:
        return self._geom(kind).overlap

    def tile_grid(self, kind: str, k: int) -> tuple[int, int]:
        """``(cols, rows)`` of level ``k``."""
        return self._geom(kind).grid(k)

    def tile_box(self, kind: str, k: int, col: int, row: int) -> tuple[int, int, int, int]:
        """``(x0, y0, x1, y1)`` in level-``k`` pixels of the pixels tile (col, row) carries.

        For Deep Zoom this includes the overlap pixels.
        """
        g = self._geom(kind)
        cols, rows = g.grid(k)
        if not (0 <= col < cols and 0 <= row < rows):
            raise IndexError(f"tile ({col}, {row}) outside the {cols}x{rows} grid of level {k}")
        return g.box(k, col, row)

    def tile_url(self, kind: str, k: int, col: int, row: int, *, fmt: str | None = None) -> str:
        """Absolute URL of tile (col, row) of level ``k`` (0 = largest).

        IIIF tiles use ``x,y,w,h`` regions with the exact level box as ``w,h``
        size and ``default.{fmt}`` (png unless ``fmt`` is given).
        """
        g = self._geom(kind)
        self.tile_box(kind, k, col, row)  # bounds check
        n = len(g.sizes)
        if kind in ("zoomify", "zoomify-even"):
            z = n - 1 - k
            return f"{self.base_url}/{kind}/TileGroup{self._zoomify_group(kind, z, col, row)}/{z}-{col}-{row}.jpg"
        if kind in _DZI_NS:
            return f"{self.base_url}/{kind}/image_files/{n - 1 - k}/{col}_{row}.{g.fmt}"
        if kind in _IIIF_KINDS:
            s = 2**k
            x, y = col * g.tile_w * s, row * g.tile_h * s
            rw, rh = min(g.tile_w * s, self.width - x), min(g.tile_h * s, self.height - y)
            x0, y0, x1, y1 = g.box(k, col, row)
            return f"{self.base_url}/{kind}/{x},{y},{rw},{rh}/{x1 - x0},{y1 - y0}/0/default.{fmt or 'png'}"
        return f"{self.base_url}/{kind}/tile_{col}_{row}.{g.fmt}"

    def level_image(self, kind: str, k: int) -> np.ndarray:
        """The exact pixels of level ``k`` of ``kind`` (0 = full resolution).

        Same number of dimensions as the image given to the constructor.
        """
        sizes = self._geom(kind).sizes
        if not 0 <= k < len(sizes):
            raise IndexError(f"{kind} has levels 0..{len(sizes) - 1}, not {k}")
        arr = np.array(self._level_pil(sizes[k]))
        if self._ndim == 3 and arr.ndim == 2:
            arr = arr[:, :, None]
        return arr

    def prewarm(self, kind: str, levels: Iterable[int] | None = None, *, fmt: str | None = None) -> int:
        """Encode the tiles of ``kind`` into the tile cache ahead of time.

        Use before a benchmark so that it measures the client rather than this
        server's PNG encoder (about 6 ms per 256x256 tile).  ``levels`` defaults to
        all levels; ``fmt`` is passed to :meth:`tile_url` (IIIF).  The cache holds
        ``cache_bytes``; tiles beyond it are evicted again.  Returns the tile count.
        """
        g = self._geom(kind)
        paths = []
        for k in range(len(g.sizes)) if levels is None else levels:
            cols, rows = g.grid(k)
            for row in range(rows):
                for col in range(cols):
                    url = self.tile_url(kind, k, col, row, fmt=fmt)
                    paths.append(unquote(urlsplit(url).path))
        workers = max(1, min(8, os.cpu_count() or 1))
        with ThreadPoolExecutor(workers) as pool:
            for resp in pool.map(self._route, paths):
                if resp.status != 200:
                    raise RuntimeError(f"prewarm of {kind} got {resp.status}")
        return len(paths)

    def numtiles(self, kind: str) -> int:
        """Total tile count of ``kind`` (the Zoomify ``NUMTILES``)."""
        g = self._geom(kind)
        return sum(g.tile_count(k) for k in range(len(g.sizes)))

    def _geom(self, kind: str) -> _Geometry:
        try:
            return self._geometry[kind]
        except KeyError:
            raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}") from None

    def _make_geometry(self, kind: str) -> _Geometry:
        W, H, ts = self.width, self.height, self.tile_size
        if kind == "zoomify":
            sizes = []
            w, h = W, H
            while w > ts or h > ts:  # zoomify.js: halve floats, truncate; == W >> k
                sizes.append((w, h))
                w, h = w // 2, h // 2
            return _Geometry(tuple(sizes) or ((W, H),), ts, ts, fmt="jpg")
        if kind == "zoomify-even":
            sizes = [(W, H)]
            k = 1
            while sizes[-1][0] > ts or sizes[-1][1] > ts:
                w, h = W // 2**k, H // 2**k
                sizes.append((w + w % 2, h + h % 2))
                k += 1
            return _Geometry(tuple(sizes), ts, ts, fmt="jpg")
        if kind in _DZI_NS:
            max_level = (max(W, H) - 1).bit_length()
            sizes = [(_ceil_div(W, 2**k), _ceil_div(H, 2**k)) for k in range(max_level + 1)]
            if kind == "dzi-png":
                return _Geometry(tuple(sizes), ts - 2, ts - 2, overlap=1, fmt="png")
            return _Geometry(tuple(sizes), ts, ts, overlap=0, fmt="jpg")
        if kind in _IIIF_KINDS:
            tile = 2 * ts if kind == "iiif3" else ts
            return _Geometry(tuple(self._iiif_sizes(tile)), tile, tile, fmt="png")
        if kind in ("generic", "generic-jpg"):
            return _Geometry(((W, H),), ts, ts, fmt="png" if kind == "generic" else "jpg")
        raise ValueError(kind)

    def _iiif_sizes(self, tile: int) -> list[tuple[int, int]]:
        sizes = []
        s = 1
        while True:
            w, h = _ceil_div(self.width, s), _ceil_div(self.height, s)
            sizes.append((w, h))
            if w <= tile and h <= tile:
                return sizes
            s *= 2

    def _zoomify_group(self, kind: str, z: int, col: int, row: int) -> int:
        g = self._geom(kind)
        n = len(g.sizes)
        before = sum(g.tile_count(n - 1 - zz) for zz in range(z))
        cols, _ = g.grid(n - 1 - z)
        return (before + col + row * cols) // 256

    # ------------------------------------------------------------------ accounting

    @property
    def requests(self) -> list[str]:
        """Request paths (with query string) in arrival order; a copy."""
        with self._lock:
            return list(self._requests)

    @property
    def headers_seen(self) -> list[_Headers]:
        """Headers of each request (lower-cased keys, case-insensitive lookups)."""
        with self._lock:
            return list(self._headers_seen)

    @property
    def max_in_flight(self) -> int:
        """Most requests being handled at the same time since the last reset."""
        with self._lock:
            return self._max_in_flight

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    def reset_requests(self) -> None:
        """Forget recorded requests and headers, and reset :attr:`max_in_flight`."""
        with self._lock:
            self._requests.clear()
            self._headers_seen.clear()
            self._max_in_flight = self._in_flight

    def count(self, predicate_or_substring: str | Callable[[str], bool] | None = None) -> int:
        """Number of recorded requests whose path contains the substring / satisfies the predicate."""
        paths = self.requests
        if predicate_or_substring is None:
            return len(paths)
        if isinstance(predicate_or_substring, str):
            return sum(predicate_or_substring in p for p in paths)
        return sum(bool(predicate_or_substring(p)) for p in paths)

    def _enter(self, path: str, headers: Iterable[tuple[str, str]]) -> None:
        hdrs = _Headers((k.lower(), v) for k, v in headers)
        with self._lock:
            self._requests.append(path)
            self._headers_seen.append(hdrs)
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    # ------------------------------------------------------------------ fault injection

    def fail(
        self,
        path_substring: str,
        *,
        times: int | None = 1,
        status: int = 503,
        retry_after: float | str | None = None,
    ) -> None:
        """Make the next ``times`` requests whose path contains ``path_substring`` fail.

        ``times=None`` fails forever.  ``retry_after`` adds a ``Retry-After`` header.
        """
        with self._lock:
            self._faults.append(_Fault(path_substring, status, times, retry_after))

    def missing(self, path_substring: str) -> None:
        """Answer 404 to every request whose path contains ``path_substring``."""
        self.fail(path_substring, times=None, status=404)

    def corrupt(self, path_substring: str, *, times: int | None = None) -> None:
        """Answer 200 with a truncated body (half of the real one) to matching requests."""
        with self._lock:
            self._faults.append(_Fault(path_substring, 200, times, action="corrupt"))

    def delay(self, path_substring: str, seconds: float, *, times: int | None = None) -> None:
        """Sleep ``seconds`` more before answering matching requests."""
        with self._lock:
            self._faults.append(_Fault(path_substring, 200, times, action="delay", seconds=seconds))

    def add_route(self, prefix: str, handler: Route) -> None:
        """Answer paths starting with ``prefix`` with ``handler(server, raw_path, headers) -> Response``.

        ``raw_path`` keeps the query string. Used by tests of other formats (IIPImage, krpano, …) and of
        hostile servers; faults, latency and request accounting apply as for built-in kinds. Latest first.
        """
        with self._lock:
            self._routes.insert(0, (prefix, handler))

    def serve_files(
        self, prefix: str, files: Mapping[str, bytes | str], content_type: str | None = None, *, ranges: bool = True
    ) -> str:
        """Serve ``files`` (relative path → content) under ``prefix``; returns the base URL of the folder.

        ``Range: bytes=a-b`` requests get ``206`` with that slice, unless ``ranges=False`` (then the whole
        file, as servers that ignore Range do).
        """
        data = {k.lstrip("/"): v.encode() if isinstance(v, str) else v for k, v in files.items()}

        def handler(server: TileServer, raw_path: str, headers: Mapping[str, str]) -> Response:
            rel = raw_path[len(prefix):].lstrip("/")
            body = data.get(rel, data.get(unquote(rel)))
            if body is None:
                return _not_found()
            kind = content_type or _guess_type(rel)
            m = re.fullmatch(r"bytes=(\d+)-(\d*)", headers.get("Range") or "")
            if ranges and m:
                start, end = int(m.group(1)), int(m.group(2) or len(body) - 1)
                if start >= len(body) or end < start:
                    return Response(416, b"", kind, {"Content-Range": f"bytes */{len(body)}"})
                end = min(end, len(body) - 1)
                return Response(206, body[start : end + 1], kind,
                                {"Content-Range": f"bytes {start}-{end}/{len(body)}", "Accept-Ranges": "bytes"})
            return Response(200, body, kind)

        self.add_route(prefix, handler)
        return self.base_url + prefix.rstrip("/")

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take_faults(self, path: str) -> list[_Fault]:
        """The faults that apply to this request: at most one of each action."""
        taken: dict[str, _Fault] = {}
        with self._lock:
            for f in self._faults:
                if f.action in taken or f.substring not in path:
                    continue
                if f.times is not None:
                    if f.times <= 0:
                        continue
                    f.times -= 1
                taken[f.action] = f
            self._faults = [f for f in self._faults if f.times is None or f.times > 0]
        return list(taken.values())

    # ------------------------------------------------------------------ request handling

    def _respond(self, raw_path: str, headers: Mapping[str, str]) -> Response:
        path = unquote(urlsplit(raw_path).path)
        is_metadata = path.endswith((".xml", ".dzi", "/info.json")) or path.strip("/") in ("", *KINDS)
        faults = {f.action: f for f in self._take_faults(raw_path)}
        delay = (0.0 if is_metadata else self.latency) + (
            faults["delay"].seconds if "delay" in faults else 0.0
        )
        if delay > 0:
            time.sleep(delay)
        if self.require_header is not None:
            name, value = self.require_header
            if headers.get(name) != value:
                return Response(403, f"missing or wrong {name} header\n".encode())
        if "fail" in faults:
            f = faults["fail"]
            extra = {} if f.retry_after is None else {"Retry-After": str(f.retry_after)}
            return Response(f.status, f"injected failure {f.status}\n".encode(), headers=extra)
        try:
            custom = next((h for prefix, h in self._routes if path.startswith(prefix)), None)
            resp = custom(self, raw_path, headers) if custom is not None else self._route(path)
        except _BadRequest as exc:
            resp = Response(400, f"bad request: {exc}\n".encode())
        if "corrupt" in faults and resp.status == 200:
            resp.body = resp.body[: len(resp.body) // 2]
        return resp

    def _route(self, path: str) -> Response:
        if path in ("", "/"):
            body = json.dumps(self.urls(), indent=1).encode()
            return Response(200, body, "application/json")
        kind, _, rest = path.lstrip("/").partition("/")
        if kind not in self._geometry:
            return _not_found()
        if kind in ("zoomify", "zoomify-even"):
            return self._zoomify(kind, rest)
        if kind in _DZI_NS:
            return self._dzi(kind, rest)
        if kind in _IIIF_KINDS:
            return self._iiif(kind, rest)
        return self._generic(kind, rest)

    def _tile_response(self, kind: str, k: int, col: int, row: int) -> Response:
        g = self._geom(kind)
        cols, rows = g.grid(k)
        if not (0 <= col < cols and 0 <= row < rows):
            return _not_found()
        size = g.sizes[k]
        box = g.box(k, col, row)
        key = ("tile", size, box, g.fmt)
        cached = self._tiles.get(key)
        if cached is None:
            cached = self._encode(self._level_pil(size).crop(box), g.fmt)
            self._tiles.put(key, cached)
        return Response(200, cached[0], cached[1])

    def _zoomify(self, kind: str, rest: str) -> Response:
        g = self._geom(kind)
        if rest == "ImageProperties.xml":
            body = (
                f'<IMAGE_PROPERTIES WIDTH="{self.width}" HEIGHT="{self.height}" '
                f'NUMTILES="{self.numtiles(kind)}" NUMIMAGES="1" VERSION="1.8" '
                f'TILESIZE="{self.tile_size}" />'
            )
            return Response(200, body.encode(), "application/xml")
        m = re.fullmatch(r"TileGroup(\d+)/(\d+)-(\d+)-(\d+)\.jpg", rest)
        if not m:
            return _not_found()
        group, z, col, row = (int(v) for v in m.groups())
        n = len(g.sizes)
        if z >= n:
            return _not_found()
        cols, rows = g.grid(n - 1 - z)
        if col >= cols or row >= rows or group != self._zoomify_group(kind, z, col, row):
            return _not_found()
        return self._tile_response(kind, n - 1 - z, col, row)

    def _dzi(self, kind: str, rest: str) -> Response:
        g = self._geom(kind)
        if rest == "image.dzi":
            body = (
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                f'<Image xmlns="{_DZI_NS[kind]}" Format="{g.fmt}" Overlap="{g.overlap}" '
                f'TileSize="{g.tile_w}">\n'
                f'  <Size Width="{self.width}" Height="{self.height}"/>\n'
                "</Image>\n"
            )
            return Response(200, body.encode(), "application/xml")
        m = re.fullmatch(r"image_files/(\d+)/(\d+)_(\d+)\.(\w+)", rest)
        if not m or m.group(4) != g.fmt:
            return _not_found()
        level, col, row = (int(v) for v in m.groups()[:3])
        n = len(g.sizes)
        if level >= n:
            return _not_found()
        return self._tile_response(kind, n - 1 - level, col, row)

    def _generic(self, kind: str, rest: str) -> Response:
        g = self._geom(kind)
        m = re.fullmatch(r"tile_(\d+)_(\d+)\.(\w+)", rest)
        if not m or m.group(3) != g.fmt:
            return _not_found()
        return self._tile_response(kind, 0, int(m.group(1)), int(m.group(2)))

    # ------------------------------------------------------------------ IIIF

    def _iiif_info(self, kind: str) -> dict[str, Any]:
        g = self._geom(kind)
        base_id = f"{self.base_url}/{kind}"
        scale_factors = [2**k for k in range(len(g.sizes))]
        sizes = [{"width": w, "height": h} for w, h in reversed(g.sizes)]
        if kind == "iiif3":
            return {
                "@context": "http://iiif.io/api/image/3/context.json",
                "id": base_id,
                "type": "ImageService3",
                "protocol": "http://iiif.io/api/image",
                "profile": "level1",
                "width": self.width,
                "height": self.height,
                "sizes": sizes,
                "tiles": [{"width": g.tile_w, "scaleFactors": scale_factors}],
                "extraFormats": ["png"],
                "preferredFormats": ["png"],
                "extraQualities": ["color"],
                "extraFeatures": ["sizeByPct", "sizeByConfinedWh", "sizeUpscaling"],
            }
        info: dict[str, Any] = {
            "@context": "http://iiif.io/api/image/2/context.json",
            "@id": base_id,
            "protocol": "http://iiif.io/api/image",
            "width": self.width,
            "height": self.height,
            "sizes": sizes,
            "preferredFormats": ["png"],  # not in v2, but read by OpenSeadragon, dezoomify-rs and us
        }
        if kind == "iiif2":
            info["tiles"] = [{"width": g.tile_w, "height": g.tile_h, "scaleFactors": scale_factors}]
        info["profile"] = [
            "http://iiif.io/api/image/2/level2.json",
            {
                "formats": ["jpg", "png"],
                "qualities": ["default", "color"],
                "supports": [
                    "regionByPx",
                    "regionSquare",
                    "sizeByW",
                    "sizeByH",
                    "sizeByWh",
                    "sizeByPct",
                    "sizeByConfinedWh",
                    "sizeByForcedWh",
                ],
            },
        ]
        return info

    def _iiif(self, kind: str, rest: str) -> Response:
        if rest == "":
            return Response(303, b"", headers={"Location": f"{self.base_url}/{kind}/info.json"})
        if rest == "info.json":
            body = json.dumps(self._iiif_info(kind), indent=1).encode()
            return Response(200, body, "application/json")
        parts = rest.split("/")
        if len(parts) != 4:
            return _not_found()
        region_s, size_s, rotation_s, tail = parts
        quality, dot, fmt = tail.rpartition(".")
        if not dot or fmt not in _CONTENT_TYPES:
            raise _BadRequest(f"unsupported format {fmt!r}")
        if quality not in ("default", "color"):
            raise _BadRequest(f"unsupported quality {quality!r}")
        if rotation_s != "0":
            raise _BadRequest(f"unsupported rotation {rotation_s!r}")
        version = 3 if kind == "iiif3" else 2
        region = parse_region(region_s, self.width, self.height)
        size = parse_size(size_s, region[2], region[3], version, self.width, self.height)
        key = ("iiif", region, size, fmt)
        cached = self._tiles.get(key)
        if cached is None:
            cached = self._encode(self._iiif_pixels(region, size), fmt)
            self._tiles.put(key, cached)
        return Response(200, cached[0], cached[1])

    def _iiif_pixels(self, region: tuple[int, int, int, int], size: tuple[int, int]) -> Image.Image:
        x, y, rw, rh = region
        sw, sh = size
        W, H = self.width, self.height
        for sf in sorted({rw // sw, _ceil_div(rw, sw), rh // sh, _ceil_div(rh, sh)}):
            if sf < 1 or sf & (sf - 1) or x % sf or y % sf:
                continue
            if (x + rw) % sf and x + rw != W:
                continue
            if (y + rh) % sf and y + rh != H:
                continue
            if sw not in (rw // sf, _ceil_div(rw, sf)) or sh not in (rh // sf, _ceil_div(rh, sf)):
                continue
            level = self._level_pil((_ceil_div(W, sf), _ceil_div(H, sf)))
            return level.crop((x // sf, y // sf, x // sf + sw, y // sf + sh))
        crop = self._full.crop((x, y, x + rw, y + rh))
        return crop if (sw, sh) == (rw, rh) else crop.resize((sw, sh), LEVEL_FILTER)

    # ------------------------------------------------------------------ pixels

    def _level_pil(self, size: tuple[int, int]) -> Image.Image:
        img = self._levels.get(size)
        if img is not None:
            return img
        with self._lock:
            lock = self._level_locks.setdefault(size, threading.Lock())
        with lock:
            img = self._levels.get(size)
            if img is None:
                img = self._full.resize(size, LEVEL_FILTER)
                self._levels[size] = img
        return img

    def _encode(self, img: Image.Image, fmt: str) -> tuple[bytes, str]:
        buf = io.BytesIO()
        if fmt == "png" or self.lossless:
            img.save(buf, "PNG", compress_level=PNG_COMPRESS_LEVEL)
            return buf.getvalue(), _CONTENT_TYPES["png"]
        if img.mode == "RGBA":
            img = img.convert("RGB")
        img.save(buf, "JPEG", quality=JPEG_QUALITY)
        return buf.getvalue(), _CONTENT_TYPES["jpg"]
