"""Fixtures of the widget tests: the sample gallery and a Voila server on the picker notebook.

The browser test of the picker lives in ``tests/browser/test_voila_picker.py`` (one session-wide
Playwright/Chromium for every browser test; it imports these fixtures).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from dezoomify_nb.testing.gallery import SampleGallery

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
#: screenshots are kept here (``$SCREENSHOT_DIR`` to change it)
SHOTS = Path(os.environ.get("SCREENSHOT_DIR") or ROOT / "test-artifacts")


@pytest.fixture(scope="session")
def gallery():
    """Three 1200×900 pages (PNG tiles, so downloads compare exactly) and their manifest."""
    with SampleGallery(3, width=1200, height=900, lossless=True) as g:
        yield g


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited early with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(url)


def jupyter_env(work: Path) -> dict[str, str]:
    """Keep Jupyter and IPython state out of $HOME (and the user's config out of the test)."""
    return {name: str(work / sub) for name, sub in [
        ("JUPYTER_CONFIG_DIR", "cfg"), ("JUPYTER_DATA_DIR", "data"),
        ("JUPYTER_RUNTIME_DIR", "runtime"), ("IPYTHONDIR", "ipython")]}


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()  # jupyter_server shuts its kernels down too
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def voila_server(notebook: Path, work: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """Voila serving ``notebook`` on 127.0.0.1 (each page load runs it in a new kernel, with ``env``)."""
    port = _free_port()
    with open(work / "voila.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "voila", str(notebook), "--no-browser", f"--port={port}",
             "--Voila.ip=127.0.0.1", "--show_tracebacks=True",
             # Notebook 7's JupyterLab extension (the test extra has Notebook 7) fails in Voila's older core
             "--VoilaConfiguration.extension_denylist=['@jupyter-notebook/lab-extension']"],
            stdout=log, stderr=subprocess.STDOUT, cwd=work, env={**os.environ, **jupyter_env(work), **(env or {})},
        )
        try:
            # a static file, not "/", which would run the notebook in a new kernel
            _wait_http(f"http://127.0.0.1:{port}/voila/static/voila.js", proc)
            yield f"http://127.0.0.1:{port}/"
        finally:
            _stop(proc)


@contextmanager
def lab_server(root: Path, work: Path, env: dict[str, str] | None = None) -> Iterator[tuple[str, str]]:
    """JupyterLab on 127.0.0.1 serving the folder ``root``: ``(base URL, token)``. Open a notebook as
    ``{base}/lab/tree/{name}?reset&token={token}``; each uniquely named notebook gets its own kernel."""
    port, token = _free_port(), uuid.uuid4().hex
    settings = work / "settings"
    (settings / "@jupyterlab" / "apputils-extension").mkdir(parents=True, exist_ok=True)
    (settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        '{"fetchNews": "false", "checkForUpdates": false}')
    with open(work / "lab.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--port={port}",
             "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
             "--LabApp.news_url=None", "--LabApp.extension_manager=readonly",
             "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
            stdout=log, stderr=subprocess.STDOUT, cwd=work,
            env={**os.environ, **jupyter_env(work), "JUPYTERLAB_WORKSPACES_DIR": str(work / "workspaces"),
                 "JUPYTERLAB_SETTINGS_DIR": str(settings), **(env or {})},
        )
        try:
            _wait_http(f"http://127.0.0.1:{port}/api/status?token={token}", proc)
            yield f"http://127.0.0.1:{port}", token
        finally:
            _stop(proc)


@pytest.fixture(scope="module")
def voila_url(tmp_path_factory):
    """Voila serving notebooks/picker.ipynb on 127.0.0.1 (each page load runs it in a new kernel)."""
    with voila_server(NOTEBOOKS / "picker.ipynb", tmp_path_factory.mktemp("voila")) as url:
        yield url
