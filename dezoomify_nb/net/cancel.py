"""Cancel scopes: stop at once every request made for one computation (a kernel interrupt, a failure).

A :class:`CancelScope` is carried by a context variable. Whatever runs in that context records its
requests in it: :func:`~dezoomify_nb.net.fetch.fetch` adds its asyncio task while the request (with its
retries and pacing) is running. The context reaches the I/O loops with the work itself —
``asyncio.run_coroutine_threadsafe`` and ``loop.call_soon_threadsafe`` copy the caller's context into the
task they create, and dask's thread pool copies the submitting thread's context into each task — so a
scope opened around a ``save`` or a dask ``compute`` sees every tile request made for it, in whichever
thread or loop it runs.

:meth:`CancelScope.cancel` cancels those tasks (a request in flight is abandoned and its connection
closed; a retry wait or a pacing pause ends) and makes every later request of the scope raise
:class:`~dezoomify_nb.errors.DownloadCancelled` before anything is sent. ``with cancel_scope():`` cancels
when the block raises (``KeyboardInterrupt`` included).
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import DownloadCancelled

_current: contextvars.ContextVar[CancelScope | None] = contextvars.ContextVar("dezoomify_nb_cancel", default=None)


class CancelScope:
    """The requests of one computation; see the module docstring."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tasks: dict[asyncio.Task[object], asyncio.AbstractEventLoop] = {}
        self.cancelled = False

    def check(self) -> None:
        """Raise :class:`~dezoomify_nb.errors.DownloadCancelled` once the scope is cancelled."""
        if self.cancelled:
            raise DownloadCancelled("The computation was interrupted: its remaining requests were cancelled")

    def enter(self) -> asyncio.Task[object] | None:
        """Record the running task (called on its loop); raises if already cancelled."""
        self.check()
        task = asyncio.current_task()
        if task is not None:
            with self._lock:
                self._tasks[task] = asyncio.get_running_loop()
        return task

    def leave(self, task: asyncio.Task[object] | None) -> None:
        if task is not None:
            with self._lock:
                self._tasks.pop(task, None)

    @property
    def active(self) -> int:
        """Requests of this scope running now."""
        with self._lock:
            return len(self._tasks)

    def cancel(self) -> None:
        """Cancel every request running in this scope, and refuse the next ones (from any thread)."""
        with self._lock:
            self.cancelled = True
            tasks, self._tasks = self._tasks, {}
        for task, loop in tasks.items():
            try:
                loop.call_soon_threadsafe(task.cancel)
            except RuntimeError:  # that loop is closed: nothing runs there any more
                pass


def current_scope() -> CancelScope | None:
    """The scope of the running context, if any."""
    return _current.get()


def open_scope() -> tuple[CancelScope, contextvars.Token[CancelScope | None]]:
    """Make a new scope current (until :func:`close_scope` with the token, in the same context)."""
    scope = CancelScope()
    return scope, _current.set(scope)


def close_scope(token: contextvars.Token[CancelScope | None]) -> None:
    _current.reset(token)


@contextmanager
def cancel_scope() -> Iterator[CancelScope]:
    """A new scope for the block; if the block raises (an interrupt too), its requests are cancelled."""
    scope, token = open_scope()
    try:
        yield scope
    except BaseException:
        scope.cancel()
        raise
    finally:
        close_scope(token)
