"""Shared checks for the pyramid writers' round-trip tests."""

from __future__ import annotations

import numpy as np
from PIL import Image

JPEG_KINDS = ("zoomify", "zoomify-even", "dzi-jpg", "generic-jpg")


def expected_level(source: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The source resized with a box filter to ``size`` (w, h): what any sane level of that size shows."""
    im = Image.fromarray(source)
    return np.asarray(im.resize(size, Image.Resampling.BOX) if im.size != size else im)


def assert_close(got: np.ndarray, want: np.ndarray, *, exact: bool, mean: float = 6.0) -> None:
    assert got.shape == want.shape, (got.shape, want.shape)
    if exact:
        np.testing.assert_array_equal(got, want)
        return
    err = np.abs(got.astype(np.int16) - want.astype(np.int16))
    assert err.mean() < mean, f"mean error {err.mean():.2f}"
    # a misplaced tile or a black area would give errors of ~100 over a whole tile, not rounding noise
    assert np.percentile(err, 99.5) < 80, np.percentile(err, 99.5)
