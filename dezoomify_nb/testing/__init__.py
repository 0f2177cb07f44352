"""Test helpers: a loopback tile server and deterministic synthetic images.

>>> from dezoomify_nb.testing import TileServer, make_test_image
>>> with TileServer(make_test_image(1000, 700)) as server:   # doctest: +SKIP
...     server.url("iiif3")
'http://127.0.0.1:40123/iiif3/info.json'

Run ``python -m dezoomify_nb.testing serve --help`` for a standalone server.
"""

from .images import make_test_image
from .tileserver import JPEG_QUALITY, KINDS, LEVEL_FILTER, PNG_COMPRESS_LEVEL, Response, TileServer

__all__ = ["JPEG_QUALITY", "KINDS", "LEVEL_FILTER", "PNG_COMPRESS_LEVEL", "Response", "TileServer", "make_test_image"]
