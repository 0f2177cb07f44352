"""Long runs that resume and repair, through the real CLI (a subprocess): OUT.failed.json, --repair,
--no-partial, bulk runs that skip complete outputs (also after a SIGKILL), --redownload, --archive; names."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from e2e.helpers import assert_same_pixels, is_tile, read

from dezoomify_nb.resume import JOURNAL_NAME, append_line

ROOT = Path(__file__).resolve().parents[2]
FAST = ["-i", "0ms", "--retry-delay", "10ms", "-r", "0"]


def cli(*args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dezoomify_nb", *FAST, *map(str, args)], capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=120, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def tiles_asked(server) -> list[str]:
    return [p for p in server.requests if is_tile(p)]


def serve_list(server, text: str) -> str:
    return server.serve_files("/resume/", {"list.txt": text}) + "/list.txt"


def test_partial_download_lists_its_missing_tiles_and_repair_fetches_only_those(server, tmp_path):
    server.missing("/iiif2/0,0,256,256/")  # tile (0, 0): 404
    server.fail("/iiif2/512,256,", times=None, status=500)  # tile (2, 1)
    proc = cli(server.url("iiif2"), "out.png", "-c", "cache", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "Only 10 tiles out of 12" in proc.stderr and "out.png.failed.json" in proc.stderr
    assert "--repair out.png" in proc.stderr  # the hint says how to fetch only those
    doc = json.loads((tmp_path / "out.png.failed.json").read_text())
    assert doc["image_written"] and doc["level"] == 0 and doc["tiles"] == 12 and doc["format"] == "png"
    assert sorted((t["level"], t["col"], t["row"]) for t in doc["failed"]) == [(0, 0, 0), (0, 2, 1)]
    assert all(t["url"].startswith(server.base_url) and "HTTP" in t["error"] for t in doc["failed"])
    assert doc["cache"] == str(tmp_path / "cache")
    holes = read(tmp_path / "out.png")
    assert (holes[:256, :256] == 0).all()

    server.clear_faults()
    server.reset_requests()
    proc = cli("--repair", "out.png", cwd=tmp_path)  # the cache recorded in out.png.failed.json
    assert proc.returncode == 0, proc.stderr
    assert "Repaired:" in proc.stderr and "is complete" in proc.stderr
    assert sorted(tiles_asked(server)) == sorted(t["url"].removeprefix(server.base_url) for t in doc["failed"])
    assert_same_pixels(read(tmp_path / "out.png"), server.level_image("iiif2", 0), "iiif2")
    assert not (tmp_path / "out.png.failed.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "out.png"]  # no temporary left


def test_repair_still_failing_keeps_the_list_and_exits_1(server, tmp_path):
    server.fail("/dzi-png/image_files/10/1_1", times=None, status=503)
    assert cli(server.url("dzi-png"), "d.png", "-c", "c", cwd=tmp_path).returncode == 1
    proc = cli("--repair", "d.png", cwd=tmp_path)
    assert proc.returncode == 1
    assert "1 tiles out of 12 are still missing" in proc.stderr and "hint:" in proc.stderr
    assert len(json.loads((tmp_path / "d.png.failed.json").read_text())["failed"]) == 1


def test_repair_needs_the_tile_cache(server, tmp_path):
    server.missing("/iiif3/0,0,")
    assert cli(server.url("iiif3"), "x.png", cwd=tmp_path).returncode == 1  # no -c
    proc = cli("--repair", "x.png", cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "without a tile cache" in proc.stderr and "hint: Download it again with a tile cache" in proc.stderr
    proc = cli("--repair", "nothing.png", cwd=tmp_path)
    assert proc.returncode == 1 and "no record of missing tiles" in proc.stderr


def test_no_partial_writes_no_image_and_repair_completes_it(server, tmp_path):
    server.missing("/iiif2/256,0,")
    proc = cli("--no-partial", server.url("iiif2"), "n.png", "-c", "cache", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "\nerror: 1 tiles out of 12 could not be downloaded: no image was written" in proc.stderr
    assert not (tmp_path / "n.png").exists()
    doc = json.loads((tmp_path / "n.png.failed.json").read_text())
    assert doc["image_written"] is False and [(t["col"], t["row"]) for t in doc["failed"]] == [(1, 0)]
    server.clear_faults()
    server.reset_requests()
    assert cli("--repair", "n.png", cwd=tmp_path).returncode == 0
    assert tiles_asked(server) == [doc["failed"][0]["url"].removeprefix(server.base_url)]
    assert_same_pixels(read(tmp_path / "n.png"), server.level_image("iiif2", 0), "iiif2")


def test_bulk_rerun_skips_complete_outputs_and_redoes_partial_ones_in_place(server, tmp_path):
    url = serve_list(server, f"{server.url('iiif2')}\n{server.url('dzi-png')} Deep zoom — one\n")
    server.missing("/iiif2/0,0,")
    proc = cli("--bulk", url, "-c", "cache", cwd=tmp_path)
    assert proc.returncode == 1 and "2 images, 1 done, 1 partial, 0 failed" in proc.stderr, proc.stderr
    assert proc.stderr.rstrip().endswith("hint: run the same command again later: complete images are skipped, the "
                                         "others downloaded again in place (with the tile cache, only the tiles "
                                         "still missing are fetched).")
    # names: an untitled IIIF line after its identifier, a titled one in compact form
    assert {p.name for p in tmp_path.glob("*.jpg")} == {"iiif2.jpg", "Deep_zoom_one.jpg"}
    assert (tmp_path / "iiif2.jpg.failed.json").exists()

    server.clear_faults()
    server.reset_requests()
    proc = cli("--bulk", url, "-c", "cache", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "[2/2] Deep zoom — one: skipped, already downloaded" in proc.stderr
    assert "2 images, 1 done, 0 partial, 0 failed, 1 skipped (already downloaded)" in proc.stderr
    assert tiles_asked(server) == ["/iiif2/0,0,256,256/256,256/0/default.png"]  # the missing tile alone
    assert not any("dzi-png" in p for p in server.requests)  # a skipped item is not even opened
    assert {p.name for p in tmp_path.glob("*.jpg")} == {"iiif2.jpg", "Deep_zoom_one.jpg"}  # in place
    assert not (tmp_path / "iiif2.jpg.failed.json").exists()
    assert_same_pixels(read(tmp_path / "iiif2.jpg"), server.level_image("iiif2", 0), "dzi-jpg")

    server.reset_requests()
    proc = cli("--bulk", url, cwd=tmp_path)
    assert proc.returncode == 0 and "0 done, 0 partial, 0 failed, 2 skipped" in proc.stderr
    assert server.requests == ["/resume/list.txt"]

    # a recorded file that changed (here: cut short) is not taken for complete, and not overwritten
    deep = tmp_path / "Deep_zoom_one.jpg"
    deep.write_bytes(deep.read_bytes()[:1000])
    proc = cli("--bulk", url, cwd=tmp_path)
    assert proc.returncode == 0 and "1 done, 0 partial, 0 failed, 1 skipped" in proc.stderr
    assert deep.stat().st_size == 1000
    assert_same_pixels(read(tmp_path / "Deep_zoom_one_0001.jpg"), server.level_image("dzi-png", 0), "dzi-jpg")

    server.reset_requests()
    proc = cli("--bulk", url, "--redownload", "--outfile", "p.png", cwd=tmp_path)
    assert proc.returncode == 0 and "2 done" in proc.stderr
    proc = cli("--bulk", url, "--redownload", "--outfile", "p.png", cwd=tmp_path)  # replaces its own outputs
    assert proc.returncode == 0 and "2 done" in proc.stderr, proc.stderr
    assert sorted(p.name for p in tmp_path.glob("p*.png")) == ["p_0001.png", "p_0002.png"]
    journal = [json.loads(ln) for ln in (tmp_path / JOURNAL_NAME).read_text().splitlines()]
    assert {r["status"] for r in journal} == {"done", "partial"} and all(r["key"] for r in journal)


def test_a_bulk_run_killed_mid_image_is_resumed(server, tmp_path):
    url = serve_list(server, f"{server.url('dzi-png')} First\n{server.url('zoomify')} Second\n")
    server.delay("/zoomify/TileGroup", 0.5)
    proc = subprocess.Popen([sys.executable, "-m", "dezoomify_nb", *FAST, "-n", "2", "--progress", "plain",
                             "--bulk", url], cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    seen = ""
    deadline = time.monotonic() + 60
    assert proc.stderr is not None
    while "[2/2] Second" not in seen and time.monotonic() < deadline:
        seen += proc.stderr.readline()
    time.sleep(0.6)  # some tiles of the second image in
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stderr.close()
    assert "[1/2] saved to 'First.jpg'" in seen, seen
    assert not (tmp_path / "Second.jpg").exists()  # outputs are atomic: at most a hidden temporary
    server.clear_faults()
    server.reset_requests()
    done = cli("--bulk", url, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "[1/2] First: skipped, already downloaded" in done.stderr and "[2/2] saved to 'Second.jpg'" in done.stderr
    assert not any("dzi-png" in p for p in server.requests)
    assert_same_pixels(read(tmp_path / "Second.jpg"), server.level_image("zoomify", 0), "zoomify")


def test_archive_skips_listed_items_wherever_their_outputs_are(server, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    archive = tmp_path / "archive.txt"
    first = f"{server.url('iiif2')} One\n{server.url('iiif3')} Two\n"
    proc = cli("--bulk", serve_list(server, first), "--archive", archive, cwd=a)
    assert proc.returncode == 0, proc.stderr
    assert archive.read_text().splitlines() == [server.url("iiif2"), server.url("iiif3")]
    server.reset_requests()
    longer = serve_list(server, first + f"{server.url('dzi-png')} Three\n")  # the list grew
    proc = cli("--bulk", longer, "--archive", archive, cwd=b)
    assert proc.returncode == 0, proc.stderr
    assert "[1/3] One: skipped, in the download archive" in proc.stderr
    assert sorted(p.name for p in b.iterdir() if not p.name.startswith(".")) == ["Three.jpg"]
    assert not any("iiif" in p for p in server.requests)
    assert archive.read_text().splitlines()[-1] == server.url("dzi-png")
    proc = cli("--archive", archive, server.url("iiif2"), cwd=b)
    assert proc.returncode == 1 and "--archive applies to --bulk runs" in proc.stderr


def test_appends_from_several_processes_stay_whole_lines(tmp_path):
    target = tmp_path / "archive.txt"
    code = ("import sys; from pathlib import Path; from dezoomify_nb.resume import append_line\n"
            "for i in range(300): append_line(Path(sys.argv[1]), f'https://example.org/{sys.argv[2]}/' + 'x' * 2000 + f'/{i}')")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(target), str(n)],
                              env={**os.environ, "PYTHONPATH": str(ROOT)}) for n in range(4)]
    assert all(p.wait(timeout=60) == 0 for p in procs)
    lines = target.read_text().splitlines()
    assert len(lines) == 1200 and len(set(lines)) == 1200
    assert all(ln.startswith("https://example.org/") and len(ln) > 2000 for ln in lines)
    append_line(target, "with\nnewline")
    assert target.read_text().splitlines()[-1] == "with newline"


def test_a_source_found_in_a_page_is_named_after_the_page_in_compact_form(server, tmp_path):
    page = server.serve_files("/museum/", {"object.html": (
        "<html><head><title>The Kitchen — Vermeer, 1658 </title></head><body><script>"
        f"OpenSeadragon({{tileSources: '{server.url('dzi-png')}'}})</script></body></html>")}) + "/object.html"
    proc = cli("-l", page, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["The_Kitchen_Vermeer_1658.jpg"]


def test_names_of_untitled_images():
    from dezoomify_nb.model import image_name
    from dezoomify_nb.writers.naming import compact_title

    assert image_name("https://x.org/iiif/2/btv1b84%2Ff1.tif/info.json") == "btv1b84/f1"
    assert compact_title(image_name("https://x.org/iiif/2/btv1b84%2Ff1.tif/info.json")) == "btv1b84_f1"
    assert image_name("https://gallica.bnf.fr/iiif/ark:/12148/btv1b8451598p/f1/info.json") == "btv1b8451598p_f1"
    assert image_name("https://x.org/iiif/abc123/info.json") == "abc123"
    assert image_name("https://x.org/dzi/duomo.dzi") == "duomo"


def test_python_api_partial_false_and_repair(server, tmp_path):
    import pytest

    import dezoomify_nb as dz

    server.fail("/iiif3/512,0,", times=None, status=500)
    img = dz.open(server.url("iiif3"), cache=tmp_path / "c", min_interval=0, retries=0)
    with pytest.raises(dz.DownloadError) as info:
        img.save(tmp_path / "a.png", partial=False, progress=False)
    assert info.value.path is None and info.value.failed == 1 and "--repair" in info.value.hint
    assert not (tmp_path / "a.png").exists() and (tmp_path / "a.png.failed.json").exists()
    server.clear_faults()
    server.reset_requests()
    result = dz.repair(tmp_path / "a.png", progress=False, min_interval=0)
    assert result.ok and len(tiles_asked(server)) == 1
    assert_same_pixels(read(tmp_path / "a.png"), server.level_image("iiif3", 0), "iiif3")
    assert not (tmp_path / "a.png.failed.json").exists()
