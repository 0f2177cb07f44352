"""A loopback HTTP server that writes exactly the bytes a test asks for: lying headers, stacked
``Content-Encoding``\\ s, bodies that never end, one byte every half second.

``RawServer.route(prefix, handler)``: ``handler(out, path)`` writes the whole response (status line,
headers, body) to ``out`` (a socket file) with the helpers below. One response per connection
(``Connection: close``); a client that hangs up ends the handler quietly. Handlers stop on their own after
``RawServer.max_seconds`` at the latest, so no thread outlives a test for long.
"""

from __future__ import annotations

import functools
import gzip
import socketserver
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from typing import BinaryIO

Handler = Callable[[BinaryIO, str], None]

MiB = 1024 * 1024


class _Stop(Exception):
    pass


class RawServer:
    max_seconds = 30.0

    def __init__(self) -> None:
        self.routes: list[tuple[str, Handler]] = []
        self.requests: list[tuple[float, str, dict[str, str]]] = []
        server = self

        class Handle(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                line = self.rfile.readline(65536).decode("latin-1")
                headers: dict[str, str] = {}
                while True:
                    h = self.rfile.readline(65536).decode("latin-1").strip()
                    if not h:
                        break
                    name, _, value = h.partition(":")
                    headers[name.strip().lower()] = value.strip()
                path = line.split(" ")[1] if line.count(" ") >= 2 else "/"
                server.requests.append((time.monotonic(), path, headers))
                for prefix, handler in server.routes:
                    if path.startswith(prefix):
                        try:
                            handler(self.wfile, path)
                            self.wfile.flush()
                        except (BrokenPipeError, ConnectionResetError, _Stop):
                            pass
                        return
                respond(self.wfile, 404, b"not found")

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.httpd = Server(("127.0.0.1", 0), Handle)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def route(self, prefix: str, handler: Handler) -> str:
        """Serve ``prefix`` with ``handler``; returns the URL of ``prefix``."""
        self.routes.append((prefix, handler))
        return self.base + prefix

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def head(out: BinaryIO, status: int = 200, headers: Iterable[tuple[str, str]] = ()) -> None:
    lines = [f"HTTP/1.1 {status} {'OK' if status < 400 else 'Error'}", "Connection: close",
             *(f"{k}: {v}" for k, v in headers)]
    out.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    out.flush()


def respond(out: BinaryIO, status: int, body: bytes, headers: Iterable[tuple[str, str]] = ()) -> None:
    head(out, status, [*headers, ("Content-Length", str(len(body)))])
    out.write(body)


def chunked(out: BinaryIO, pieces: Iterable[bytes], headers: Iterable[tuple[str, str]] = ()) -> None:
    """A ``Transfer-Encoding: chunked`` response of ``pieces`` (an endless iterable: an endless body)."""
    head(out, 200, [*headers, ("Transfer-Encoding", "chunked")])
    end = time.monotonic() + RawServer.max_seconds
    for piece in pieces:
        if time.monotonic() > end:
            raise _Stop
        if piece:
            out.write(b"%x\r\n%s\r\n" % (len(piece), piece))
    out.write(b"0\r\n\r\n")


def drip(out: BinaryIO, data: bytes, every: float = 0.5) -> None:
    """``data`` one byte at a time, ``every`` seconds apart (bounded by ``RawServer.max_seconds``)."""
    end = time.monotonic() + RawServer.max_seconds
    for i in range(len(data)):
        if time.monotonic() > end:
            raise _Stop
        out.write(data[i:i + 1])
        out.flush()
        time.sleep(every)


@functools.lru_cache(maxsize=8)
def gzip_bomb(size: int, unit: bytes = b"\0") -> bytes:
    """A gzip member that inflates to ``size`` bytes of ``unit`` repeated (a multiple of 1 MiB).

    One MiB is deflated once, ended by a full flush (which resets the compressor), so its blocks can be
    repeated as they are: a 256 MiB bomb takes a CRC pass, not a compression pass.
    """
    block = (unit * (MiB // len(unit) + 1))[:MiB]
    count, rest = divmod(size, MiB)
    if rest:
        raise ValueError("size must be a multiple of 1 MiB")
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    piece = comp.compress(block) + comp.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(count):
        crc = zlib.crc32(block, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    return header + piece * count + comp.flush() + struct.pack("<II", crc, size & 0xFFFFFFFF)


def gzipped(data: bytes) -> bytes:
    return gzip.compress(data, 6)


def deflate_zlib(data: bytes) -> bytes:
    return zlib.compress(data)


def deflate_raw(data: bytes) -> bytes:
    comp = zlib.compressobj(6, zlib.DEFLATED, -15)
    return comp.compress(data) + comp.flush()
