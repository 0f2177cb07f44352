"""Helpers for the page tests: the captured-style pages of ``tests/data/page`` and a fake fetch loop."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image as PILImage

from dezoomify_nb.testing import TileServer
from dezoomify_nb.testing.offline import Driver, not_found, urls  # noqa: F401 (re-exported)

DATA = Path(__file__).resolve().parent.parent / "data" / "page"
#: the host written in the captured pages, replaced by the loopback server's
HOST = "museum.test"
SITE = f"http://{HOST}/site/"
FAST = ["-i", "0ms", "--retry-delay", "10ms"]


def read(name: str) -> bytes:
    return (DATA / name).read_bytes()


def captured(data: bytes, base_url: str) -> bytes:
    """A captured page with ``museum.test`` pointing at ``base_url`` (also JS-escaped and percent-encoded)."""
    host = base_url.split("://", 1)[1]
    text = data.decode("utf-8")
    for scheme in ("https", "http"):
        text = (text.replace(f"{scheme}://{HOST}", f"http://{host}")
                .replace(f"{scheme}:\\/\\/{HOST}", f"http:\\/\\/{host}")
                .replace(f"{scheme}%3A%2F%2F{HOST}", "http%3A%2F%2F" + host.replace(":", "%3A")))
    return text.encode("utf-8")


def preview_png(server: TileServer) -> bytes:
    """The og:image of ``og_image.html``: level 1 of dzi-png as a PNG."""
    buf = io.BytesIO()
    PILImage.fromarray(server.level_image("dzi-png", 1)).save(buf, format="PNG")
    return buf.getvalue()


def serve_site(server: TileServer) -> str:
    """Serve every captured page under ``/site/`` (``museum.test`` → the server); returns that URL."""
    files = {str(p.relative_to(DATA)): captured(p.read_bytes(), server.base_url)
             for p in DATA.rglob("*") if p.is_file()}
    files["viewer/embed.html?id=1872&lang=en"] = files["viewer/embed.html"]  # the iframe's URL has a query
    files["media/still_life_preview.png"] = preview_png(server)
    return server.serve_files("/site/", files) + "/"


