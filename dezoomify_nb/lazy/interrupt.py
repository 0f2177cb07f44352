"""A dask computation that fails or is interrupted cancels the tile requests it still has running.

Interrupting the kernel (the ■ button, a ``KeyboardInterrupt``) during ``img.to_dask(...).compute()``
stops only the waiting main thread: dask's worker threads would go on reading their chunks — each many
tiles — and the I/O loops would go on fetching them. :func:`install` registers one dask callback (global,
for the local schedulers: threads and synchronous) that opens a :mod:`cancel scope
<dezoomify_nb.net.cancel>` when a computation starts; dask's thread pool copies the scope into each task,
the chunk reads carry it to the I/O loop, and every tile request records itself there. When the
computation ends with an error (the interrupt included), the scope is cancelled: requests in flight are
abandoned, retries and pauses end, and a worker thread that reads another chunk gets
:class:`~dezoomify_nb.errors.DownloadCancelled` before anything is sent. A computation that succeeds only
closes its scope. ``dask.distributed`` clients do not use these callbacks (their workers are separate).
"""

from __future__ import annotations

import threading
from typing import Any

from dask.callbacks import Callback

from ..net.cancel import close_scope, open_scope


class CancelOnError(Callback):
    """The dask callback of :func:`install` (one scope per running computation, per thread)."""

    def __init__(self) -> None:
        super().__init__()
        self._local = threading.local()

    def _start(self, dsk: Any) -> None:
        stack = self._local.__dict__.setdefault("stack", [])
        stack.append(open_scope())

    def _finish(self, dsk: Any, state: Any, errored: bool) -> None:
        stack = getattr(self._local, "stack", None)
        if not stack:
            return
        scope, token = stack.pop()
        try:
            close_scope(token)
        except ValueError:  # not the context it was opened in (a scheduler running callbacks elsewhere)
            pass
        if errored:
            scope.cancel()


_lock = threading.Lock()
_callback: CancelOnError | None = None


def install() -> None:
    """Register :class:`CancelOnError` with dask, once per process (what ``to_dask()`` does)."""
    global _callback
    with _lock:
        if _callback is None:
            _callback = CancelOnError()
        if _callback._callback not in Callback.active:  # dask keeps the callbacks' tuples of methods
            _callback.register()
