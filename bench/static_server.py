"""A loopback static file server for the benchmark: pre-encoded tiles from memory, HTTP/1.1 keep-alive.

The tiles are the ones ``dezoomify_nb.testing.TileServer`` serves (same pyramid, same JPEG bytes), encoded
once and kept in a cache directory; this server only sends bytes, in one asyncio thread, so it costs the
machine ~0.05 ms of CPU per request (the test server, a ``ThreadingHTTPServer``, costs several times that
and would eat into the 2 cores both sides share). ``--latency`` delays each tile response (concurrently).

It counts requests in flight: ``GET /_stats`` gives the count of tile requests, the maximum in flight and
the time-weighted mean in flight while busy (first request to last response); ``/_stats/reset`` resets.

    python bench/static_server.py --root DIR --latency 0.02 --ready-file url.txt
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import time
from pathlib import Path

TYPES = {".jpg": b"image/jpeg", ".png": b"image/png", ".dzi": b"application/xml", ".xml": b"application/xml",
         ".json": b"application/json"}


class Stats:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.area = 0.0  # integral of in_flight over time
        self.first: float | None = None
        self.last = 0.0
        self._t = time.perf_counter()

    def _advance(self) -> None:
        now = time.perf_counter()
        self.area += self.in_flight * (now - self._t)
        self._t = now

    def enter(self) -> None:
        self._advance()
        if self.first is None:
            self.first = self._t
        self.requests += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def leave(self) -> None:
        self._advance()
        self.in_flight -= 1
        self.last = self._t

    def as_dict(self) -> dict[str, float]:
        busy = (self.last - self.first) if self.first is not None else 0.0
        return {"requests": self.requests, "max_in_flight": self.max_in_flight,
                "mean_in_flight": round(self.area / busy, 2) if busy > 0 else 0.0, "busy_s": round(busy, 3)}


def load_tree(root: Path) -> dict[str, tuple[bytes, bytes]]:
    files = {}
    for path in root.rglob("*"):
        if path.is_file():
            files["/" + path.relative_to(root).as_posix()] = (path.read_bytes(), TYPES.get(path.suffix, b"application/octet-stream"))
    return files


async def serve(root: Path, latency: float, host: str, port: int, ready_file: str | None) -> None:
    files = load_tree(root)
    stats = Stats()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                line = head.split(b"\r\n", 1)[0].split()
                path = line[1].decode().split("?", 1)[0] if len(line) > 1 else "/"
                is_tile = path.endswith((".jpg", ".png"))
                if path.startswith("/_stats"):
                    if path == "/_stats/reset":
                        stats.reset()
                    body, ctype, status = json.dumps(stats.as_dict()).encode(), b"application/json", b"200 OK"
                else:
                    if is_tile:
                        stats.enter()
                        if latency > 0:
                            await asyncio.sleep(latency)
                    hit = files.get(path)
                    body, ctype = hit if hit is not None else (b"not found\n", b"text/plain")
                    status = b"200 OK" if hit is not None else b"404 Not Found"
                writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Type: " + ctype + b"\r\nContent-Length: "
                             + str(len(body)).encode() + b"\r\n\r\n")
                writer.write(body)
                await writer.drain()
                if is_tile and not path.startswith("/_stats"):
                    stats.leave()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, host, port, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    if ready_file:
        tmp = f"{ready_file}.{os.getpid()}.tmp"
        Path(tmp).write_text(f"http://{host}:{port}\n")
        os.replace(tmp, ready_file)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", type=Path, required=True)
    p.add_argument("--latency", type=float, default=0.0, help="seconds per tile response")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--ready-file")
    args = p.parse_args()
    asyncio.run(serve(args.root, args.latency, args.host, args.port, args.ready_file))


if __name__ == "__main__":
    main()
