"""Browser mode: load a page in headless Chromium (Playwright), nudge its viewer, record what it requests.

``dz.open(url, browser=True)`` / ``dezoomify-nb --browser URL`` call :func:`record`; the
:class:`~.recorded.Recording` it returns is opened by :func:`~.recorded.open_recording` (the recorded
metadata bodies are handed to the dezoomers: nothing is fetched twice).

- **The browser**: ``--browser-path``, else Debian's ``/usr/bin/chromium`` (``chromium-browser``), else a
  Chromium that Playwright installed earlier (``~/.cache/ms-playwright``). Nothing is ever downloaded at
  run time: a missing ``playwright`` package or browser is a :class:`~.errors.BrowserError` naming the
  install command (:data:`INSTALL_HINT`).
- **What it does**: the page is loaded (with its iframes), waited for until the network is quiet, then
  nudged as a user would: in every frame, the largest canvas or viewer-like element (``canvas``,
  ``[class*=viewer]``, ``[id*=zoom]``, OpenSeadragon, Leaflet, ``img``; never a link) is scrolled into view,
  clicked, and zoomed with the wheel, up to :data:`NUDGES` rounds until a metadata response or a tile was
  seen. Every response is recorded (URL, status, resource type, the request headers of tiles and
  documents); JSON/XML/text bodies are kept under the network layer's caps (``max_metadata_bytes`` each,
  :data:`~.recorded.MAX_RECORDED_BYTES` in all). The cookies the page set are read at the end.
- **Safety**: a fresh temporary profile (and ``HOME``) removed afterwards, downloads refused, extensions
  and service workers off, no navigation to anything but http(s), the user's ``-H`` headers never given
  to the browser (it would send them to every host).
- **Time**: everything ends by ``timeout`` seconds (default 30); the browser runs in a thread of its own
  (so it also works under a running event loop, in Jupyter) and is always closed, on errors, timeouts and
  Ctrl-C too (the interrupt waits for it, a few seconds at most).
"""

from __future__ import annotations

import glob
import importlib.util
import logging
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from .errors import NOTICE, BrowserError
from .net import NetConfig
from .net.local import is_http
from .recorded import MAX_EXCHANGES, MAX_RECORDED_BYTES, TEXT_TYPE, Exchange, Recording, candidates, is_image

log = logging.getLogger("dezoomify_nb.browser")

DEFAULT_TIMEOUT = 30.0
#: the nudge rounds at most (each: scroll, click, wheel in every frame, then a quiet network)
NUDGES = 3
#: the longest wait for a quiet network in one go (a page that polls never goes quiet)
QUIET_WAIT = 2.5
CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/lib/chromium/chromium")
INSTALL_HINT = ("The browser mode needs Playwright and Chromium: pip install 'dezoomify_nb[browser]' and, on "
                "Debian/Ubuntu, sudo apt-get install chromium (or give a Chromium binary with --browser-path); "
                "nothing is downloaded at run time.")
CHROMIUM_FLAGS = (
    "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-extensions", "--disable-default-apps",
    "--no-default-browser-check", "--mute-audio", "--disable-dev-shm-usage",
)
_TMP_PREFIX = "dezoomify-nb-browser-"

#: the element a user would play with: the largest visible canvas / viewer-like element, not inside a link
_FIND_VIEWER = """() => {
  const sel = 'canvas, [class*="viewer" i], [id*="viewer" i], [class*="zoom" i], [id*="zoom" i], ' +
              '[class*="openseadragon" i], [class*="leaflet" i], [class*="iiif" i], img';
  let best = null, area = 0;
  for (const el of document.querySelectorAll(sel)) {
    if (el.closest('a[href]')) continue;
    const r = el.getBoundingClientRect();
    const a = r.width * r.height;
    if (r.width >= 40 && r.height >= 40 && a > area) { best = el; area = a; }
  }
  if (best) best.scrollIntoView({block: "center", inline: "center"});
  return best;
}"""


def find_chromium(path: str | os.PathLike[str] | None = None) -> str | None:
    """The Chromium binary to use: ``path``, else Debian's, else one Playwright installed; None if none."""
    if path is not None:
        p = Path(path).expanduser()
        return str(p) if p.is_file() and os.access(p, os.X_OK) else None
    for candidate in CHROMIUM_PATHS:
        if os.access(candidate, os.X_OK):
            return candidate
    home = os.environ.get("PLAYWRIGHT_BROWSERS_PATH") or os.path.expanduser("~/.cache/ms-playwright")
    found = sorted(glob.glob(os.path.join(home, "chromium-*", "chrome-linux*", "chrome")), reverse=True)
    return found[0] if found else None


