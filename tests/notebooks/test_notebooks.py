"""The notebooks in ``notebooks/`` run top to bottom (nbclient, a real kernel, offline: each starts its own
loopback sample server) and are kept in git without outputs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
WIDGET = "application/vnd.jupyter.widget-view+json"


def run(name: str, cwd: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    env = {**os.environ, **{k: str(cwd / ".jupyter" / v) for k, v in [
        ("JUPYTER_CONFIG_DIR", "cfg"), ("JUPYTER_DATA_DIR", "data"), ("JUPYTER_RUNTIME_DIR", "runtime"),
        ("IPYTHONDIR", "ipython"), ("MPLCONFIGDIR", "mpl")]}}
    (cwd / ".jupyter").mkdir()
    client = NotebookClient(nb, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(cwd)}})
    client.execute(env=env)
    errors = [f"{o.get('ename')}: {o.get('evalue')}" for c in nb.cells for o in c.get("outputs", [])
              if o.output_type == "error"]
    assert not errors, errors
    return nb


def outputs(nb: nbformat.NotebookNode, source_start: str) -> list:
    cells = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith(source_start)]
    assert len(cells) == 1, source_start
    return cells[0].outputs


def mimetypes(outs: list) -> set[str]:
    return {m for o in outs if o.output_type in ("display_data", "execute_result") for m in o.data}


def test_notebooks_are_stripped():
    names = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
    assert names == ["01-quick-start.ipynb", "02-lazy-arrays.ipynb", "03-manifests-and-bulk.ipynb",
                     "04-scale-out.ipynb", "picker.ipynb"]
    for path in NOTEBOOKS.glob("*.ipynb"):
        nb = json.loads(path.read_text())
        nbformat.validate(nbformat.reads(path.read_text(), as_version=4))
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert cell["outputs"] == [] and cell["execution_count"] is None, path.name
        assert "widgets" not in nb["metadata"], path.name


def test_quick_start(tmp_path):
    nb = run("01-quick-start", tmp_path)
    shown = mimetypes(outputs(nb, "img = dz.open(url)"))
    assert {WIDGET, "text/html", "text/plain"} <= shown  # the picker, with the HTML summary as fallback
    assert WIDGET in mimetypes(outputs(nb, "picker = dz.widget("))
    assert "image/png" in mimetypes(outputs(nb, "from PIL import Image"))
    assert sorted(p.name for p in (tmp_path / "downloads").iterdir()) == ["Sample_gallery_Page_2.jpg", "detail.png"]


def test_lazy_arrays(tmp_path):
    nb = run("02-lazy-arrays", tmp_path)
    assert "image/png" in mimetypes(outputs(nb, "crop = window.compute()"))  # the matplotlib figure
    text = "".join(o.get("text", "") for o in outputs(nb, "tiles_fetched ="))
    assert "tiles fetched for the window" in text


def test_manifests_and_bulk(tmp_path):
    run("03-manifests-and-bulk", tmp_path)
    assert len(list((tmp_path / "pages").iterdir())) == 3
    assert len(list((tmp_path / "bulk").glob("page*.png"))) == 3


def test_scale_out(tmp_path):
    run("04-scale-out", tmp_path)
    assert (tmp_path / "downloads" / "cluster.png").is_file()


def test_binder_installs_the_notebook_extra_and_opens_the_quick_start():
    from packaging.requirements import Requirement

    post = ROOT / "binder" / "postBuild"
    assert os.access(post, os.X_OK) and '".[notebook]"' in post.read_text()
    lines = [ln for ln in (ROOT / "binder" / "requirements.txt").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    assert {Requirement(ln).name for ln in lines} >= {"jupyterlab", "ipywidgets", "anywidget"}
    readme = (ROOT / "README.md").read_text()
    link = readme.split("mybinder.org/v2/gh/", 1)[1].split(")", 1)[0]
    assert link.endswith("?labpath=notebooks%2F01-quick-start.ipynb")
    assert (NOTEBOOKS / "01-quick-start.ipynb").is_file()
