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

The level sizes, URLs and answers of each protocol are in :mod:`dezoomify_nb.testing.protocols` (one
module per protocol: ``zoomify``, ``deepzoom``, ``iiif``, ``generic``); this module holds what they share:
the images, the HTTP server, request accounting, fault injection and custom routes.
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
from urllib.parse import unquote, urlsplit

import numpy as np
from PIL import Image

from ._http import _LRU, Response, _BadRequest, _guess_type, _Headers, _HTTPServer, _not_found
from .protocols import PROTOCOLS
from .protocols._base import CONTENT_TYPES, JPEG_QUALITY, LEVEL_FILTER, PNG_COMPRESS_LEVEL, Geometry

__all__ = ["JPEG_QUALITY", "KINDS", "LEVEL_FILTER", "PNG_COMPRESS_LEVEL", "Response", "TileServer"]

KINDS: tuple[str, ...] = tuple(PROTOCOLS)

#: handler(server, raw_path_with_query, request_headers) -> Response
Route = Callable[["TileServer", str, Mapping[str, str]], Response]

_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


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
        self._geometry = {kind: proto.geometry(kind, self.width, self.height, self.tile_size)
                          for kind, proto in PROTOCOLS.items()}

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
        proto = PROTOCOLS.get(kind)
        if proto is None:
            raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
        return str(proto.path(kind))

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
        self.tile_box(kind, k, col, row)  # bounds check
        return self.base_url + str(PROTOCOLS[kind].tile_path(self, kind, k, col, row, fmt))

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

    def _geom(self, kind: str) -> Geometry:
        try:
            return self._geometry[kind]
        except KeyError:
            raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}") from None

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
        resp: Response = PROTOCOLS[kind].route(self, kind, rest)
        return resp

    def _tile_response(self, kind: str, k: int, col: int, row: int) -> Response:
        g = self._geom(kind)
        cols, rows = g.grid(k)
        if not (0 <= col < cols and 0 <= row < rows):
            return _not_found()
        size = g.sizes[k]
        box = g.box(k, col, row)
        return self._cached(("tile", size, box, g.fmt), g.fmt, lambda: self._level_pil(size).crop(box))

    def _cached(self, key: tuple[object, ...], fmt: str, make: Callable[[], Image.Image]) -> Response:
        """The encoded ``make()`` from the tile cache (encoded and kept on a miss)."""
        cached = self._tiles.get(key)
        if cached is None:
            cached = self._encode(make(), fmt)
            self._tiles.put(key, cached)
        return Response(200, cached[0], cached[1])

    # ------------------------------------------------------------------ pixels

    def _full_pil(self) -> Image.Image:
        return self._full

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
            return buf.getvalue(), CONTENT_TYPES["png"]
        if img.mode == "RGBA":
            img = img.convert("RGB")
        img.save(buf, "JPEG", quality=JPEG_QUALITY)
        return buf.getvalue(), CONTENT_TYPES["jpg"]