def unavailable(path: str | os.PathLike[str] | None = None) -> str | None:
    """Why the browser mode cannot run here, or None when it can (nothing is started)."""
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed"
    if find_chromium(path) is None:
        return f"no Chromium at {path}" if path is not None else "no Chromium browser found"
    return None


class _Recorder:
    """Collects responses (called on the browser thread, from Playwright's event dispatch)."""

    def __init__(self, net: NetConfig) -> None:
        self.exchanges: list[Exchange] = []
        self.cap = net.max_metadata_bytes
        self.left = MAX_RECORDED_BYTES
        self.count = 0

    def on_response(self, response: Any) -> None:
        try:
            self._record(response)
        except Exception as exc:  # noqa: BLE001 - a page closing mid-way must not stop the recording
            log.debug("not recorded: %s (%s)", getattr(response, "url", "?"), exc)

    def _record(self, response: Any) -> None:
        url = response.url
        self.count += 1
        if not is_http(url) or len(self.exchanges) >= MAX_EXCHANGES:
            return
        request = response.request
        if request.method != "GET":
            return
        headers = response.headers
        ctype = headers.get("content-type", "")
        ex = Exchange(url, response.status, request.resource_type, ctype)
        body = None
        if not is_image(ex) and TEXT_TYPE.search(ctype.split(";")[0]) and 200 <= response.status < 300 \
                and not ctype.startswith("text/html"):
            declared = headers.get("content-length", "")
            if not (declared.isdigit() and int(declared) > min(self.cap, self.left)):
                data = response.body()
                if len(data) <= min(self.cap, self.left):
                    body = data
                    self.left -= len(data)
        from .dezoomers.tile_url import match

        if body is not None or ex.resource_type == "document" or (is_image(ex) and match(url) is not None):
            sent = tuple(request.all_headers().items())
        else:
            sent = tuple(request.headers.items())
        try:
            frame = request.frame.url
        except Exception:  # noqa: BLE001 - a service worker's request has no frame
            frame = ""
        self.exchanges.append(Exchange(url, response.status, request.resource_type, ctype, sent, body,
                                       frame if is_http(frame) else ""))

    def seen_something(self, page: str) -> bool:
        return bool(candidates(Recording(page, list(self.exchanges))))


def _left(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())


def _quiet(page: Any, deadline: float, stop: threading.Event) -> None:
    """Wait until the network is quiet (at most :data:`QUIET_WAIT` and the time left)."""
    wait = min(QUIET_WAIT, _left(deadline))
    if wait <= 0 or stop.is_set():
        return
    try:
        page.wait_for_load_state("networkidle", timeout=wait * 1000)
    except Exception:  # noqa: BLE001 - a page that keeps polling is never idle: go on
        pass


def _nudge(page: Any, deadline: float) -> int:
    """Scroll to, click and wheel-zoom the viewer of every frame; how many were nudged."""
    nudged = 0
    for frame in list(page.frames)[:8]:
        if _left(deadline) < 0.5:
            break
        try:
            handle = frame.evaluate_handle(_FIND_VIEWER)
            element = handle.as_element()
            box = element.bounding_box() if element is not None else None
            if not box:
                continue
            x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
            page.mouse.move(x, y)
            page.mouse.click(x, y)
            page.wait_for_timeout(150)
            page.mouse.wheel(0, -400)
            nudged += 1
        except Exception as exc:  # noqa: BLE001 - a frame gone, a detached element: the next one
            log.debug("nudge of %s: %s", frame.url, exc)
    return nudged


def _remove(folder: str) -> None:
    """Remove the profile; a helper process of the browser (crashpad) may still write into it a moment."""
    for _ in range(20):
        shutil.rmtree(folder, ignore_errors=True)
        if not os.path.exists(folder):
            return
        time.sleep(0.1)
    log.warning("could not remove the browser's temporary profile %s", folder)


