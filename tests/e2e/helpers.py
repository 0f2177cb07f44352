import numpy as np
from PIL import Image

LOSSLESS_KINDS = ("dzi-png", "iiif2", "iiif3", "iiif2-notiles", "generic")
JPEG_KINDS = ("zoomify", "zoomify-even", "dzi-jpg", "generic-jpg")
ALL_KINDS = LOSSLESS_KINDS + JPEG_KINDS
TILE_MARKERS = ("TileGroup", "_files/", "/default.", "/color.", "tile_")


def is_tile(path: str) -> bool:
    return any(m in path for m in TILE_MARKERS)


def read(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def assert_same_pixels(got: np.ndarray, expected: np.ndarray, kind: str) -> None:
    assert got.shape == expected.shape, (got.shape, expected.shape)
    if kind in JPEG_KINDS:
        err = np.abs(got.astype(np.int16) - expected.astype(np.int16))
        assert err.mean() < 6, f"mean error {err.mean():.2f}"
        # a misplaced tile would give errors of ~100 over a whole tile, not JPEG noise
        assert np.percentile(err, 99.9) < 80
    else:
        np.testing.assert_array_equal(got, expected)
