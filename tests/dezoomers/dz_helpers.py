"""Shared helpers for the dezoomer tests: test data, a fake fetch loop."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from dezoomify_nb.dezoomers.base import Context, Dezoomer
from dezoomify_nb.errors import FetchError, NeedsData
from dezoomify_nb.model import Image, Level

DATA = Path(__file__).resolve().parent.parent / "data"


def read(rel: str) -> bytes:
    return (DATA / rel).read_bytes()


def urls(level: Level) -> list[str]:
    return [level.tile_url(c, r) for c, r in level.tile_positions()]


class Driver:
    """Runs a dezoomer like the real driver, answering requests from a function; counts them."""

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


def not_found(url: str) -> FetchError:
    return FetchError(url, "404 Not Found", status=404)


def parse(dezoomer: Dezoomer, url: str, data: bytes) -> list[Image]:
    """Parse ``data`` served at ``url`` (exactly one page)."""
    return dezoomer.images(Context(url, {url: data}))