def _session(url: str, exe: str, net: NetConfig, timeout: float, stop: threading.Event, out: dict[str, Any],
             done: threading.Event) -> None:
    """The browser thread: everything Playwright does happens here (its sync API has a loop of its own)."""
    from playwright.sync_api import sync_playwright

    start = time.monotonic()
    deadline = start + timeout
    tmp = tempfile.mkdtemp(prefix=_TMP_PREFIX)
    recorder = _Recorder(net)
    try:
        env = {**os.environ, "HOME": tmp, "XDG_CONFIG_HOME": os.path.join(tmp, "config"),
               "XDG_CACHE_HOME": os.path.join(tmp, "cache")}
        with sync_playwright() as p:
            context = p.chromium.launch_persistent_context(
                os.path.join(tmp, "profile"), executable_path=exe, headless=True, args=list(CHROMIUM_FLAGS),
                env=env, accept_downloads=False, ignore_https_errors=net.accept_invalid_certs,
                service_workers="block", viewport={"width": 1280, "height": 900},
                timeout=max(1.0, _left(deadline)) * 1000, handle_sigint=False, handle_sigterm=False,
                handle_sighup=False)
            try:
                context.route(lambda u: not is_http(u), lambda route: route.abort())
                context.on("response", recorder.on_response)
                context.on("page", lambda pg: pg.set_default_timeout(max(1.0, _left(deadline)) * 1000))
                page = context.pages[0] if context.pages else context.new_page()
                page.set_default_timeout(max(1.0, _left(deadline)) * 1000)
                try:
                    page.goto(url, wait_until="commit", timeout=max(1.0, _left(deadline)) * 1000)
                except Exception as exc:  # noqa: BLE001 - no answer at all: nothing to record
                    raise BrowserError(f"the browser could not load {url}: {str(exc).splitlines()[0]}",
                                       hint="Check the URL in a browser; --browser-timeout gives it more "
                                            "time.") from None
                while not stop.is_set() and _left(deadline) > 0:  # in slices: Ctrl-C is heard
                    try:
                        page.wait_for_load_state("load", timeout=min(0.5, _left(deadline)) * 1000)
                        break
                    except Exception:  # noqa: BLE001 - not loaded yet
                        continue
                _quiet(page, deadline, stop)
                for round_ in range(NUDGES):
                    if stop.is_set() or _left(deadline) < 0.5:
                        break
                    before = recorder.seen_something(url)
                    nudged = _nudge(page, deadline)
                    _quiet(page, deadline, stop)
                    # one round after the viewer showed itself (deeper tiles); nothing to nudge: one more
                    # quiet wait (a script that starts late), then no more
                    if before or (not nudged and round_ >= 1):
                        break
                try:
                    out["title"] = str(page.title())[:300]
                except Exception:  # noqa: BLE001 - a page closed by its own script
                    out["title"] = ""
                out["cookies"] = tuple(
                    (c["domain"].lower(), c["domain"].startswith("."), c.get("path") or "/", bool(c.get("secure")),
                     float(max(c.get("expires") or 0, 0)), c["name"], c["value"])
                    for c in context.cookies()[:1000])
            finally:
                context.close()
    except BrowserError as exc:
        out["error"] = exc
    except Exception as exc:  # noqa: BLE001 - Playwright's errors become ours, with a hint
        out["error"] = BrowserError(f"the browser failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
                                    hint="--logging debug shows the details; " + INSTALL_HINT)
        log.debug("browser failure", exc_info=exc)
    finally:
        _remove(tmp)
        out["exchanges"] = recorder.exchanges
        out["seconds"] = time.monotonic() - start
        done.set()


def record(url: str, *, net: NetConfig | None = None, executable: str | os.PathLike[str] | None = None,
           timeout: float = DEFAULT_TIMEOUT) -> Recording:
    """Load ``url`` in headless Chromium, nudge its viewer and record what it requests (module doc).

    Raises :class:`~dezoomify_nb.errors.BrowserError` when the browser is missing or fails.
    """
    net = net or NetConfig()
    if not is_http(url):
        raise BrowserError(f"the browser mode opens web pages (http or https), not {url!r}",
                           hint="Give the page's URL; a local HAR file is opened without --browser.")
    if timeout <= 0:
        raise BrowserError(f"invalid browser timeout {timeout}", hint="Give a duration such as 30s.")
    why = unavailable(executable)
    if why is not None:
        raise BrowserError(f"cannot use a browser: {why}", hint=INSTALL_HINT)
    exe = find_chromium(executable)
    assert exe is not None
    stop, done = threading.Event(), threading.Event()
    out: dict[str, Any] = {}
    worker = threading.Thread(target=_session, args=(url, exe, net, timeout, stop, out, done),
                              name="dezoomify-nb-browser",
                              daemon=True)
    log.log(NOTICE, "Looking at the page in headless Chromium (at most %g s)…", timeout)
    log.info("Loading %s with %s", url, exe)
    worker.start()
    # waited for with an Event, never Thread.join: an interrupted join can mark a running thread as ended
    try:
        while not done.wait(0.1):
            pass
    except BaseException:  # Ctrl-C, SIGTERM: the browser closes before we go
        stop.set()
        done.wait(15)
        raise
    if "error" in out:
        raise out["error"]
    rec = Recording(url, out.get("exchanges", []), out.get("cookies", ()), source="the browser",
                    seconds=out.get("seconds", 0.0), title=out.get("title", ""))
    log.info("The browser saw %d requests in %.1f s", len(rec.exchanges), rec.seconds)
    return rec


__all__ = ["DEFAULT_TIMEOUT", "INSTALL_HINT", "find_chromium", "record", "unavailable"]
