"""Helpers for the format tests: test data, a fake fetch loop, pixel comparison."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from dezoomify_nb.errors import FetchError
from dezoomify_nb.testing.offline import Driver, not_found, urls  # noqa: F401 (re-exported)

DATA = Path(__file__).resolve().parent.parent / "data"
FAST = {"min_interval": 0, "retry_delay": 0.01}


def read(rel: str) -> bytes:
    return (DATA / rel).read_bytes()


def serve_dict(files: dict[str, bytes]) -> Callable[[str], bytes | FetchError]:
    return lambda u: files[u] if u in files else not_found(u)


def load(path) -> np.ndarray:
    with PILImage.open(path) as im:
        return np.asarray(im.convert("RGB"))


def assert_jpeg_close(got: np.ndarray, expected: np.ndarray) -> None:
    assert got.shape == expected.shape, (got.shape, expected.shape)
    err = np.abs(got.astype(np.int16) - expected.astype(np.int16))
    assert err.mean() < 6, f"mean error {err.mean():.2f}"
    assert np.percentile(err, 99.9) < 80  # a misplaced tile gives ~100 over a whole tile
