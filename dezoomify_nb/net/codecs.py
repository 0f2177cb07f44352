"""Content-Encoding decoders that never produce more than a bounded piece per call.

Both transports receive the body as sent (aiohttp with ``auto_decompress=False``, httpx through
``iter_raw``) and decode it here, so a gzip bomb, a stacked ``Content-Encoding: gzip, gzip`` or a
brotli bomb is inflated piece by piece (at most :data:`PIECE` bytes per decompress call, at each layer)
and the caller can stop at its cap before the next piece exists.

Encodings: ``gzip`` (``x-gzip``; members in a row), ``deflate`` (zlib-wrapped or raw, told apart by the
header), ``br`` when the ``brotli`` package (>= 1.2, output limits) is installed, ``zstd`` when
``compression.zstd`` (Python 3.14) or ``backports.zstd`` is, and ``identity``; stacked up to
:data:`MAX_LAYERS` deep. :data:`ACCEPT_ENCODING` advertises exactly what can be decoded.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from typing import Any

#: the most bytes one decompress call may produce (per layer)
PIECE = 256 * 1024
#: the most encodings a response may stack (real servers: 1, a misconfigured one: 2)
MAX_LAYERS = 4


class DecodeError(ValueError):
    """A body that does not decode (corrupt data): retried like a network error."""


class UnsupportedEncoding(ValueError):
    """A ``Content-Encoding`` this installation cannot decode, or too many of them stacked."""


class _Stage:
    """One encoding layer: ``pieces(data)`` consumes all of ``data`` and yields its output in pieces."""

    def pieces(self, data: bytes) -> Iterator[bytes]:  # pragma: no cover - interface
        raise NotImplementedError


class _Zlib(_Stage):
    """gzip (``wbits`` 31 + 16: gzip or zlib header) and deflate (zlib or raw, decided on the first bytes).

    Data after the end of the stream is ignored (as browsers do), except a further gzip member.
    """

    def __init__(self, gzip: bool) -> None:
        self.gzip = gzip
        self.d: Any = zlib.decompressobj(47) if gzip else None
        self.head = b""  # deflate: bytes seen before the header is decided; gzip: a split member magic
        self.finished = False

    def pieces(self, data: bytes) -> Iterator[bytes]:
        if self.finished:
            return
        if self.head:
            data, self.head = self.head + data, b""
        if self.d is None:  # deflate: zlib header or raw stream?
            if len(data) < 2:
                self.head = data
                return
            cmf, flg = data[0], data[1]
            zlib_header = cmf & 0x0F == 8 and cmf >> 4 <= 7 and (cmf << 8 | flg) % 31 == 0
            self.d = zlib.decompressobj(15 if zlib_header else -15)
        while data:
            d = self.d
            if d.eof:  # what follows the stream: another gzip member, or ignored trailing bytes
                if self.gzip and len(data) < 2:
                    self.head = data
                    return
                if not (self.gzip and data[:2] == b"\x1f\x8b"):
                    self.finished = True
                    return
                d = self.d = zlib.decompressobj(47)
            try:
                out = d.decompress(data, PIECE)
            except zlib.error as exc:
                raise DecodeError(f"invalid {'gzip' if self.gzip else 'deflate'} data ({exc})") from None
            data = d.unconsumed_tail if not d.eof else d.unused_data
            if out:
                yield out
            if len(out) == PIECE and not data and not d.eof:
                data = b""  # the output limit was hit: more may be pending inside zlib
                yield from self._drain()

    def _drain(self) -> Iterator[bytes]:
        while True:
            try:
                out = self.d.decompress(b"", PIECE)
            except zlib.error as exc:
                raise DecodeError(f"invalid {'gzip' if self.gzip else 'deflate'} data ({exc})") from None
            if out:
                yield out
            if len(out) < PIECE:
                return


class _Zstd(_Stage):
    """zstd frames in a row (``compression.zstd`` / ``backports.zstd``: ``decompress(data, max_length)``)."""

    def __init__(self, factory: Callable[[], Any], error: type[Exception]) -> None:
        self.factory, self.error = factory, error
        self.d = factory()

    def pieces(self, data: bytes) -> Iterator[bytes]:
        while True:
            if self.d.eof:
                data = self.d.unused_data + data
                if not data:
                    return
                self.d = self.factory()
            try:
                out = self.d.decompress(data, PIECE)
            except self.error as exc:
                raise DecodeError(f"invalid zstd data ({exc})") from None
            data = b""
            if out:
                yield out
            if not self.d.eof and self.d.needs_input:
                return


class _Brotli(_Stage):
    """brotli >= 1.2: ``process(data, output_buffer_limit=…)``, then empty calls while the output fills the
    limit (more is pending) or the decoder cannot take input yet. (A call may return up to about twice the
    limit: the buffer grows in blocks.)"""

    def __init__(self, module: Any) -> None:
        self.module = module
        self.d = module.Decompressor()

    def pieces(self, data: bytes) -> Iterator[bytes]:
        d = self.d
        if d.is_finished():
            return  # trailing bytes after the stream: ignored
        try:
            out = d.process(data, output_buffer_limit=PIECE)
            if out:
                yield out
            while len(out) >= PIECE or not d.can_accept_more_data():
                if d.is_finished():
                    return
                out = d.process(b"", output_buffer_limit=PIECE)
                if out:
                    yield out
                elif not d.can_accept_more_data():  # no output and no room: never loop on it
                    raise DecodeError("the brotli decoder made no progress")
        except self.module.error as exc:
            raise DecodeError(f"invalid brotli data ({exc})") from None


def _brotli_module() -> Any | None:
    for name in ("brotli", "brotlicffi"):
        try:
            module = __import__(name)
        except ImportError:
            continue
        if hasattr(getattr(module, "Decompressor", None), "can_accept_more_data"):  # output limits: >= 1.2
            return module
    return None


def _zstd_module() -> Any | None:
    for name in ("compression.zstd", "backports.zstd"):
        try:
            module = __import__(name, fromlist=["ZstdDecompressor"])
        except ImportError:
            continue
        return module
    return None


_BROTLI = _brotli_module()
_ZSTD = _zstd_module()

_FACTORIES: dict[str, Callable[[], _Stage]] = {
    "gzip": lambda: _Zlib(gzip=True),
    "x-gzip": lambda: _Zlib(gzip=True),
    "deflate": lambda: _Zlib(gzip=False),
}
if _BROTLI is not None:
    _FACTORIES["br"] = lambda: _Brotli(_BROTLI)
if _ZSTD is not None:
    _FACTORIES["zstd"] = lambda: _Zstd(_ZSTD.ZstdDecompressor, _ZSTD.ZstdError)

#: the ``Accept-Encoding`` we send: only what :func:`stages` can decode
ACCEPT_ENCODING = ", ".join(name for name in ("gzip", "deflate", "br", "zstd") if name in _FACTORIES)


def stages(content_encoding: str | None) -> list[_Stage] | None:
    """The decoders of a ``Content-Encoding`` value, in decoding order (the last applied comes first);
    ``None`` for an identity body. Raises :class:`UnsupportedEncoding`."""
    if not content_encoding:
        return None
    names = [n.strip().lower() for n in content_encoding.split(",")]
    names = [n for n in names if n and n != "identity"]
    if not names:
        return None
    if len(names) > MAX_LAYERS:
        raise UnsupportedEncoding(f"{len(names)} stacked content encodings (at most {MAX_LAYERS})")
    unknown = [n for n in names if n not in _FACTORIES]
    if unknown:
        raise UnsupportedEncoding(f"content encoding {unknown[0][:40]!r}, which this installation cannot decode")
    return [_FACTORIES[n]() for n in reversed(names)]


def decode(chain: list[_Stage], data: bytes, layer: int = 0) -> Iterator[bytes]:
    """``data`` (as received) through ``chain``: decoded pieces of at most :data:`PIECE` bytes each."""
    stage = chain[layer]
    if layer == len(chain) - 1:
        yield from stage.pieces(data)
        return
    for piece in stage.pieces(data):
        yield from decode(chain, piece, layer + 1)
