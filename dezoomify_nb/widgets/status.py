"""The picker's status card (:class:`StatusCard`), which also hands a downloaded file to the browser.

After a download the "done" card names the file twice over: a link relative to the kernel's folder (as
``IPython.display.FileLink``; in JupyterLab and Notebook 7 a click opens the file there), and a
"Save to this computer" button that sends the file's bytes from the kernel to the page, where they become
a normal browser download.

Why the button, and not a link into the server: Voila serves only the files its ``file_allowlist``
lets through (by default ``.png .jpg .gif .svg`` under its root folder, at ``/voila/files/…``), and
the kernel cannot know that list, the root folder or the base URL; a TIFF, a ``.jpeg``, an OME-Zarr or a
file saved outside the root would get a dead link, and widening the allow-list would make Voila serve
other files to anyone who can reach it. So the kernel serves the one file it just wrote, by itself:

- the browser can name no path: it asks for the file *offered* (a token that changes with every
  download) and gets that file or nothing; the file must still be the one written (same size, time of
  change and inode), else the browser is told it changed;
- the browser pulls it in chunks of :data:`CHUNK_BYTES` (a few in flight), so neither the kernel nor
  the server holds more than a few chunks at a time, and the page assembles them into a ``Blob``;
- files over :attr:`StatusCard.max_bytes` (default :data:`MAX_BYTES`) and folders (OME-Zarr, IIIF
  tiles) are not offered: the card says why and where they are on the server.

In Voila (its page's ``<body data-voila>``), where the relative link cannot work, the file name itself
starts the same download instead of pointing at nothing; in JupyterLab and Notebook 7 it keeps its link.
"""

from __future__ import annotations

import functools
import logging
import mimetypes
import os
import threading
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import anywidget
import traitlets

log = logging.getLogger("dezoomify_nb")

#: the largest file the page is sent (bigger ones stay on the server; the card says where)
MAX_BYTES = 500_000_000
#: bytes per message from the kernel to the page
CHUNK_BYTES = 1024 * 1024


@functools.cache
def _source(name: str) -> str:
    return resources.files(__package__).joinpath(f"static/{name}").read_text("utf-8")


@dataclass(frozen=True)
class Offer:
    """What the card offers the browser: ``kind`` is ``"file"`` (sent on request), ``"too-big"``,
    ``"folder"`` or ``"missing"`` (not sent)."""

    kind: str
    path: Path
    size: int
    token: str = ""
    stamp: tuple[int, int, int] = (0, 0, 0)  # size, mtime_ns, inode when offered


def _stamp(st: os.stat_result) -> tuple[int, int, int]:
    return (st.st_size, st.st_mtime_ns, st.st_ino)


class StatusCard(anywidget.AnyWidget):
    """The status area's HTML (:attr:`value`, as an ``ipywidgets.HTML``), and the file it offers."""

    _esm = _source("status.js")

    #: the card's HTML (made by :mod:`~dezoomify_nb.widgets.cards`)
    value = traitlets.Unicode("").tag(sync=True)
    #: the token of the file offered, "" when none (the page asks for it by this token)
    offered = traitlets.Unicode("").tag(sync=True)
    #: the file name the browser saves under
    offered_name = traitlets.Unicode("").tag(sync=True)
    #: files larger than this are not sent to the page
    max_bytes = traitlets.Int(MAX_BYTES)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._offer_lock = threading.Lock()
        self._offer: Offer | None = None
        #: files sent to the page: (path, bytes), in order (tests, logs)
        self.sent: list[tuple[Path, int]] = []
        self.on_msg(self._on_msg)

    def offer(self, path: Path | None) -> Offer | None:
        """Offer ``path`` (the file just written) to the page, or nothing (None); what is offered."""
        offer: Offer | None = None
        if path is not None:
            try:
                st = path.stat()
            except OSError:
                offer = Offer("missing", path, 0)
            else:
                if path.is_dir():
                    offer = Offer("folder", path, 0)
                elif st.st_size > self.max_bytes:
                    offer = Offer("too-big", path, st.st_size)
                else:
                    offer = Offer("file", path, st.st_size, uuid.uuid4().hex, _stamp(st))
        with self._offer_lock:
            self._offer = offer
        with self.hold_sync():
            self.offered = offer.token if offer is not None else ""
            self.offered_name = offer.path.name if offer is not None and offer.token else ""
        return offer

    # --- the page's requests ---------------------------------------------------------------------------
    def _on_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict) or content.get("type") not in ("file-begin", "file-chunk"):
            return
        token, index = str(content.get("token", "")), content.get("index", 0)
        try:
            reply, data = self._answer(content["type"], token, index if isinstance(index, int) else -1)
        except OSError as exc:
            log.debug("file not sent", exc_info=exc)
            reply, data = {"error": f"The file could not be read on the server: {exc.strerror or exc}."}, None
        reply = {"type": content["type"], "token": token, "index": index, **reply}
        self.send(reply, [data] if data is not None else None)

    def _answer(self, kind: str, token: str, index: int) -> tuple[dict[str, Any], bytes | None]:
        with self._offer_lock:
            offer = self._offer
        if offer is None or not offer.token or token != offer.token:
            return {"error": "This file is no longer offered: download it again."}, None
        st = offer.path.stat()
        if _stamp(st) != offer.stamp or not offer.path.is_file():
            return {"error": f"{offer.path.name} changed on the server since it was saved: download it again."}, None
        if kind == "file-begin":
            mime = mimetypes.guess_type(offer.path.name)[0] or "application/octet-stream"
            chunks = max(1, -(-offer.size // CHUNK_BYTES))
            return {"size": offer.size, "chunks": chunks, "name": offer.path.name, "mime": mime}, None
        if not 0 <= index * CHUNK_BYTES < max(offer.size, 1):
            return {"error": "No such part of the file."}, None
        with open(offer.path, "rb") as f:
            f.seek(index * CHUNK_BYTES)
            data = f.read(CHUNK_BYTES)
        if index * CHUNK_BYTES + len(data) >= offer.size:
            self.sent.append((offer.path, offer.size))
        return {"bytes": len(data)}, data
