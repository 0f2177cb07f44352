"""Check a benchmark output against the source image (in bands of 256 rows: bounded temporaries).

The tiles are JPEG (quality 90) of ``make_test_image(size, size)``: an output passes when its mean absolute
error is at most 4.5 and its worst 256×256 block's at most 4.8 (about 3.8 and 4.0 for these tiles; a tile
shifted by one pixel gives 5.3 or more). A IIIF tree is checked by its ``info.json`` and tile count.
"""

from __future__ import annotations

import hashlib
import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

MAE_MAX = 4.5
BLOCK_MAE_MAX = 4.8
BAND = 256


@lru_cache(maxsize=1)
def reference(size: int) -> np.ndarray:
    from dezoomify_nb.testing import make_test_image

    return make_test_image(size, size)


def read(path: Path) -> Any:
    """The output as an ``(H, W, 3)`` array (or an array-like read band by band)."""
    name = path.name
    if name.endswith(".npy"):
        return np.load(path, mmap_mode="r")
    if name.endswith(".ome.zarr"):
        import zarr

        arr = zarr.open_group(str(path), mode="r")["0"]  # (c, y, x)
        return _Transposed(arr)
    if name.endswith(".tif"):
        import tifffile

        return tifffile.imread(path, key=0)
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


class _Transposed:
    def __init__(self, arr: Any) -> None:
        self.arr = arr
        self.shape = (arr.shape[1], arr.shape[2], arr.shape[0])

    def __getitem__(self, rows: slice) -> np.ndarray:
        return np.moveaxis(np.asarray(self.arr[:, rows, :]), 0, 2)


def verify_iiif(path: Path, size: int) -> dict[str, Any]:
    info = json.loads((path / "info.json").read_text())
    n = sum(1 for _ in path.rglob("*.jpg"))
    expected = sum(math.ceil(size / 2**k / 256) ** 2 for k in range(int(math.log2(size / 256)) + 1))
    ok = info.get("width") == size and info.get("height") == size and n >= expected
    return {"ok": ok, "exact": False, "mae": 0.0, "worst_block_mae": 0.0, "sha256": "",
            "why": "" if ok else f"info.json {info.get('width')}x{info.get('height')}, {n} tiles (want {expected})"}


def verify_open(path: Path, size: int) -> dict[str, Any]:
    """``ours-open-offline``: both opens (online, then offline from the cache) found the full image."""
    runs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    want = math.ceil(size / 256) ** 2
    ok = len(runs) == 2 and all(r.get("tiles") == want for r in runs)
    return {"ok": ok, "exact": True, "mae": 0.0, "worst_block_mae": 0.0, "sha256": "",
            "why": "" if ok else f"opens saw {[r.get('tiles') for r in runs]} tiles (want {want})"}


def verify(path: Path, size: int) -> dict[str, Any]:
    if path.name.endswith(".iiif"):
        return verify_iiif(path, size)
    if path.name.endswith(".txt"):
        return verify_open(path, size)
    ref = reference(size)
    arr = read(path)
    if tuple(arr.shape) != ref.shape:
        return {"ok": False, "why": f"shape {arr.shape} != {ref.shape}", "exact": False, "mae": 0.0, "sha256": ""}
    digest = hashlib.sha256()
    total, worst = 0.0, 0.0
    for y in range(0, size, BAND):
        a = np.ascontiguousarray(arr[y : y + BAND])
        digest.update(a.tobytes())
        d = np.abs(a.astype(np.int16) - ref[y : y + BAND].astype(np.int16))
        total += float(d.sum(dtype=np.int64))
        w = d.shape[1] // BAND * BAND
        if w:
            worst = max(worst, float(d[:, :w].reshape(d.shape[0], w // BAND, BAND, -1).mean(axis=(0, 2, 3)).max()))
    mae = total / ref.size
    ok = mae <= MAE_MAX and worst <= BLOCK_MAE_MAX
    return {"ok": ok, "exact": False, "mae": round(mae, 3), "worst_block_mae": round(worst, 3),
            "sha256": digest.hexdigest()[:16],
            "why": "" if ok else f"mean error {mae:.2f} / worst block {worst:.2f} too large"}
