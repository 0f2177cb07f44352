"""An XLimage server on the loopback :class:`TileServer`: ``?cmd=info`` XML and ``?cmd=tile`` tiles.

Two URL forms, like the real sites: ``<prefix>/<name>.imgi?cmd=info`` (Centrica's servers) and kbr.be's
``<prefix>/multi/<id>Viewer/xml.php?/multi/<id>/<NNN>.imgi?cmd=info`` (one image per page ``NNN``).
``cmd=tile&x=…&y=…&z=1`` answers tile ``(x, y)`` of the full resolution, cropped at the edges; any other
``z`` is refused (400), so a client asking for another zoom is caught.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from urllib.parse import unquote

import numpy as np

from ._sites import Pyramid
from .tileserver import Response, TileServer

__all__ = ["XLimageSite"]

_CMD_RE = re.compile(r"\?cmd=(info|tile)(.*)$")


class XLimageSite:
    """``pages`` images; page ``i`` (1-based) is ``<i:03>.imgi`` in the kbr.be form."""

    def __init__(self, pages: Sequence[np.ndarray], *, tile_size: int = 256, lossless: bool = True,
                 name: str = "A1456.imgf", kbr_id: str = "15-58-106") -> None:
        self.pyramids = [Pyramid(a, lossless=lossless) for a in pages]
        self.tile_size, self.name, self.kbr_id = tile_size, name, kbr_id
        self.prefix = "/xl"
        self.base = ""

    def info_url(self) -> str:
        return f"{self.base}/{self.name}?cmd=info"

    def kbr_viewer_url(self, page: int | None = None) -> str:
        return f"{self.base}/multi/{self.kbr_id}Viewer" + (f"#page={page}" if page is not None else "")

    def level_image(self, page: int = 1) -> np.ndarray:
        p = self.pyramids[page - 1]
        return p.level_array((p.width, p.height))

    def install(self, server: TileServer, prefix: str = "/xl") -> str:
        self.prefix = prefix.rstrip("/")
        self.base = server.base_url + self.prefix
        server.add_route(self.prefix + "/", self._handle)
        return self.info_url()

    def _image(self, path: str) -> Pyramid | None:
        if path == f"/{self.name}" and self.pyramids:
            return self.pyramids[0]
        m = re.fullmatch(rf"/multi/{re.escape(self.kbr_id)}Viewer/xml\.php\?/multi/{re.escape(self.kbr_id)}/(\d{{3}})\.imgi",
                         path)
        if m and 1 <= int(m.group(1)) <= len(self.pyramids):
            return self.pyramids[int(m.group(1)) - 1]
        return None

    def _handle(self, server: TileServer, raw_path: str, headers: Mapping[str, str]) -> Response:
        raw = unquote(raw_path)[len(self.prefix):]
        m = _CMD_RE.search(raw)
        if m is None:
            return Response(400, b"missing cmd\n")
        pyramid = self._image(raw[: m.start()])
        if pyramid is None:
            return Response(404, b"no such image\n")
        w, h, ts = pyramid.width, pyramid.height, self.tile_size
        if m.group(1) == "info":
            body = (f'<?xml version="1.0"?>\n<image><width>{w}</width><height>{h}</height><tileside>{ts}</tileside>'
                    "<levels>5</levels></image>\n")
            return Response(200, body.encode(), "text/xml")
        args = dict(re.findall(r"&(\w+)=(\d+)", m.group(2)))
        if args.get("z") != "1" or "x" not in args or "y" not in args:
            return Response(400, b"unsupported tile request\n")
        x, y = int(args["x"]), int(args["y"])
        if x * ts >= w or y * ts >= h:
            return Response(404, b"no such tile\n")
        box = (x * ts, y * ts, min((x + 1) * ts, w), min((y + 1) * ts, h))
        return Response(200, pyramid.tile((w, h), box), pyramid.content_type)
