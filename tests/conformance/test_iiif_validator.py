"""Our IIIF output tree is a valid Image API 3 level-0 service: the official validator (PyPI
``iiif-validator``, its command-line tool) against the folder served statically from 127.0.0.1, with
``id`` in ``info.json`` edited to the folder's URL as the README tells users to do.

The image is the validator's own test pattern (10×10 squares of known colours, which its ``id_squares``
test checks in ``full/max/0/default.jpg``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import dezoomify_nb as dz
from dezoomify_nb.writers import iiif as iiif_writer
from dezoomify_nb.writers.base import ArraySource
from dezoomify_nb.writers.iiif import IIIFWriter

from .conftest import _missing, require, require_module, run

pytestmark = pytest.mark.conformance

LEVEL0_TESTS = ["info_json", "id_basic", "id_squares", "format_jpg", "size_nofull"]


def squares() -> np.ndarray:
    """The validator's 1000×1000 pattern: square (x, y) of ``colorInfo[x][y]``, 1-px grey grid lines."""
    from iiif_validator.validator import ValidationInfo

    colours = ValidationInfo().colorInfo
    a = np.zeros((1000, 1000, 3), np.uint8)
    for x in range(10):
        for y in range(10):
            a[y * 100 : (y + 1) * 100, x * 100 : (x + 1) * 100] = colours[x][y]
    a[::100, :] = a[:, ::100] = 128
    return a


def validate(srv, folder: Path, tests: list[str]) -> str:
    """Run ``iiif-validate.py`` (API 3.0) on the served ``folder``; returns its report (all must pass)."""
    script = Path(sys.executable).parent / "iiif-validate.py"
    if not script.is_file():
        _missing(f"{script} missing: pip install iiif-validator (the test extra)")
    host = srv.base_url.split("://", 1)[1]
    prefix = str(folder.parent.relative_to(srv.root)).strip(".")
    args = [sys.executable, script, "--server", host, "--identifier", folder.name, "--version", "3.0", "-v"]
    if prefix:
        args += ["--prefix", prefix]
    for t in tests:
        args += ["--test", t]
    out = run(*args, timeout=120)  # exit status = number of failures
    report = out.stdout + out.stderr
    assert report.count(" PASS") == len(tests), report
    return report


def serve_as_readme_says(srv, folder: Path) -> dict:
    """README: serve the folder, then edit ``id`` in ``info.json`` to the folder's URL."""
    info = json.loads((folder / "info.json").read_text())
    info["id"] = srv.url(str(folder.relative_to(srv.root)))
    (folder / "info.json").write_text(json.dumps(info))
    return info


def check_sizes(folder: Path, info: dict) -> None:
    """Every listed size exists as ``full/w,h``, and ``full/max`` is the full size or maxWidth×maxHeight."""
    assert info["sizes"], info
    for s in info["sizes"]:
        with Image.open(folder / f"full/{s['width']},{s['height']}/0/default.jpg") as im:
            assert im.size == (s["width"], s["height"]) and im.format == "JPEG"
    with Image.open(folder / "full/max/0/default.jpg") as im:
        assert im.size == (info.get("maxWidth", info["width"]), info.get("maxHeight", info["height"]))
        assert max((s["width"], s["height"]) for s in info["sizes"]) == im.size


@pytest.fixture(scope="module")
def validator():
    from importlib.metadata import version

    require_module("iiif_validator", lambda m: version("iiif-validator"))


def test_tree_encoded_from_pixels(validator, static_root):
    root, srv = static_root
    folder = root / "encoded" / "squares.iiif"
    folder.parent.mkdir()
    IIIFWriter().write(folder, ArraySource(squares(), strip_height=100), compression=5)
    info = serve_as_readme_says(srv, folder)
    assert "maxWidth" not in info  # 1000 px: max is the full size
    check_sizes(folder, info)
    validate(srv, folder, LEVEL0_TESTS)


def test_tree_of_copied_tiles_from_libvips(validator, static_root, tmp_path):
    """A Deep Zoom tree made by libvips, downloaded to IIIF: its JPEG tiles are copied byte for byte,
    the whole-image files decoded from them."""
    root, srv = static_root
    require("vips")
    Image.fromarray(squares()).save(tmp_path / "squares.png")
    run("vips", "dzsave", tmp_path / "squares.png", root / "vips-squares", "--overlap", "0", "--tile-size", "256",
        "--suffix", ".jpg[Q=95]")
    folder = root / "copied" / "squares.iiif"
    folder.parent.mkdir()
    result = dz.open(srv.url("vips-squares.dzi"), min_interval=0).save(folder, format="iiif", progress=False)
    assert result.ok
    assert (folder / "0,0,256,256/256,256/0/default.jpg").read_bytes() == \
        (root / "vips-squares_files/10/0_0.jpg").read_bytes()
    info = serve_as_readme_says(srv, folder)
    check_sizes(folder, info)
    validate(srv, folder, LEVEL0_TESTS)


def test_large_tree_declares_max_width(validator, static_root, monkeypatch):
    """Past WHOLE_MAX px a side, full/max is the largest level within it, declared by maxWidth/maxHeight."""
    root, srv = static_root
    monkeypatch.setattr(iiif_writer, "WHOLE_MAX", 300)  # 1000 px then counts as large: max is 500×500
    folder = root / "large" / "squares.iiif"
    folder.parent.mkdir()
    IIIFWriter().write(folder, ArraySource(squares(), strip_height=100), compression=5)
    info = serve_as_readme_says(srv, folder)
    assert (info["maxWidth"], info["maxHeight"]) == (500, 500)
    check_sizes(folder, info)
    # id_squares reads the pattern at full size: not for a reduced max
    validate(srv, folder, [t for t in LEVEL0_TESTS if t != "id_squares"])
    # and our own dezoomer still reads the whole pyramid from the tree, tiles included
    image = dz.open(srv.url("large/squares.iiif/info.json"), min_interval=0)
    assert [lv.size for lv in image.levels] == [(1000, 1000), (500, 500)]
