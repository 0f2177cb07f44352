"""Helpers for the format tests: test data, a fake fetch loop, pixel comparison."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from dezoomify_nb.dezoomers.base import Context, Dezoomer
from dezoomify_nb.errors import FetchError, NeedsData
from dezoomify_nb.model import Image, Level

DATA = Path(__file__).resolve().parent.parent / "data"
FAST = {"min_interval": 0, "retry_delay": 0.01}


def read(rel: str) -> bytes:
    return (DATA / rel).read_bytes()


def urls(level: Level) -> list[str]:
    return [level.tile_url(c, r) for c, r in level.tile_positions()]


def not_found(url: str) -> FetchError:
    return FetchError(url, "404 Not Found", status=404)


class Driver:
    """Runs a dezoomer like the real driver, answering requests from ``serve``; records them."""

    def __init__(self, serve: Callable[[str], bytes | FetchError]) -> None:
        self.serve = serve
        self.pages: dict[str, bytes | FetchError] = {}
        self.requests: list[str] = []
        self.rounds = 0

    def run(self, dezoomer: Dezoomer, url: str, max_rounds: int = 64) -> list[Image]:
        for _ in range(max_rounds):
            try:
                return dezoomer.images(Context(url, self.pages))
            except NeedsData as need:
                self.rounds += 1
                missing = [u for u in need.urls if u not in self.pages]
                assert missing, f"asked again for {need.urls}"
                for u in missing:
                    self.requests.append(u)
                    self.pages[u] = self.serve(u)
        raise AssertionError("too many rounds")


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
