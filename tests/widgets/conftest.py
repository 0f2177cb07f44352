"""Fixtures of the widget tests: the sample gallery; where screenshots go.

The browser tests of the widgets live in ``tests/browser/`` (one session-wide Playwright/Chromium; the
Jupyter frontends they run in: ``tests/browser/jupyter_apps.py``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dezoomify_nb.testing.gallery import SampleGallery

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
#: screenshots are kept here (``$SCREENSHOT_DIR`` to change it); file names unique per test
SHOTS = Path(os.environ.get("SCREENSHOT_DIR") or ROOT / "test-artifacts")


@pytest.fixture(scope="session")
def gallery():
    """Three 1200×900 pages (PNG tiles, so downloads compare exactly) and their manifest."""
    with SampleGallery(3, width=1200, height=900, lossless=True) as g:
        yield g
