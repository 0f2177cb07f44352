"""A response body as both transports read it: decoded as it arrives, capped, counted in a shared budget.

- **Caps** (:class:`Body`): a body is refused once its *decoded* size passes its cap,
  ``NetConfig.max_metadata_bytes`` for metadata documents and ``NetConfig.max_tile_bytes`` for tiles; a
  ``Content-Length`` over the cap is refused before any byte is read. Compressed bodies are inflated
  piece by piece (:mod:`.codecs`), so a bomb stops at its cap, whatever its encodings.
- **Bytes in flight** (:class:`AsyncBudget` per event loop for aiohttp, :class:`SyncBudget` per process
  for httpx's worker threads): the decoded bytes that the requests in flight hold, at most
  ``NetConfig.max_inflight_bytes``. A request that would pass it waits until another one ends, except the
  oldest holder, which always proceeds: no deadlock, and at most the budget plus one body cap in all.
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import threading
import time
import weakref
from collections.abc import Iterable, Iterator
from typing import Any

from . import codecs
from .common import pid
from .failures import decode_failure, too_large, unsupported_encoding


class Body:
    """The decoded body of one response, kept in chunks until :meth:`value`."""

    __slots__ = ("url", "cap", "metadata", "chain", "chunks", "size")

    def __init__(self, url: str, cap: int, metadata: bool, content_encoding: str | None,
                 declared: int | None) -> None:
        self.url, self.cap, self.metadata = url, cap, metadata
        if declared is not None and declared > cap:
            raise too_large(url, cap, metadata)
        try:
            self.chain = codecs.stages(content_encoding)
        except codecs.UnsupportedEncoding as exc:
            raise unsupported_encoding(url, str(exc)) from None
        self.chunks: list[bytes] = []
        self.size = 0

    def decoded(self, raw: bytes) -> Iterable[bytes]:
        """``raw`` (as received) decoded, in pieces (an identity body: ``raw`` itself)."""
        if self.chain is None:
            return (raw,)
        return self._decode(raw)

    def _decode(self, raw: bytes) -> Iterator[bytes]:
        try:
            yield from codecs.decode(self.chain, raw)  # type: ignore[arg-type]
        except codecs.DecodeError as exc:
            raise decode_failure(self.url, str(exc)) from None

    def add(self, piece: bytes) -> None:
        self.size += len(piece)
        if self.size > self.cap:
            self.chunks.clear()
            _trim()
            raise too_large(self.url, self.cap, self.metadata)
        self.chunks.append(piece)

    def value(self) -> bytes:
        chunks = self.chunks
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)


@functools.cache
def _malloc_trim() -> Any:
    try:
        return ctypes.CDLL(None).malloc_trim  # glibc
    except (OSError, AttributeError):
        return None


def _trim() -> None:
    """Give the pages of a refused body back to the system now: with worker threads, glibc keeps freed
    memory in per-thread arenas, and a series of refused bombs would otherwise add up in the RSS."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


class AsyncBudget:
    """Decoded bytes held by the requests in flight on one event loop (see the module doc)."""

    def __init__(self, limit: int) -> None:
        self.limit, self.held = limit, 0
        self.holders: dict[int, int] = {}  # id(body) -> bytes held; insertion order is age
        self.freed = asyncio.Event()
        self.waiting = 0

    def try_take(self, token: int, n: int) -> bool:
        """Hold ``n`` more bytes for ``token`` if that needs no wait (the common case, no coroutine)."""
        holders = self.holders
        have = holders.get(token)
        if have is None:
            holders[token] = have = 0
        if self.held + n > self.limit and next(iter(holders)) != token:
            return False
        holders[token] = have + n
        self.held += n
        return True

    async def take(self, token: int, n: int) -> None:
        holders = self.holders
        if token not in holders:
            holders[token] = 0
        while self.held + n > self.limit and next(iter(holders)) != token:
            self.waiting += 1
            try:
                await self.freed.wait()
            finally:
                self.waiting -= 1
        holders[token] += n
        self.held += n

    def release(self, token: int) -> None:
        n = self.holders.pop(token, None)
        if n is not None:
            self.held -= n
            if self.waiting:  # wake them all: each checks again (the oldest always goes)
                self.freed.set()
                self.freed = asyncio.Event()


class SyncBudget:
    """:class:`AsyncBudget` for threads (httpx): the waits are bounded by the request's deadline."""

    def __init__(self, limit: int) -> None:
        self.limit, self.held = limit, 0
        self.holders: dict[int, int] = {}
        self.cond = threading.Condition(threading.Lock())

    def take(self, token: int, n: int, deadline: float) -> bool:
        """Hold ``n`` more bytes for ``token``; ``False`` if the deadline passed while waiting."""
        with self.cond:
            holders = self.holders
            if token not in holders:
                holders[token] = 0
            while self.held + n > self.limit and next(iter(holders)) != token:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
            holders[token] += n
            self.held += n
            return True

    def release(self, token: int) -> None:
        with self.cond:
            n = self.holders.pop(token, None)
            if n is not None:
                self.held -= n
                self.cond.notify_all()


_async_budgets: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, AsyncBudget]] = (
    weakref.WeakKeyDictionary())
_sync_budgets: dict[int, SyncBudget] = {}
_lock = threading.Lock()
_pid = pid()


def async_budget(limit: int) -> AsyncBudget:
    """The running loop's budget of ``limit`` bytes."""
    loop = asyncio.get_running_loop()
    per_loop = _async_budgets.get(loop)
    if per_loop is None:
        per_loop = _async_budgets[loop] = {}
    budget = per_loop.get(limit)
    if budget is None:
        budget = per_loop[limit] = AsyncBudget(limit)
    return budget


def sync_budget(limit: int) -> SyncBudget:
    """This process's budget of ``limit`` bytes (for worker threads)."""
    global _sync_budgets, _lock, _pid
    if pid() != _pid:  # forked: the parent's holders are not ours
        _sync_budgets, _lock, _pid = {}, threading.Lock(), pid()
    budget = _sync_budgets.get(limit)
    if budget is None:
        with _lock:
            budget = _sync_budgets.setdefault(limit, SyncBudget(limit))
    return budget
