"""HTTP plumbing of the loopback :class:`~dezoomify_nb.testing.tileserver.TileServer`.

A threading HTTP/1.1 server with keep-alive, ``TCP_NODELAY``, connection tracking (so ``stop()`` never
waits on an idle keep-alive client) and the :class:`Response` type route handlers return.
"""

from __future__ import annotations

import mimetypes
import socket
import socketserver
import sys
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol


class _Served(Protocol):
    """What the request handler calls on the server it serves (the TileServer; a protocol, so that this
    module does not import the server that imports it)."""

    def _enter(self, path: str, headers: Iterable[tuple[str, str]]) -> None: ...

    def _respond(self, raw_path: str, headers: Mapping[str, str]) -> Response: ...

    def _leave(self) -> None: ...


class _BadRequest(Exception):
    pass


class _Headers(dict):
    """Request headers with lower-cased keys; lookups are case-insensitive."""

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(key.lower(), default)

    def __contains__(self, key: object) -> bool:
        return super().__contains__(key.lower() if isinstance(key, str) else key)


class _LRU:
    """A thread-safe LRU of encoded tiles bounded by total bytes."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._data: OrderedDict[Any, tuple[bytes, str]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: Any) -> tuple[bytes, str] | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: Any, value: tuple[bytes, str]) -> None:
        n = len(value[0])
        if n > self.max_bytes:
            return
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self._size -= len(old[0])
            self._data[key] = value
            self._size += n
            while self._size > self.max_bytes:
                _, evicted = self._data.popitem(last=False)
                self._size -= len(evicted[0])


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


def _guess_type(path: str) -> str:
    return mimetypes.guess_type(path)[0] or "application/octet-stream"


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], tileserver: _Served) -> None:
        self.tileserver = tileserver
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # Skip HTTPServer.server_bind's socket.getfqdn(), which may hit DNS.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conns_lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Wake every handler blocked on a keep-alive connection."""
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return  # client went away; not interesting
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "dezoomify-nb-tileserver/1"
    timeout = 60  # idle keep-alive connections are dropped after this
    disable_nagle_algorithm = True  # headers and body are separate writes; avoid 40 ms delayed ACKs
    server: _HTTPServer

    def do_GET(self) -> None:
        self._serve(head=False)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self, *, head: bool) -> None:
        ts = self.server.tileserver
        ts._enter(self.path, self.headers.items())
        try:
            try:
                resp = ts._respond(self.path, self.headers)
            except Exception as exc:  # a bug in the server must not kill the connection silently
                resp = Response(500, f"internal error: {exc!r}\n".encode())
            self.send_response(resp.status)
            self.send_header("Content-Type", resp.content_type)
            self.send_header("Content-Length", str(len(resp.body)))
            self.send_header("Access-Control-Allow-Origin", "*")
            for name, value in resp.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if not head:
                self.wfile.write(resp.body)
        finally:
            ts._leave()


def _not_found() -> Response:
    return Response(404, b"not found\n")
