"""A ZIF-layout file made by libvips — ``vips tiffsave --tile --pyramid --bigtiff --compression jpeg``: a BigTIFF
whose top-level tiled JPEG directories are the levels, largest first, as Zoomify's ZIF is (libvips has no
``.zif`` writer of its own) — served behind a script URL (``…/DisplayImage?id=42``, no ``.zif``) by a server
that honours ``Range``: recognised by its bytes, levels as libvips wrote them, pixels against the source,
and only the byte ranges needed (the header and arrays, then one range per tile under a lazy window)."""

from __future__ import annotations

import io
import math
import re
from collections.abc import Mapping

import numpy as np
import pytest
from PIL import Image

import dezoomify_nb as dz
from dezoomify_nb.dezoomers import zif
from dezoomify_nb.testing._http import Response

from .conftest import require, run
from .test_vips_producers import H, W, assert_pixels, read_png, reduced, source_image

pytestmark = pytest.mark.conformance

TILE = 256
FAST = {"min_interval": 0, "retries": 0, "timeout": 20, "parallelism": 4}


@pytest.fixture(scope="module")
def vips_zif(tmp_path_factory):
    require("vips")
    root = tmp_path_factory.mktemp("vips-zif")
    src = source_image()
    Image.fromarray(src).save(root / "source.png")
    run("vips", "tiffsave", root / "source.png", root / "image.tif", "--tile", "--pyramid", "--bigtiff",
        "--compression", "jpeg", "--Q", "90", "--tile-width", str(TILE), "--tile-height", str(TILE))
    data = (root / "image.tif").read_bytes()
    assert data[:4] == b"II+\0"  # BigTIFF, as ZIF
    run("vips", "copy", root / "source.png", f"{root / 'floor.jpg'}[Q=90]")
    floor = float(np.abs(read_png(root / "floor.jpg").astype(np.int16) - src.astype(np.int16)).mean())
    return src, data, floor


def _serve(server, prefix: str, data: bytes) -> str:
    def handler(_server, raw_path: str, headers: Mapping[str, str]) -> Response:
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", headers.get("Range") or "")
        if m is None:
            return Response(200, data, "image/tiff")
        start, end = int(m.group(1)), min(int(m.group(2) or len(data) - 1), len(data) - 1)
        if start >= len(data):
            return Response(416, b"", "image/tiff", {"Content-Range": f"bytes */{len(data)}"})
        return Response(206, data[start : end + 1], "image/tiff", {"Content-Range": f"bytes {start}-{end}/{len(data)}"})

    server.add_route(prefix, handler)
    return f"{server.base_url}{prefix}?id=42"


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
def test_libvips_bigtiff_pyramid_behind_a_script(server, vips_zif, tmp_path, transport):
    src, data, floor = vips_zif
    url = _serve(server, f"/vips-{transport}/DisplayImage", data)
    server.reset_requests()
    image = dz.open(url, transport=transport, **FAST)
    assert image.dezoomer == "zif" and image.title == "DisplayImage"
    # libvips' levels: floor halving down to one tile
    sizes = [(W >> k, H >> k) for k in range(4)]
    assert [lv.size for lv in image.levels] == sizes
    # the same levels as tifffile reads them (an independent reader of the same bytes)
    import tifffile

    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        assert [(p.imagewidth, p.imagelength) for p in tif.pages] == sizes
        ifds_past_head = sum(p.offset >= zif.HEAD_BYTES for p in tif.pages)
    # never the whole file: the header, one read per directory past it (libvips writes each after its
    # level's tiles), the offset/count arrays if not held by then (libvips writes them next to the
    # directory: held) in one coalesced range — a few KB of the 1.3 MB
    spans = [tuple(map(int, h["range"].removeprefix("bytes=").split("-"))) for h in server.headers_seen]
    assert len(spans) == server.count("/DisplayImage")
    assert 1 + ifds_past_head <= len(spans) <= 2 + ifds_past_head, spans
    assert sum(b - a + 1 for a, b in spans) < 0.05 * len(data), spans

    # a lazy window: one range per tile under it, nothing else
    server.reset_requests()
    x0, y0, x1, y1 = 300, 200, 1100, 700
    window = image.to_dask(0)[y0:y1, x0:x1].compute()
    assert_pixels(window, src[y0:y1, x0:x1], floor)
    under = (math.ceil(x1 / TILE) - x0 // TILE) * (math.ceil(y1 / TILE) - y0 // TILE)
    assert server.count("/DisplayImage") == under == 12

    # a smaller level, saved
    result = image.save(tmp_path / "small.png", level=2, progress=False)
    assert result.ok
    small = read_png(tmp_path / "small.png")
    assert np.abs(small.astype(np.int16) - reduced(src, 2)[: H >> 2, : W >> 2].astype(np.int16)).mean() < floor
    assert zif.HEAD_BYTES < len(data)
