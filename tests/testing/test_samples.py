"""``python -m dezoomify_nb.testing serve`` as a new user meets it: the samples it prints (a IIIF manifest, a
museum page, a bulk list) and the commands it prints, pasted as they are; ``make demo`` installs only the
package's own dependencies."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from e2e.helpers import assert_same_pixels, read
from e2e.terminal import Term

from dezoomify_nb.testing import make_test_image

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
W, H = 800, 600


@pytest.fixture(scope="module")
def served():
    """The server's printed text and its process (stopped at the end)."""
    proc = subprocess.Popen([sys.executable, "-m", "dezoomify_nb.testing", "serve", "--width", str(W), "--height",
                             str(H)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    assert proc.stdout is not None
    text = ""
    deadline = time.monotonic() + 30
    while "Ctrl-C to stop." not in text and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        text += line
    try:
        yield text
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def commands(text: str) -> dict[str, list[str]]:
    """The printed commands by what they show (the ``# …`` line above each)."""
    lines = text.split("Try, in another terminal", 1)[1].splitlines()[1:]
    return {lines[i].strip().removeprefix("# "): shlex.split(lines[i + 1])
            for i in range(0, len(lines) - 1, 2) if lines[i].strip().startswith("#")}


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120,
                          env=ENV)


def test_serve_prints_the_samples_and_commands_that_work_as_pasted(served, tmp_path):
    source = make_test_image(W, H, seed=0)
    for name in ("manifest", "page", "list"):
        assert re.search(rf"^  {name} +http://127\.0\.0\.1:\d+/samples/", served, re.M), served
    cmds = commands(served)
    assert len(cmds) == 4, served
    page = next(c for what, c in cmds.items() if "page" in what)
    bulk = next(c for what, c in cmds.items() if "list" in what)
    listing = next(c for what, c in cmds.items() if "see before" in what)
    manifest = next(c for what, c in cmds.items() if "manifest" in what)

    proc = run([*page, "--largest"], tmp_path)  # page discovery; named after the page, compact
    assert proc.returncode == 0, proc.stderr
    assert "Found in the page: Deep Zoom" in proc.stderr
    assert_same_pixels(read(tmp_path / "The_test_card_Sample_Museum.jpg"), source, "dzi-jpg")

    proc = run(listing, tmp_path)
    assert proc.returncode == 0 and "Plate 3, lower-right quarter" in proc.stdout, proc.stderr
    assert "region 400,300,400,300 of the image: what its source shows, saved by default" in proc.stdout

    bulk_dir = tmp_path / "bulk"
    bulk_dir.mkdir()
    proc = run(bulk, bulk_dir)
    assert proc.returncode == 0 and "4 images, 4 done" in proc.stderr, proc.stderr
    assert sorted(p.name for p in bulk_dir.glob("*.jpg")) == [
        "Deep_Zoom_card.jpg", "Kitchen_Zoomify.jpg", "The_atlas.jpg", "iiif3.jpg"]
    assert_same_pixels(read(bulk_dir / "The_atlas.jpg"), source, "dzi-jpg")  # the manifest's first image
    again = run(bulk, bulk_dir)  # as the comment says: then again
    assert again.returncode == 0 and "0 done, 0 partial, 0 failed, 4 skipped" in again.stderr, again.stderr

    # the manifest asks which image (a terminal): the third, the lower-right quarter
    assert manifest[-1].endswith("/samples/manifest.json")
    term = Term(manifest[-1], cwd=tmp_path)
    term.expect(r"Image \[0\]: ")
    assert "[2] Sample atlas - Plate 3, lower-right quarter (400 x 300 pixels)" in term.text
    term.send("2\r")
    term.expect(r"Level \[0: largest\]: ")
    # the sizes listed are those of the quarter the canvas shows, not of the whole image
    assert "Found the following zoom levels (of the region 400,300,400,300 the source shows):" in term.text
    assert re.search(r"^  0  400 x 300  6 tiles\r?$", term.text, re.M), term.text  # 3 x 2 of 256 px
    term.send("\r")
    assert term.wait() == 0, term.text
    got = read(tmp_path / "Sample_atlas_Plate_3_lower-right_quarter.jpg")
    assert_same_pixels(got, np.ascontiguousarray(source[300:, 400:]), "dzi-jpg")


def test_make_demo_installs_only_the_package_and_make_test_the_rest(tmp_path):
    """What make would run on a fresh machine (``make -n``: nothing is run)."""
    def planned(target: str) -> str:
        proc = subprocess.run(["make", "-n", "-C", str(ROOT), target, f"VENV={tmp_path / 'venv'}"],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    demo = planned("demo")
    installs = [ln for ln in demo.splitlines() if "pip install" in ln and "--upgrade pip" not in ln]
    assert installs == [f"{tmp_path / 'venv'}/bin/python -m pip install --quiet -e ."], installs
    assert "[test]" not in demo and "dezoomify_nb.testing serve" in demo
    assert '-e ".[test]"' in planned("test")
    assert "dezoomify_nb.testing serve" in planned("serve")
