"""A small offline "museum": several distinct sample images and a IIIF manifest listing them.

Used by the notebooks (which start it themselves, so they run without internet) and by the widget and
browser tests. Each page is a :class:`~dezoomify_nb.testing.TileServer` on loopback serving its own image
in every tiled format; the first server also serves ``/gallery/manifest.json`` (IIIF Presentation 2, one
canvas per page, titled ``"Sample gallery - Page N"``, image service = that page's ``iiif2`` URL).

>>> from dezoomify_nb.testing.gallery import SampleGallery
>>> with SampleGallery(pages=3) as gallery:            # doctest: +SKIP
...     book = dz.open(gallery.manifest_url)           # an ImageCollection of 3 images
...     img = dz.open(gallery.url(0, "zoomify"))       # page 1 as Zoomify
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import numpy as np

from .images import make_test_image
from .tileserver import TileServer

__all__ = ["SampleGallery", "page_image"]


#: the tint of each page (cycled), so that pages differ at a glance: reddish, greenish, bluish
TINTS = ((210, 70, 40), (40, 170, 70), (50, 80, 215))


def page_image(index: int, width: int, height: int) -> np.ndarray:
    """Page ``index``'s pixels: the test image of seed ``index`` blended with the page's tint
    (:data:`TINTS`), so that the previews of two pages have clearly different colours."""
    img = make_test_image(width, height, seed=index).astype(np.float32)
    tint = np.array(TINTS[index % len(TINTS)], np.float32)
    return (img * 0.5 + tint * 0.5).round().astype(np.uint8)


class SampleGallery:
    """``pages`` sample images served on 127.0.0.1, and a manifest of them. Start with ``with`` or
    :meth:`start`; :meth:`stop` ends every server.

    ``latency`` (seconds per tile request) makes downloads slow enough to watch (or cancel);
    ``lossless`` serves PNG bytes everywhere so downloads equal :meth:`image` exactly.
    """

    def __init__(self, pages: int = 3, *, width: int = 2000, height: int = 1500, tile_size: int = 256,
                 latency: float = 0.0, lossless: bool = False) -> None:
        if pages < 1:
            raise ValueError("a gallery needs at least one page")
        self.width, self.height = width, height
        self.images = [page_image(i, width, height) for i in range(pages)]
        self.servers = [TileServer(im, tile_size=tile_size, latency=latency, lossless=lossless)
                        for im in self.images]
        self.manifest_url = ""

    def __len__(self) -> int:
        return len(self.images)

    def start(self) -> SampleGallery:
        for server in self.servers:
            server.start()
        base = self.servers[0].serve_files("/gallery/", {"manifest.json": json.dumps(self.manifest())})
        self.manifest_url = f"{base}/manifest.json"
        return self

    def stop(self) -> None:
        for server in self.servers:
            server.stop()

    def __enter__(self) -> SampleGallery:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def url(self, page: int = 0, kind: str = "iiif2") -> str:
        """The metadata URL of page ``page`` (0-based) in tile format ``kind`` (see
        :data:`~dezoomify_nb.testing.KINDS`)."""
        return self.servers[page].url(kind)

    def image(self, page: int = 0) -> np.ndarray:
        """The full-resolution pixels of page ``page``."""
        return self.images[page]

    def level_image(self, page: int, kind: str, level: int) -> np.ndarray:
        """Page ``page``'s level ``level`` exactly as served in ``kind`` (0 = full resolution)."""
        return self.servers[page].level_image(kind, level)

    def long_manifest_url(self, pages: int) -> str:
        """A manifest of ``pages`` canvases (``"Page N"``) cycling through this gallery's images, each with
        its own image service ``/gallery/long/N/info.json`` (a copy of its image's ``info.json``, whose
        tiles are that image's): requests under ``/gallery/long/`` count the pages whose metadata was read."""
        server = self.servers[0]
        base = f"{server.base_url}/gallery"
        docs: dict[str, str] = {}
        infos = [urllib.request.urlopen(s.url("iiif2"), timeout=10).read().decode() for s in self.servers]
        canvases = []
        for i in range(pages):
            docs[f"{i}/info.json"] = infos[i % len(infos)]
            service = f"{base}/long/{i}"
            canvases.append({
                "@id": f"{base}/long-canvas/{i}", "@type": "sc:Canvas", "label": f"Page {i + 1}",
                "width": self.width, "height": self.height,
                "images": [{"@type": "oa:Annotation", "motivation": "sc:painting", "on": f"{base}/long-canvas/{i}",
                            "resource": {"@id": f"{service}/full/full/0/default.jpg", "@type": "dctypes:Image",
                                         "service": {"@context": "http://iiif.io/api/image/2/context.json",
                                                     "@id": service,
                                                     "profile": "http://iiif.io/api/image/2/level2.json"}}}],
            })
        server.serve_files("/gallery/long/", docs, "application/json")
        manifest = {"@context": "http://iiif.io/api/presentation/2/context.json",
                    "@id": f"{base}/long-{pages}.json", "@type": "sc:Manifest", "label": f"{pages} pages",
                    "sequences": [{"@type": "sc:Sequence", "canvases": canvases}]}
        return server.serve_files("/gallery/long-manifest/", {f"{pages}.json": json.dumps(manifest)}) + f"/{pages}.json"

    def manifest(self) -> dict[str, Any]:
        base = self.servers[0].base_url + "/gallery"
        canvases = []
        for i, server in enumerate(self.servers):
            service = server.url("iiif2").removesuffix("/info.json")
            canvases.append({
                "@id": f"{base}/canvas/{i}", "@type": "sc:Canvas", "label": f"Page {i + 1}",
                "width": self.width, "height": self.height,
                "images": [{"@type": "oa:Annotation", "motivation": "sc:painting", "on": f"{base}/canvas/{i}",
                            "resource": {"@id": f"{service}/full/full/0/default.jpg", "@type": "dctypes:Image",
                                         "service": {"@context": "http://iiif.io/api/image/2/context.json",
                                                     "@id": service,
                                                     "profile": "http://iiif.io/api/image/2/level2.json"}}}],
            })
        return {
            "@context": "http://iiif.io/api/presentation/2/context.json",
            "@id": f"{base}/manifest.json", "@type": "sc:Manifest", "label": "Sample gallery",
            "sequences": [{"@type": "sc:Sequence", "canvases": canvases}],
        }
