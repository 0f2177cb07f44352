"""The conformance suite: the project against real third-party software, all on 127.0.0.1.

Producers (libvips ``dzsave``), readers of our outputs (OpenSlide, GDAL, libvips, tifffile, Pillow, the
IIIF validator). Every test here is marked ``conformance`` (``pytest -m conformance`` runs them alone).

A missing tool fails when ``REQUIRE_CONFORMANCE=1`` or ``CI`` is set (``make test`` installs them all:
``make conformance-tools``, Debian packages; Python ones are in the ``test`` extra); elsewhere it skips.
The versions of the tools used are printed at the end of the run.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

import pytest

HERE = Path(__file__).parent
#: tool → version string, of the tools the run used (printed in the terminal summary)
VERSIONS: dict[str, str] = {}
_VERSION_CMDS = {"vips": ["vips", "--version"], "gdalinfo": ["gdalinfo", "--version"]}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if HERE in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.conformance)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if VERSIONS:
        terminalreporter.write_sep("-", "third-party software of the conformance suite")
        for name, version in sorted(VERSIONS.items()):
            terminalreporter.write_line(f"{name}: {version}")


def _missing(why: str):
    if os.environ.get("REQUIRE_CONFORMANCE") == "1" or os.environ.get("CI"):
        pytest.fail(f"{why} (make conformance-tools installs it)")
    pytest.skip(why)


def require(cmd: str) -> str:
    """The path of the command ``cmd``; fails (CI, REQUIRE_CONFORMANCE=1) or skips when it is missing."""
    path = shutil.which(cmd)
    if path is None:
        _missing(f"{cmd} is not installed")
    if cmd in _VERSION_CMDS and cmd not in VERSIONS:
        out = subprocess.run(_VERSION_CMDS[cmd], capture_output=True, text=True, timeout=30)
        VERSIONS[cmd] = (out.stdout or out.stderr).strip()
    return path


def require_module(name: str, version: Callable[[ModuleType], str] | None = None) -> ModuleType:
    try:
        mod = importlib.import_module(name)
    except ImportError as e:
        _missing(f"the Python package {name} is not installed ({e}); pip install -e '.[test]'")
    if name not in VERSIONS:
        VERSIONS[name] = version(mod) if version else str(getattr(mod, "__version__", "?"))
    return mod


def run(*args: str | os.PathLike[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a third-party command; its stderr is in the assertion message when it fails."""
    out = subprocess.run([os.fspath(a) for a in args], capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{args[0]} failed ({out.returncode}): {out.stderr.strip()[-2000:]}"
    return out


class StaticServer:
    """A plain static file server of a folder on 127.0.0.1 (Python's ``http.server``), as users serve a
    tree made by libvips or by us; it logs the path and status of every request."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.log: list[tuple[str, int]] = []
        lock = threading.Lock()
        log = self.log

        class Handler(SimpleHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_request(self, code="-", size="-"):
                with lock:
                    log.append((self.path, int(code) if str(code).isdigit() else 0))

            def log_message(self, format, *args):  # noqa: A002 - the base class's name
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="conformance-static", daemon=True)

    def __enter__(self) -> StaticServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, rel: str) -> str:
        return f"{self.base_url}/{rel.lstrip('/')}"

    def reset(self) -> None:
        self.log.clear()

    def paths(self) -> list[str]:
        return [p for p, _ in self.log]


@pytest.fixture(scope="module")
def static_root(tmp_path_factory) -> Iterator[tuple[Path, StaticServer]]:
    root = tmp_path_factory.mktemp("static")
    with StaticServer(root) as srv:
        yield root, srv
