"""Shared helpers for the dezoomer tests: test data, a fake fetch loop."""

from __future__ import annotations

from pathlib import Path

from dezoomify_nb.dezoomers.base import Context, Dezoomer
from dezoomify_nb.model import Image
from dezoomify_nb.testing.offline import Driver, not_found, urls  # noqa: F401 (re-exported)

DATA = Path(__file__).resolve().parent.parent / "data"


def read(rel: str) -> bytes:
    return (DATA / rel).read_bytes()


def parse(dezoomer: Dezoomer, url: str, data: bytes) -> list[Image]:
    """Parse ``data`` served at ``url`` (exactly one page)."""
    return dezoomer.images(Context(url, {url: data}))
