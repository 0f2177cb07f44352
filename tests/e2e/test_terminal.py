"""The command line as a user sees it: the bar and the prompts on a real pseudo-terminal, plain progress
lines in a log (stderr not a terminal), -q, and the messages of common slips (-h, quotes, htp://)."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys

import httpx
import numpy as np
import pytest
from PIL import Image as PILImage

import dezoomify_nb as dz
from dezoomify_nb.cli import main
from dezoomify_nb.progress import PlainProgress, format_duration

from .helpers import read
from .terminal import ROOT, Term, screen_lines

DZI = ('<?xml version="1.0" encoding="UTF-8"?><Image xmlns="http://schemas.microsoft.com/deepzoom/2008" '
       'Format="png" Overlap="0" TileSize="256"><Size Width="600" Height="300"/></Image>')


def png(w: int, h: int, value: int) -> bytes:
    out = io.BytesIO()
    PILImage.new("RGB", (w, h), (value, value, value)).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def odd_tile_dzi(server):
    """A 600x300 Deep Zoom image (3 x 2 tiles) whose tile (1, 0) is 208 pixels wide: a warning mid-download."""
    files = {"image.dzi": DZI}
    for c, w in enumerate((256, 256, 88)):
        for r, h in enumerate((256, 44)):
            files[f"image_files/10/{c}_{r}.png"] = png(208 if (c, r) == (1, 0) else w, h, 40 * (c + 3 * r))
    return server.serve_files("/terminal-dzi/", files) + "/image.dzi"


def test_a_warning_is_written_above_the_bar_never_into_it(odd_tile_dzi, tmp_path):
    term = Term("-i", "200ms", "--largest", odd_tile_dzi, tmp_path / "o.png")
    assert term.wait(60) == 0, term.text
    lines = screen_lines(term.text)
    warnings = [ln for ln in lines if "is 208x256" in ln]
    assert len(warnings) == 1, term.text
    assert warnings[0].startswith("warning: tile (1, 0) is 208x256"), term.text  # its own line, no bar in it
    assert "%|" in term.text and "6/6" in lines[-3], lines  # the bar was drawn and ends complete
    assert lines[-2].startswith("Image successfully saved to "), lines
    assert read(tmp_path / "o.png").shape == (300, 600, 3)


@pytest.fixture
def manifest(server):
    b = server.base_url
    canvases = [{"id": f"{b}/c{i}", "type": "Canvas", "width": 1000, "height": 700, "label": {"en": [f"Page {i}"]},
                 "items": [{"id": f"{b}/p{i}", "type": "AnnotationPage", "items": [{
                     "id": f"{b}/a{i}", "type": "Annotation", "motivation": "painting", "target": f"{b}/c{i}",
                     "body": {"id": f"{b}/iiif3/full/max/0/default.jpg", "type": "Image",
                              "service": [{"id": f"{b}/iiif3", "type": "ImageService3", "profile": "level1"}]}}]}]}
                for i in (1, 2, 3)]
    doc = {"@context": "http://iiif.io/api/presentation/3/context.json", "id": f"{b}/terminal-m/manifest.json",
           "type": "Manifest", "label": {"en": ["Book"]}, "items": canvases}
    return server.serve_files("/terminal-m/", {"manifest.json": json.dumps(doc)}) + "/manifest.json"


def test_prompts_take_the_default_on_enter_and_ask_again_with_the_range(server, manifest, tmp_path):
    term = Term("-i", "0ms", manifest, tmp_path / "o.png")
    term.expect(r"Image \[0\]: $")
    term.send("5\r")
    term.expect(r"'5' is not a valid number: enter a number from 0 to 2, or Enter for 0")
    term.expect(r"Image \[0\]: $")
    term.send("1\r")
    term.expect(r"Level \[0: largest\]: $")
    term.send("x\r")
    term.expect(r"'x' is not a valid number: enter a number from 0 to 1, or Enter for 0")
    term.send("\r")  # Enter: the default, the largest
    assert term.wait(60) == 0, term.text
    lines = screen_lines(term.text)
    assert "Found the following zoom levels:" in lines
    levels = lines[lines.index("Found the following zoom levels:") + 1:][:2]
    assert levels == ["  0  1000 x 700  4 tiles", "  1   500 x 350  1 tile"]  # aligned columns
    assert read(tmp_path / "o.png").shape == (700, 1000, 3)


def test_the_level_prompt_sums_up_the_tiny_levels_which_can_still_be_chosen(server, tmp_path):
    term = Term("-i", "0ms", server.url("dzi-png"), tmp_path / "o.png")  # Deep Zoom: down to 1 x 1
    term.expect(r"Level \[0: largest\]: $")
    lines = screen_lines(term.text)
    levels = lines[lines.index("Found the following zoom levels:") + 1:][:5]
    assert levels == ["   0  1000 x 700  12 tiles", "   1   500 x 350   4 tiles", "   2   250 x 175   1 tile",
                      "   3   125 x 88    1 tile", "  … 7 smaller levels (4-10, down to 1 x 1)"], levels
    term.send("5\r")
    assert term.wait(60) == 0, term.text
    np.testing.assert_array_equal(read(tmp_path / "o.png"), server.level_image("dzi-png", 5))


def test_ctrl_c_at_a_prompt_ends_cleanly_on_its_own_line(server, tmp_path):
    term = Term("-i", "0ms", server.url("iiif3"), tmp_path / "o.png")
    term.expect(r"Level \[0: largest\]: $")
    term.send("\x03")
    assert term.wait(30) == 130
    lines = [ln for ln in screen_lines(term.text) if ln]
    assert lines[-2:] == ["Level [0: largest]: ^C", "error: interrupted"] or lines[-2:] == [
        "Level [0: largest]:", "error: interrupted"], lines
    assert "Traceback" not in term.text and not (tmp_path / "o.png").exists()


def _cli(*args: object, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dezoomify_nb", *map(str, args)], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})


def test_a_log_gets_plain_progress_lines_not_carriage_returns(server, tmp_path):
    proc = _cli("-i", "100ms", "--largest", server.url("zoomify"), tmp_path / "o.png",
                env={"DEZOOMIFY_NB_PROGRESS_EVERY": "0.3"})
    assert proc.returncode == 0, proc.stderr
    assert "\r" not in proc.stderr and "%|" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("tiles ")]
    assert len(lines) >= 3, proc.stderr  # 12 tiles at ~10/s: one line every 0.3 s, and the last
    for ln in lines[:-1]:
        assert re.fullmatch(r"tiles \d+/12 \(\d+ %\) \d+\.\d MB [\d.]+ tiles/s ETA \d+s", ln), ln
    assert re.fullmatch(r"tiles 12/12 \(100 %\) \d+\.\d MB [\d.]+ tiles/s in \d+s", lines[-1]), lines[-1]
    level = dz.open(server.url("zoomify")).levels[0]  # the MB are the tiles' bytes as served
    served = sum(len(httpx.get(level.tile_url(c, r)).content) for c, r in level.tile_positions())
    assert lines[-1].split()[4] == f"{served / 1e6:.1f}"
    done = [int(ln.split()[1].split("/")[0]) for ln in lines]
    assert done == sorted(done) and 0 < done[0] < 12


def test_progress_none_and_quiet(server, tmp_path):
    proc = _cli("--progress", "none", "-i", "0ms", "--largest", server.url("dzi-png"), tmp_path / "a.png")
    assert proc.returncode == 0 and "tiles" not in proc.stderr and "successfully saved" in proc.stderr
    proc = _cli("-q", "-i", "0ms", server.url("dzi-png"), tmp_path / "b.png")  # no "No level chosen" either
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert read(tmp_path / "b.png").shape == (700, 1000, 3)
    server.missing("terminal-quiet")
    proc = _cli("-q", "-i", "0ms", server.base_url + "/terminal-quiet/image.dzi", tmp_path / "c.png")
    assert proc.returncode == 1
    assert [ln.split(":")[0] for ln in proc.stderr.splitlines()] == ["error", "hint"], proc.stderr


def test_plain_progress_line_format():
    now = [100.0]
    out = io.StringIO()
    bar = PlainProgress(4096, every=5, file=out, clock=lambda: now[0])
    now[0] += 29.0
    bar.nbytes = 18_200_000
    bar.update(1200)
    now[0] += 1
    bar.update(1)  # within 5 s of the last line: nothing
    assert out.getvalue().splitlines() == ["tiles 1200/4096 (29 %) 18.2 MB 41 tiles/s ETA 1m10s"]
    assert [format_duration(s) for s in (0.4, 59, 61, 3600 + 5 * 60)] == ["0s", "59s", "1m01s", "1h05m"]


def test_lone_h_says_what_it_is(capsys):
    assert main(["-h"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == ["error: -h is --max-height PX (as in dezoomify-rs) and needs a number of pixels",
                                "hint: for help use --help or -?"]
    assert main(["-h", "http://127.0.0.1:1/x.dzi"]) == 2  # the URL is not taken as the height
    assert "-h is --max-height" in capsys.readouterr().err


@pytest.mark.parametrize(("url", "error", "hint"), [
    ('"http://example.org/info.json"', "error: INPUT_URI is wrapped in quotes: \"http://example.org/info.json\"",
     "hint: Remove the quotes that were pasted with it: dezoomify-nb 'http://example.org/info.json'"),
    ("\u201chttp://example.org/info.json\u201d", "error: INPUT_URI is wrapped in quotes", "hint: Remove the quotes"),
    ("htp://example.org/info.json", "error: unknown URL scheme 'htp:' in htp://example.org/info.json",
     "hint: Did you mean http://example.org/info.json ?"),
    ("htps://example.org/x", "error: unknown URL scheme 'htps:'", "hint: Did you mean https://example.org/x ?"),
    ("http:/127.0.0.1/x.dzi", "error: INPUT_URI 'http:/127.0.0.1/x.dzi': 'http:' must be followed by two slashes",
     "hint: Write it http://127.0.0.1/x.dzi"),
])
def test_pasted_quotes_and_mistyped_schemes(capsys, url, error, hint):
    assert main([url]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and err[0].startswith(error) and err[1].startswith(hint), err
    assert "No such file" not in err[0]


def test_missing_tiles_are_not_told_to_retry(server, capsys, tmp_path):
    server.missing("TileGroup0/1-1-1.jpg")
    assert main(["-i", "0ms", "-r", "0", "--largest", server.url("zoomify"), str(tmp_path / "f.png")]) == 1
    err = capsys.readouterr().err
    assert "hint: The server says these tiles do not exist (HTTP 404/410), so retrying will not help" in err
    assert "--retries" not in err
    assert (read(tmp_path / "f.png")[256:512, 256:512] == 0).all() and np.any(read(tmp_path / "f.png"))


# --- see before you fetch ----------------------------------------------------------------------------------

def _tile_requests(server) -> list[str]:
    return [r for r in server.requests if not r.endswith((".xml", ".dzi", "info.json", ".json", ".txt"))]


def test_list_shows_every_image_and_level_and_fetches_no_tile(server, manifest, capsys):
    server.reset_requests()
    assert main(["--list", manifest]) == 0
    out = capsys.readouterr().out
    assert _tile_requests(server) == []
    blocks = out.strip().split("\n\n")
    assert len(blocks) == 3
    assert blocks[1].splitlines() == [
        "[1] Book - Page 2",
        f"    iiif  {server.base_url}/iiif3/info.json",
        "    level        size  tiles  tile     format",
        "        0  1000 x 700      4  512x512  png",
        "        1   500 x 350      1  512x512  png",
    ]


def test_json_for_an_image_and_for_bulk(server, capsys, tmp_path):
    server.reset_requests()
    assert main(["--json", server.url("zoomify")]) == 0
    doc = json.loads(capsys.readouterr().out)
    (image,) = doc["images"]
    assert doc["input"] == server.url("zoomify") and image["dezoomer"] == "zoomify"
    assert (image["width"], image["height"]) == (1000, 700)
    assert [(lv["width"], lv["height"], lv["tiles"], lv["tile_format"]) for lv in image["levels"]] == [
        (1000, 700, 12, "jpg"), (500, 350, 4, "jpg")]
    listing = tmp_path / "list.txt"
    listing.write_text(f"{server.url('dzi-png')} First\n{server.base_url}/nowhere/image.dzi Broken\n")
    assert main(["--bulk", str(listing), "--json"]) == 1  # one entry cannot be read: said, and exit 1
    doc = json.loads(capsys.readouterr().out)
    assert [im["title"] for im in doc["images"]] == ["First", "Broken"]
    assert doc["images"][0]["levels"][0]["tile_format"] == "png" and doc["images"][0]["dezoomer"] == "deepzoom"
    assert "404" in doc["images"][1]["error"] and doc["images"][1]["levels"] == []
    assert _tile_requests(server) == []


def test_list_dezoomers(capsys):
    assert main(["--list-dezoomers"]) == 0
    out = capsys.readouterr().out
    from dezoomify_nb.registry import list_dezoomers

    names = list(list_dezoomers())
    entries = out.split("\n\n")[1:]
    assert [e.splitlines()[0] for e in entries] == names  # each with what it accepts and an example
    for entry in entries:
        head, *about, example = entry.splitlines()
        assert about and all(ln.startswith("    ") and len(ln) < 120 for ln in about), entry
        assert example.startswith("    e.g. "), entry
    assert main(["--list-dezoomers", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [d["name"] for d in doc] == names and all(d["accepts"] and d["example"] for d in doc)


def test_readme_option_table_lists_every_option():
    from dezoomify_nb.cli import build_parser

    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Command line", 1)[1].split("\n## ", 1)[0]
    table = "\n".join(ln for ln in section.splitlines() if ln.startswith("| `"))
    documented = set(re.findall(r"(?<![\w-])(--?[\w?][\w-]*)", " ".join(re.findall(r"^\| ([^|]*)\|", table, re.M))))
    options = {s for a in build_parser()._actions for s in a.option_strings}
    assert options - documented == set(), "options missing from README's Command line table"
    assert "caps a host at ~20 tiles/s" in section and "use `-i 0`" in section
