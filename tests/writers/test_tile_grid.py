"""writers.pyramid.tile_grid: strips of any heights cut into contiguous tiles, pixel for pixel."""

from __future__ import annotations

import numpy as np
import pytest

from dezoomify_nb.writers.pyramid import tile_grid


def _strips(img: np.ndarray, heights: list[int]):
    y = 0
    while y < img.shape[0]:
        for h in heights:
            if y >= img.shape[0]:
                break
            yield img[y : y + h]
            y += h


@pytest.mark.parametrize("width, height, tile", [(1000, 777, 256), (512, 512, 256), (100, 60, 256), (300, 1, 64)])
@pytest.mark.parametrize("heights", [[256], [1, 255, 3], [700], [37, 0, 5]])
@pytest.mark.parametrize("pad", [True, False])
def test_tiles_equal_numpy_slices(width, height, tile, heights, pad):
    rng = np.random.default_rng(width + height)
    img = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    tiles = list(tile_grid(_strips(img, heights), width, tile, pad=pad))
    cols, rows = -(-width // tile), -(-height // tile)
    assert len(tiles) == cols * rows
    for i, t in enumerate(tiles):
        r, c = divmod(i, cols)
        want = img[r * tile : (r + 1) * tile, c * tile : (c + 1) * tile]
        assert t.flags.c_contiguous
        if pad:
            assert t.shape == (tile, tile, 3)
            np.testing.assert_array_equal(t[: want.shape[0], : want.shape[1]], want)
            assert not t[want.shape[0] :].any() and not t[:, want.shape[1] :].any()
        else:
            np.testing.assert_array_equal(t, want)
