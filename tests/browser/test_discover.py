"""Browser mode: pages whose viewer reveals its image only when its JavaScript runs (testing/viewers.py),
loaded by the product's own headless Chromium (Debian's), each image downloaded and compared with the
source pixels; the static page scan's "try --browser"; ``--browser auto``; the browser always closed (no
process, no profile left), also on a timeout and on Ctrl-C."""

from __future__ import annotations

import html
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from PIL import Image as PILImage

import dezoomify_nb as dz
from dezoomify_nb.browser import find_chromium, unavailable
from dezoomify_nb.cli import main
from dezoomify_nb.testing import TileServer, make_test_image
from dezoomify_nb.testing.viewers import install_viewers

from .conftest import CHROMIUM, _missing

FAST = {"min_interval": 0, "retry_delay": 0.01}
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def site():
    if unavailable(CHROMIUM) is not None:
        _missing(f"the browser mode cannot run: {unavailable(CHROMIUM)} (make browser)")
    with TileServer(make_test_image(700, 500, seed=5), lossless=True) as s:
        yield s, install_viewers(s)


@pytest.fixture
def own_tmp(tmp_path, monkeypatch):
    """The browser's temporary profile goes under ``tmp_path``: afterwards, no process may still use it."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    yield tmp_path
    assert not _browsers(tmp_path), "a browser process outlived its call"
    assert not list(tmp_path.glob("dezoomify-nb-browser-*")), "the browser's profile was left behind"


def _browsers(folder: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(f"{folder}/dezoomify-nb-browser-" in part for part in proc.info["cmdline"] or ()):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def load(path) -> np.ndarray:
    with PILImage.open(path) as im:
        return np.asarray(im.convert("RGB"))


@pytest.mark.parametrize("name", ["fetch", "obfuscated", "click", "cookie", "referer", "frame", "tiles"])
def test_viewer_page_gives_its_image(site, own_tmp, name):
    server, pages = site
    url, expected = pages[name]
    with pytest.raises(dz.NoDezoomerFound):  # the page alone tells nothing: the browser is needed
        dz.open(url, **FAST)
    server.reset_requests()
    img = dz.open(url, browser=True, browser_path=CHROMIUM, **FAST)
    if name != "tiles":
        assert img.dezoomer in ("iiif", "deepzoom")
    metadata = [r for r in server.requests if r.endswith((".dzi", "/info.json"))]
    if name in ("fetch", "obfuscated", "cookie", "referer", "frame"):  # the recorded body was used: one fetch
        assert len(metadata) == 1, metadata
    result = img.save(own_tmp / f"{name}.png", progress=False)
    assert np.array_equal(load(result.path), expected)


def test_guarded_tiles_need_what_the_browser_carried(site):
    server, pages = site
    base = server.base_url
    with pytest.raises(dz.FetchError, match="403"):  # without the cookie the page's script sets
        dz.open(base + "/guarded/image.dzi", cookies={"other": "1"}, **FAST)
    with pytest.raises(dz.FetchError, match="403"):  # without the page as Referer
        dz.open(base + "/refcheck/info.json", referer=base + "/elsewhere", **FAST)


def test_a_page_that_never_shows_an_image_fails_in_time(site, own_tmp):
    _, pages = site
    start = time.monotonic()
    with pytest.raises(dz.NoDezoomerFound) as info:
        dz.open(pages["nothing"][0], browser=True, browser_path=CHROMIUM, browser_timeout=6, **FAST)
    assert time.monotonic() - start < 6 + 15  # the budget, plus launching and closing the browser
    assert "none was an image's metadata" in str(info.value) and "--browser-timeout" in info.value.hint


def test_cli_says_try_browser_then_auto_finds_it(site, own_tmp, capsys, monkeypatch):
    _, pages = site
    url, expected = pages["fetch"]
    monkeypatch.setattr("dezoomify_nb.browser.CHROMIUM_PATHS", (CHROMIUM,))
    assert main(["-i", "0", url, str(own_tmp / "a.png")]) == 1
    err = capsys.readouterr().err
    assert "hint: The viewer probably builds its image URL with JavaScript: try --browser" in err
    assert main(["-i", "0", "--browser", "auto", url, str(own_tmp / "b.png")]) == 0
    assert np.array_equal(load(own_tmp / "b.png"), expected)
    assert main(["-i", "0", "--browser", url, str(own_tmp / "c.png"), "--browser-timeout", "20s"]) == 0
    assert np.array_equal(load(own_tmp / "c.png"), expected)


def test_missing_browser_names_the_install_command(site, tmp_path, capsys):
    _, pages = site
    assert main(["--browser", "--browser-path", str(tmp_path / "no-chromium"), pages["fetch"][0]]) == 1
    err = capsys.readouterr().err
    assert f"error: cannot use a browser: no Chromium at {tmp_path / 'no-chromium'}" in err
    assert "pip install 'dezoomify_nb[browser]'" in err and "apt-get install chromium" in err
    assert find_chromium(tmp_path / "no-chromium") is None


def test_ctrl_c_closes_the_browser(site, tmp_path, request):
    _, pages = site
    tmp = Path(tempfile.mkdtemp(prefix="dz-", dir="/tmp"))  # short: Chromium's sockets live under $TMPDIR
    request.addfinalizer(lambda: shutil.rmtree(tmp, ignore_errors=True))
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "dezoomify_nb", "--browser", "--browser-path", CHROMIUM,
                             pages["nothing"][0], str(tmp_path / "x.png")], env=env, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 30
    while not _browsers(tmp) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert _browsers(tmp), "the browser never started"
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "error: interrupted" in err and "Traceback" not in err, err
    end = time.monotonic() + 5
    while _browsers(tmp) and time.monotonic() < end:
        time.sleep(0.1)
    assert not _browsers(tmp), "chromium outlived the interrupted run"
    assert not list(tmp.glob("dezoomify-nb-browser-*"))


def test_picker_offers_to_look_with_a_browser(site, own_tmp):
    _, pages = site
    url, expected = pages["referer"]
    picker = dz.widget(url, directory=own_tmp, browser_path=CHROMIUM, **FAST).wait(60)
    assert picker.state == "failed" and picker.browser_button.layout.display == "flex"
    assert "press 'Look with a browser'" in html.unescape(picker.placeholder.value)
    picker.look_with_browser().wait(90)
    assert picker.state == "ready" and picker.browser_button.layout.display == "none"
    assert picker.image is not None and picker.image.title == "Viewer: referer"  # the page's title
    assert "browser=True" in picker.code.value
    picker.file_box.value = "viewer.png"  # lossless, to compare pixels
    picker.download().wait(90)
    assert picker.state == "done" and picker.result is not None
    assert np.array_equal(load(picker.result.path), expected)


PAYLOAD = b"DZ-PAYLOAD-" * 1000


def test_downloads_and_non_http_navigation_go_nowhere(site, monkeypatch, request):
    """A page whose frame starts a download and navigates to file:// and ftp:// URLs: no file with the
    download's bytes appears under $TMPDIR while the browser runs (where Playwright keeps accepted downloads)
    nor in its profile (Chromium's own temporary file, ``$TMPDIR/.org.chromium.Chromium.*``, into which it
    may stream the response before the download is refused, aside: about once in 5 runs), none is left
    after it, nothing but http(s) is recorded, and the viewer beside it is still found. (Chromium's
    TMPDIR cannot be the private folder: its SingletonSocket path would pass the 108-byte limit.)"""
    import threading

    from dezoomify_nb import browser as browser_mode
    from dezoomify_nb.testing import Response

    server, pages = site
    tmp = Path(tempfile.mkdtemp(prefix="dz-", dir="/tmp"))  # short: Chromium's sockets live under $TMPDIR
    request.addfinalizer(lambda: shutil.rmtree(tmp, ignore_errors=True))
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    escape = ('<a id="d" href="/esc/payload.bin" download>file</a><script>document.getElementById("d").click();'
              'setTimeout(function () { location.href = "file:///etc/hostname"; }, 200);'
              'setTimeout(function () { window.open("ftp://127.0.0.1/x"); }, 300);</script>')
    page = '<iframe src="/esc/frame"></iframe><iframe src="/v/frame-inner/" width="860" height="620"></iframe>'

    def handler(srv, raw_path, headers):
        if raw_path.startswith("/esc/payload.bin"):
            return Response(200, PAYLOAD, "application/octet-stream",
                            {"Content-Disposition": 'attachment; filename="payload.bin"'})
        return Response(200, (escape if raw_path.startswith("/esc/frame") else page).encode(), "text/html")

    server.add_route("/esc/", handler)
    seen: set[str] = set()
    done = threading.Event()

    def watch():
        while not done.is_set():
            # os.walk skips folders that vanish while it walks (Chromium deletes its temporary ones)
            for root, _dirs, files in os.walk(tmp):
                for name in files:
                    path = Path(root, name)
                    if root == str(tmp) and name.startswith(".org.chromium.Chromium."):
                        continue  # Chromium's temporary file, removed as the download is refused (checked below)
                    try:
                        if path.stat().st_size == len(PAYLOAD) and path.read_bytes() == PAYLOAD:
                            seen.add(str(path))
                    except OSError:
                        continue
            done.wait(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        rec = browser_mode.record(server.base_url + "/esc/page", executable=CHROMIUM, timeout=20)
    finally:
        done.set()
        watcher.join(5)
    assert not seen, f"a download was written: {seen}"
    left = [p for p in tmp.rglob("*") if p.is_file() and p.stat().st_size == len(PAYLOAD)
            and p.read_bytes() == PAYLOAD]
    assert not left, f"a download was left: {left}"
    assert rec.exchanges and all(ex.url.startswith("http") for ex in rec.exchanges)
    assert not _browsers(tmp) and not list(tmp.glob("dezoomify-nb-browser-*"))
    from dezoomify_nb.net import NetConfig
    from dezoomify_nb.recorded import open_recording

    images, _ = open_recording(rec, NetConfig(min_interval=0))
    assert [(im.dezoomer, im.levels[0].size) for im in images] == [("deepzoom", pages["frame"][1].shape[1::-1])]
