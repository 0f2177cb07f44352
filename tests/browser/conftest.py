"""Debian's headless Chromium driven by Playwright (no browser download: ``executable_path``).

Skipped when ``/usr/bin/chromium`` (or ``$CHROMIUM_PATH``) or the ``playwright`` package is missing,
unless ``REQUIRE_BROWSER=1`` (then it fails, so a missing install cannot pass silently).
``make test`` installs Chromium (``make browser``).
"""

import os
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def _missing(why: str):
    if os.environ.get("REQUIRE_BROWSER") == "1":
        pytest.fail(why)
    pytest.skip(why)


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (pip install -e '.[test]')")
    if not Path(CHROMIUM).exists():
        _missing(f"{CHROMIUM} missing (make browser, or apt-get install -y chromium)")
    home = tmp_path_factory.mktemp("chromium-home")
    env = {**os.environ, "XDG_CONFIG_HOME": str(home / "config"), "XDG_CACHE_HOME": str(home / "cache")}
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, env=env)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 900, "height": 600})
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    try:
        yield pg
    finally:
        context.close()


@pytest.fixture
def errors(page):
    """Console errors and uncaught exceptions of the page (requests off the loopback refused: the CDN fonts of
    Lab and Voila; their own noise is left to each test's filter)."""
    seen: list[str] = []
    page.route(lambda url: not url.startswith("http://127.0.0.1"), lambda route: route.abort())
    page.on("pageerror", lambda e: seen.append(f"pageerror: {e} {e.stack}"))
    page.on("console", lambda m: seen.append(f"console: {m.text}") if m.type == "error" else None)
    return seen
