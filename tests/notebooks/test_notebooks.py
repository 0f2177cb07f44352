"""The notebooks in ``notebooks/`` run top to bottom (nbclient, a real kernel, offline: each starts its own
loopback sample server) and are kept in git without outputs.

Each runs inside a scratch git repository holding the notebooks and the project's ``.gitignore``: after the
run, nothing untracked may be left (every file a notebook writes goes to its ignored ``output/`` folder,
emptied at each run). The executed notebook is converted with nbconvert (``--to html``, no widget state, as
GitHub shows it): where a widget was shown, its HTML summary must be there.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbconvert import HTMLExporter

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
WIDGET = "application/vnd.jupyter.widget-view+json"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def run(name: str, tmp: Path) -> tuple[nbformat.NotebookNode, Path, str]:
    """Execute ``name`` in a scratch repository; returns the executed notebook, the folder it ran in and its
    nbconvert HTML. Fails if the run leaves an untracked file or a cell raised."""
    repo = tmp / "repo"
    (repo / "notebooks").mkdir(parents=True)
    shutil.copy(ROOT / ".gitignore", repo / ".gitignore")
    for path in NOTEBOOKS.glob("*.ipynb"):
        shutil.copy(path, repo / "notebooks" / path.name)
    git(repo, "init", "-q")
    git(repo, "add", ".")
    cwd = repo / "notebooks"
    nb = nbformat.read(cwd / f"{name}.ipynb", as_version=4)
    env = {**os.environ, **{k: str(tmp / ".jupyter" / v) for k, v in [
        ("JUPYTER_CONFIG_DIR", "cfg"), ("JUPYTER_DATA_DIR", "data"), ("JUPYTER_RUNTIME_DIR", "runtime"),
        ("IPYTHONDIR", "ipython"), ("MPLCONFIGDIR", "mpl")]}}
    (tmp / ".jupyter").mkdir()
    client = NotebookClient(nb, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(cwd)}})
    client.execute(env=env)
    errors = [f"{o.get('ename')}: {o.get('evalue')}" for c in nb.cells for o in c.get("outputs", [])
              if o.output_type == "error"]
    assert not errors, errors
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == "A  .gitignore\n" + "".join(
        f"A  notebooks/{p.name}\n" for p in sorted(NOTEBOOKS.glob("*.ipynb"))), "the run left files git sees"
    nb.metadata.pop("widgets", None)  # what a notebook saved without widget state holds (GitHub, nbconvert)
    html, _ = HTMLExporter().from_notebook_node(nb)
    return nb, cwd, html


def html_of(nb: nbformat.NotebookNode, source_start: str) -> str:
    """The ``text/html`` of the cell starting with ``source_start`` (one output, or nothing)."""
    found = [o.data["text/html"] for o in outputs(nb, source_start)
             if o.output_type in ("display_data", "execute_result") and "text/html" in o.data]
    assert len(found) == 1, (source_start, found)
    return found[0]


def assert_shown(page: str, fragment: str) -> None:
    """``fragment`` (an output's HTML) is in the nbconvert page, where the widget view was skipped (nbconvert
    re-serialises the page with BeautifulSoup: so is the fragment)."""
    from bs4 import BeautifulSoup

    assert str(BeautifulSoup(fragment, features="html.parser")) in page, fragment[:200]


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
    nb, cwd, page = run("01-quick-start", tmp_path)
    shown = mimetypes(outputs(nb, "img = dz.open(url)"))
    assert {WIDGET, "text/html", "text/plain"} <= shown  # the picker, with the HTML summary as fallback
    summary = html_of(nb, "img = dz.open(url)")
    assert 'class="dezoomify-nb-image"' in summary and "<table" in summary and "data:image/png;base64," in summary
    assert_shown(page, summary)
    assert WIDGET in mimetypes(outputs(nb, "picker = dz.widget("))
    picker = html_of(nb, "picker = dz.widget(")
    assert 'class="dezoomify-nb-picker"' in picker and "manifest.json" in picker
    assert_shown(page, picker)
    saved = html_of(nb, "picker.wait()")  # picker.result
    assert 'class="dezoomify-nb-saved"' in saved and "output/quick-start/Sample_gallery_Page_2.jpg" in saved
    assert_shown(page, saved)
    detail = html_of(nb, "detail = img.save(")
    assert "400 × 300 px" in detail and 'href="output/quick-start/detail.png"' in detail
    assert_shown(page, detail)
    assert "image/png" in mimetypes(outputs(nb, "from PIL import Image"))
    assert sorted(p.name for p in (cwd / "output" / "quick-start").iterdir()) == ["Sample_gallery_Page_2.jpg",
                                                                                 "detail.png"]
    assert "# gallery.stop()" in nb.cells[-1].source  # nothing in a top-to-bottom run stops the server


def test_lazy_arrays(tmp_path):
    nb, _, page = run("02-lazy-arrays", tmp_path)
    summary = html_of(nb, "import matplotlib")
    assert 'class="dezoomify-nb-image"' in summary and "data:image/png;base64," in summary
    assert_shown(page, summary)
    assert "image/png" in mimetypes(outputs(nb, "crop = window.compute()"))  # the matplotlib figure
    text = "".join(o.get("text", "") for o in outputs(nb, "tiles_fetched ="))
    assert "tiles fetched for the window" in text


def test_manifests_and_bulk(tmp_path):
    nb, cwd, page = run("03-manifests-and-bulk", tmp_path)
    book = html_of(nb, "import shutil")
    assert 'class="dezoomify-nb-collection"' in book and "3 images" in book and "Sample gallery - Page 3" in book
    assert_shown(page, book)
    bars = [o for o in outputs(nb, '(out / "pages").mkdir()') if o.output_type == "display_data"]
    # ipywidgets: the overall bar, and the current image's bar, removed at the end (as a terminal's)
    assert [WIDGET in o.data for o in bars] == [True, False]
    overall = bars[0].data["text/plain"].replace("\xa0", " ")  # its final state, as text for static renderers
    assert re.match(r"images\|[█#]+\| 100% · 3/3 \[.* images/s\]", overall), overall
    assert bars[1].data["text/plain"] == "", bars[1].data
    summary = html_of(nb, '(out / "pages").mkdir()')
    assert 'class="dezoomify-nb-bulk"' in summary and "3 images: 3 done, 0 partial, 0 failed" in summary
    assert summary.count('href="output/manifests-and-bulk/pages/') == 3
    assert_shown(page, summary)
    out = cwd / "output" / "manifests-and-bulk"
    assert len(list((out / "pages").glob("*.jpg"))) == 3  # (beside the bulk journal)
    assert len(list((out / "bulk").glob("page*.png"))) == 3


def test_scale_out(tmp_path):
    nb, cwd, page = run("04-scale-out", tmp_path)
    saved = html_of(nb, "result = img.save(")
    assert "1500 × 1000 px" in saved and 'href="output/scale-out/cluster.png"' in saved
    assert_shown(page, saved)
    assert (cwd / "output" / "scale-out" / "cluster.png").is_file()


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
