"""The three notebook frontends of the browser tests, on 127.0.0.1: JupyterLab, Notebook 7 and Voila.

:func:`jupyter_app` starts one of them on a free port (a token for Lab and Notebook 7), serving a folder
(``root``) where the tests copy their notebooks, and waits until it answers. :func:`open_notebook` opens a
notebook of that folder in a page and runs it: Lab and Notebook 7 wait for a connected kernel, then
*Run All*; Voila runs it on page load. Jupyter's and IPython's state stays in the server's ``work`` folder
(never in $HOME); each uniquely named notebook gets its own kernel, which :func:`kernel_client` reaches
from the test (a second client on the kernel's connection file) and :func:`shut_down` ends.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: the frontends (``kind`` of :class:`JupyterApp`)
KINDS = ("lab", "nb7", "voila")
_MODULE = {"lab": "jupyterlab", "nb7": "notebook", "voila": "voila"}


@dataclass(frozen=True)
class JupyterApp:
    kind: str  #: "lab", "nb7" or "voila"
    base: str  #: ``http://127.0.0.1:<port>``
    token: str  #: "" for Voila (it has none)
    root: Path  #: the folder served: copy notebooks here
    work: Path  #: the server's state: its log, Jupyter's runtime folder (kernels' connection files)

    def url(self, name: str, theme: str | None = None) -> str:
        """The page of the notebook ``name`` (in :attr:`root`)."""
        if self.kind == "lab":
            return f"{self.base}/lab/tree/{name}?reset&token={self.token}"  # ?reset: no saved workspace
        if self.kind == "nb7":
            return f"{self.base}/notebooks/{name}?token={self.token}"
        return f"{self.base}/voila/render/{name}" + (f"?theme={theme}" if theme else "")

    def api(self, path: str, method: str = "GET") -> Any:
        """A call of the Jupyter server's REST API (Lab, Notebook 7)."""
        req = urllib.request.Request(f"{self.base}/api/{path}", method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            body = resp.read()
        return json.loads(body) if body else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def jupyter_env(work: Path) -> dict[str, str]:
    """Keep Jupyter and IPython state out of $HOME (and the user's config out of the test)."""
    return {name: str(work / sub) for name, sub in [
        ("JUPYTER_CONFIG_DIR", "cfg"), ("JUPYTER_DATA_DIR", "data"),
        ("JUPYTER_RUNTIME_DIR", "runtime"), ("IPYTHONDIR", "ipython")]}


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


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()  # jupyter_server (and Voila) shut their kernels down too
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def jupyter_app(kind: str, work: Path, root: Path | None = None,
                env: dict[str, str] | None = None) -> Iterator[JupyterApp]:
    """JupyterLab (``"lab"``), Notebook 7 (``"nb7"``) or Voila (``"voila"``) on 127.0.0.1 serving ``root``
    (default: ``work/root``, created), its kernels run with ``env`` added; stopped (with its kernels) on exit."""
    if kind not in KINDS:
        raise ValueError(kind)
    if root is None:
        root = work / "root"
    root.mkdir(parents=True, exist_ok=True)
    settings = work / "settings"
    notif = settings / "@jupyterlab" / "apputils-extension"
    notif.mkdir(parents=True, exist_ok=True)
    (notif / "notification.jupyterlab-settings").write_text('{"fetchNews": "false", "checkForUpdates": false}')
    # every cell in the page (Lab 4 leaves cells out of view unrendered: their prompts and outputs unseen)
    tracker = settings / "@jupyterlab" / "notebook-extension"
    tracker.mkdir(parents=True, exist_ok=True)
    (tracker / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
    port, token = free_port(), ("" if kind == "voila" else uuid.uuid4().hex)
    if kind == "voila":
        args = [str(root), "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1", "--show_tracebacks=True",
                # Notebook 7's JupyterLab extension (the test extra has Notebook 7) fails in Voila's older core
                "--VoilaConfiguration.extension_denylist=['@jupyter-notebook/lab-extension']"]
        ready = f"http://127.0.0.1:{port}/voila/static/voila.js"  # a static file: "/" would start a kernel
    else:
        args = ["--no-browser", "--allow-root", f"--port={port}",  # CI runs as root
                "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
                "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
        if kind == "lab":
            args.append("--LabApp.extension_manager=readonly")
        ready = f"http://127.0.0.1:{port}/api/status?token={token}"
    with open(work / f"{kind}.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", _MODULE[kind], *args], stdout=log, stderr=subprocess.STDOUT, cwd=work,
            env={**os.environ, **jupyter_env(work), "JUPYTERLAB_WORKSPACES_DIR": str(work / "workspaces"),
                 "JUPYTERLAB_SETTINGS_DIR": str(settings), **(env or {})})
        try:
            _wait_http(ready, proc)
            yield JupyterApp(kind, f"http://127.0.0.1:{port}", token, root, work)
        finally:
            _stop(proc)


def open_notebook(page: Any, app: JupyterApp, name: str, theme: str | None = None) -> None:
    """Open the notebook ``name`` of ``app.root`` in ``page`` and run all its cells (Voila: on load)."""
    from playwright.sync_api import expect

    if app.kind == "voila":
        resp = page.goto(app.url(name, theme))
        assert resp is not None and resp.ok, f"Voila did not serve {name}: see {app.work / 'voila.log'}"
        return
    page.goto(app.url(name))
    if app.kind == "lab":
        # the toolbar says "idle" before any kernel exists (Run All then runs nothing): wait for the status bar
        expect(page.locator("#jp-main-statusbar")).to_contain_text("| Idle", timeout=90_000)
        page.locator("li.lm-MenuBar-item", has_text="Run").first.click()
        page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()
        return
    prompt = page.locator(".jp-CodeCell .jp-InputPrompt").first
    expect(prompt).to_be_visible(timeout=90_000)
    deadline = time.monotonic() + 90
    while prompt.inner_text().strip() in ("", "[ ]:", "[ ]"):
        # Notebook 7 has no kernel status in a status bar: Run All again until the first cell is queued or ran
        assert time.monotonic() < deadline, "Notebook 7 never ran the first cell"
        # a dialog over the page takes the clicks. Under load Notebook 7 may ask which kernel to start (its
        # preferred kernel not resolved yet): the notebook's own, Python 3, as it would have started; any
        # other dialog fails the test with what it says
        dialog = page.locator(".jp-Dialog")
        if dialog.count() and dialog.first.inner_text().startswith("Select Kernel"):
            choice = dialog.first.locator("select")
            if choice.count():
                choice.first.select_option(label="Python 3 (ipykernel)")
            dialog.first.locator(".jp-Dialog-button.jp-mod-accept").click()
            expect(dialog).to_have_count(0)
        assert not dialog.count(), f"Notebook 7 shows a dialog: {dialog.first.inner_text()[:400]!r}"
        page.locator("li.lm-MenuBar-item", has_text="Run").first.click()
        page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()
        page.wait_for_timeout(1500)


def copy_notebook(src: Path, app: JupyterApp, prefix: str = "nb") -> str:
    """A uniquely named copy of ``src`` in the app's folder (a fresh name is a fresh kernel); its name."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}.ipynb"
    (app.root / name).write_bytes(src.read_bytes())
    return name


def _session(app: JupyterApp, name: str) -> dict:
    sessions = [s for s in app.api("sessions") if s.get("path", "").endswith(name)]
    assert len(sessions) == 1, (name, sessions)
    return sessions[0]


@contextmanager
def kernel_client(app: JupyterApp, name: str) -> Iterator[Any]:
    """A second client (jupyter_client) of the kernel that runs the notebook ``name`` (Lab, Notebook 7)."""
    from jupyter_client import BlockingKernelClient

    kernel = _session(app, name)["kernel"]["id"]
    client = BlockingKernelClient(connection_file=str(app.work / "runtime" / f"kernel-{kernel}.json"))
    client.load_connection_file()
    client.start_channels()
    try:
        yield client
    finally:
        client.stop_channels()


def kernel_value(app: JupyterApp, name: str, expression: str) -> str:
    """``repr`` of ``expression`` evaluated in the kernel of the notebook ``name``."""
    with kernel_client(app, name) as client:
        reply = client.execute_interactive("", user_expressions={"v": expression}, timeout=30)
    value = reply["content"]["user_expressions"]["v"]
    assert value["status"] == "ok", value
    return value["data"]["text/plain"]


def shut_down(app: JupyterApp, name: str) -> None:
    """End the notebook's session and its kernel (and what the kernel started: servers, clusters)."""
    app.api(f"sessions/{_session(app, name)['id']}", method="DELETE")
