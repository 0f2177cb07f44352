"""IIIF servers as they are in the field: tile formats listed but not held, size limits enforced.

* A static tree whose info.json lists png (in ``formats`` and through its level-2 profile) but holds only
  jpg tiles downloads (jpg is asked for by default, as OpenSeadragon and dezoomify-rs do); asked for png
  (``--tile-format png``), it falls back to jpg once, saying so.
* A server holding both: jpg by default, png on request (exact pixels).
* A level-0 v3 server without tiles whose ``maxWidth`` is under the image's width answers 400 to any size
  past its limits or not listed: only ``max`` (the largest allowed) and the listed sizes are asked for.
"""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest
from PIL import Image

import dezoomify_nb as dz
from dezoomify_nb.cli import main
from dezoomify_nb.testing._http import Response
from dezoomify_nb.testing.iiif_request import parse_region, parse_size

from .helpers import assert_same_pixels, read

TRANSPORTS = ["aiohttp", "httpx"]
FAST = {"min_interval": 0, "retry_delay": 0.01, "retries": 0}
_REQ = re.compile(r"^(?P<region>[^/]+)/(?P<size>[^/]+)/0/default\.(?P<fmt>\w+)$")


def _encode(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG" if fmt == "png" else "JPEG", quality=95)
    return buf.getvalue()


def _route(source: np.ndarray, info: dict, *, held: tuple[str, ...], ok_size=None):
    """A route answering ``info.json`` and image requests in the ``held`` formats (404 for others);
    ``ok_size(w, h, spec)`` False answers 400 (a size past the server's limits)."""
    full = Image.fromarray(source)
    H, W = source.shape[:2]

    def handler(server, raw_path: str, headers) -> Response:
        rest = raw_path.split("/", 2)[2]
        if rest == "info.json":
            return Response(200, json.dumps({**info, "id": f"{server.base_url}/{raw_path.split('/')[1]}"}).encode(),
                            "application/json")
        m = _REQ.match(rest)
        if m is None:
            return Response(404, b"no such file")
        if m["fmt"] not in held:
            return Response(404, b"no such file")
        x, y, rw, rh = parse_region(m["region"], W, H)
        if m["size"] == "max" and ok_size is not None:
            sw, sh = ok_size.max_size
        else:
            sw, sh = parse_size(m["size"], rw, rh, 3, W, H)
        if ok_size is not None and not ok_size(sw, sh, m["size"]):
            return Response(400, b"size not allowed")
        img = full.crop((x, y, x + rw, y + rh))
        if (sw, sh) != (rw, rh):
            img = img.resize((sw, sh), Image.Resampling.BOX)
        return Response(200, _encode(img, m["fmt"]), "image/png" if m["fmt"] == "png" else "image/jpeg")

    return handler


V3 = {"@context": "http://iiif.io/api/image/3/context.json", "type": "ImageService3", "protocol": "http://iiif.io/api/image"}


def _tiled_info(W: int, H: int, profile) -> dict:
    return {**V3, "width": W, "height": H, "profile": profile,
            "tiles": [{"width": 256, "scaleFactors": [1, 2, 4]}]}


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_png_listed_but_only_jpg_held(server, source, tmp_path, caplog, transport):
    H, W = source.shape[:2]
    info = {**_tiled_info(W, H, "level2"), "extraFormats": ["png", "webp"]}  # level 2: png too, says the profile
    server.add_route("/jpgonly/", _route(source, info, held=("jpg",)))
    url = f"{server.base_url}/jpgonly/info.json"
    img = dz.open(url, transport=transport, **FAST)
    result = img.save(tmp_path / "a.png", progress=False)
    assert_same_pixels(read(result.path), source, "dzi-jpg")  # JPEG tolerance
    tiles = [p for p in server.requests if "/default." in p]
    assert tiles and all(p.endswith(".jpg") for p in tiles)

    server.reset_requests()  # png asked for: refused (404), jpg once, said (a warning: on stderr)
    out = tmp_path / "b.png"
    assert main(["-l", "--tile-format", "png", "--transport", transport, "--min-interval", "0", url, str(out)]) == 0
    assert "refused png tiles (HTTP 404" in caplog.text and "falling back to jpg" in caplog.text
    assert_same_pixels(read(out), source, "dzi-jpg")
    pngs = [p for p in server.requests if p.endswith(".png")]
    assert len(pngs) == 1  # the probe; every tile then in jpg


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_png_on_request_when_held(server, source, tmp_path, transport):
    H, W = source.shape[:2]
    info = {**_tiled_info(W, H, "level1"), "extraFormats": ["png"]}
    server.add_route("/both/", _route(source, info, held=("jpg", "png")))
    url = f"{server.base_url}/both/info.json"
    img = dz.open(url, transport=transport, **FAST)
    assert img.levels[0].tile_url(0, 0).endswith("/default.jpg")
    img = dz.open(url, transport=transport, tile_format="png", **FAST)
    result = img.save(tmp_path / "p.png", progress=False)
    np.testing.assert_array_equal(read(result.path), source)  # png tiles: exact
    assert {p.rsplit(".", 1)[-1] for p in server.requests if "/default." in p} == {"png"}
    with pytest.raises(dz.DezoomifyError) as err:
        dz.open(url, transport=transport, tile_format="jp2", **FAST)
    assert "jpg" in err.value.hint


class _Limits:
    """A v3 level-0 server's size rule: ``max`` (at the limit) and the listed sizes, nothing else."""

    def __init__(self, max_size: tuple[int, int], listed: set[tuple[int, int]]) -> None:
        self.max_size, self.listed, self.refused = max_size, listed, []

    def __call__(self, w: int, h: int, spec: str) -> bool:
        ok = spec == "max" or (w, h) in self.listed
        if not ok:
            self.refused.append(spec)
        return ok


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_level0_limits_only_allowed_sizes(server, source, tmp_path, transport):
    H, W = source.shape[:2]  # 1000 x 700
    info = {**V3, "width": W, "height": H, "profile": "level0", "maxWidth": 600, "preferredFormats": ["png"],
            "sizes": [{"width": 300, "height": 210}, {"width": 800, "height": 560}]}  # 800: past maxWidth
    limits = _Limits((600, 420), {(300, 210)})
    server.add_route("/limits/", _route(source, info, held=("png",), ok_size=limits))
    img = dz.open(f"{server.base_url}/limits/info.json", transport=transport, **FAST)
    assert [lv.size for lv in img.levels] == [(600, 420), (300, 210)]
    for k, size in enumerate([(600, 420), (300, 210)]):
        result = img.save(tmp_path / f"l{k}.png", level=k, progress=False)
        expected = np.asarray(Image.fromarray(source).resize(size, Image.Resampling.BOX))
        np.testing.assert_array_equal(read(result.path), expected)
    assert limits.refused == []
    assert sorted(p.split("/")[3] for p in server.requests if "/default." in p) == ["300,210", "max"]
