"""``--bulk`` end to end against the loopback server: lists, manifests, naming, failures, summary."""

from __future__ import annotations

import json

import pytest
from e2e.helpers import assert_same_pixels, read

import dezoomify_nb as dz
from dezoomify_nb.bulk import numbered_path, save_all
from dezoomify_nb.cli import main

FAST = ["-i", "0ms", "--retry-delay", "10ms", "-r", "0"]


def run(capsys, *args):
    code = main([*FAST, *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def serve_list(server, text: str, name: str = "list.txt") -> str:
    return server.serve_files("/bulk/", {name: text}) + "/" + name


def manifest(server) -> str:
    b = server.base_url
    doc = {"@type": "sc:Manifest", "label": "Atlas", "sequences": [{"canvases": [
        {"label": f"Plate {i}", "width": 1000, "height": 700, "images": [{"resource": {
            "@id": f"{b}/{kind}/full/full/0/default.jpg", "@type": "dctypes:Image",
            "service": {"@id": f"{b}/{kind}", "@context": "http://iiif.io/api/image/2/context.json"}}}]}
        for i, kind in ((1, "iiif2"), (2, "iiif3"))]}]}
    return server.serve_files("/atlas/", {"manifest.json": json.dumps(doc)}) + "/manifest.json"


def test_list_with_a_failure_continues_and_exits_1(server, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = serve_list(server, f"""# three images, one broken
{server.url("iiif2")}   First image: IIIF, v2
{server.base_url}/nothing/info.json   Broken one

{server.url("dzi-png")}
""")
    code, _, err = run(capsys, "--bulk", url)
    assert code == 1, err
    assert "[1/3] First image: IIIF, v2" in err and "[2/3] Broken one" in err and "[3/3] image" in err
    assert "[2/3] failed" in err
    assert "3 images, 2 done, 0 partial, 1 failed" in err
    # --largest is implied; names come from the titles (compact, safe everywhere)
    assert_same_pixels(read(tmp_path / "First_image_IIIF_v2.jpg"), server.level_image("iiif2", 0), "dzi-jpg")
    assert_same_pixels(read(tmp_path / "image.jpg"), server.level_image("dzi-png", 0), "dzi-jpg")


def test_outfile_gives_numbered_names_and_exit_0(server, capsys, tmp_path):
    url = serve_list(server, f"{server.url('iiif3')}\n{server.url('zoomify')} Kitchen\n", name="images.urls")
    code, _, err = run(capsys, "--bulk", url, tmp_path / "out.png")
    assert code == 0, err
    assert "2 images, 2 done, 0 partial, 0 failed" in err
    assert_same_pixels(read(tmp_path / "out_0001.png"), server.level_image("iiif3", 0), "iiif3")
    assert_same_pixels(read(tmp_path / "out_0002.png"), server.level_image("zoomify", 0), "zoomify")


def test_level_flags_replace_largest(server, capsys, tmp_path):
    url = serve_list(server, f"{server.url('iiif2')}\n{server.url('dzi-png')}\n")
    code, _, err = run(capsys, "--bulk", url, "-w", 600, "--outfile", tmp_path / "small.png")
    assert code == 0, err
    assert_same_pixels(read(tmp_path / "small_0001.png"), server.level_image("iiif2", 1), "iiif2")
    assert_same_pixels(read(tmp_path / "small_0002.png"), server.level_image("dzi-png", 1), "dzi-png")


def test_manifest_as_the_bulk_source_downloads_every_canvas(server, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "--bulk", manifest(server))
    assert code == 0, err
    assert "[1/2] Atlas - Plate 1" in err and "[2/2] Atlas - Plate 2" in err
    assert_same_pixels(read(tmp_path / "Atlas_Plate_1.jpg"), server.level_image("iiif2", 0), "dzi-jpg")
    assert_same_pixels(read(tmp_path / "Atlas_Plate_2.jpg"), server.level_image("iiif3", 0), "dzi-jpg")


def test_list_entry_that_is_a_manifest_takes_its_first_image_or_image_index(server, capsys, tmp_path):
    url = serve_list(server, f"{manifest(server)} The atlas\n")
    code, _, err = run(capsys, "--bulk", url, "--image-index", 1, tmp_path / "a.png")
    assert code == 0, err
    assert_same_pixels(read(tmp_path / "a_0001.png"), server.level_image("iiif3", 0), "iiif3")
    code, _, err = run(capsys, "--bulk", url, tmp_path / "b.png")
    assert_same_pixels(read(tmp_path / "b_0001.png"), server.level_image("iiif2", 0), "iiif2")


def test_partial_download_counts_and_exits_1(server, capsys, tmp_path):
    server.missing("/iiif2/0,0,")
    url = serve_list(server, f"{server.url('iiif2')}\n")
    code, _, err = run(capsys, "--bulk", url, tmp_path / "p.png")
    assert code == 1
    assert "1 images, 0 done, 1 partial, 0 failed" in err
    assert (tmp_path / "p_0001.png").exists()


def test_unnamed_list_and_bad_command_lines(server, capsys, tmp_path):
    url = server.serve_files("/plain/", {"things": f"{server.url('iiif2')} x\n"}) + "/things"
    assert run(capsys, "--bulk", url, tmp_path / "t.png")[0] == 0
    code, _, err = run(capsys, "--bulk", url, server.url("iiif2"), tmp_path / "t.png")
    assert code == 1 and "INPUT_URI and --bulk both given" in err
    code, _, err = run(capsys, "--bulk", serve_list(server, "nonsense\n"))
    assert code == 1 and "On line 1" in err


def test_local_list_with_relative_paths(server, capsys, tmp_path):
    lst = tmp_path / "my-list.txt"
    lst.write_text(f"{server.url('dzi-png')}\nmissing/ImageProperties.xml nope\n")
    code, _, err = run(capsys, "--bulk", lst, tmp_path / "l.png")
    assert code == 1 and "1 done, 0 partial, 1 failed" in err
    assert str(tmp_path / "missing" / "ImageProperties.xml") in err  # resolved against the list's folder


def test_api_save_all(server, tmp_path):
    coll = dz.open(serve_list(server, f"{server.url('iiif2')} One\n{server.url('iiif3')} Two\n"))
    assert isinstance(coll, dz.ImageCollection) and coll.titles == ["One", "Two"]
    lines: list[str] = []
    summary = save_all(coll, directory=tmp_path, max_width=500, progress=False, report=lines.append)
    assert summary.ok and summary.done == 2 and lines[-1].endswith("2 done, 0 partial, 0 failed")
    assert_same_pixels(read(tmp_path / "Two.jpg"), server.level_image("iiif3", 1), "dzi-jpg")
    again = coll.save_all(tmp_path, progress=False, zoom_level=1, report=lines.append)  # complete: skipped
    assert again.ok and (again.done, again.skipped) == (0, 2) and lines[-1].endswith("2 skipped (already downloaded)")
    assert coll.save_all(tmp_path, progress=False, zoom_level=1, redownload=True, report=lines.append).done == 2
    assert not (tmp_path / "One_0001.jpg").exists()  # replaced in place, not saved beside


@pytest.mark.parametrize("outfile,number,expected", [("out.jpg", 1, "out_0001.jpg"), ("out", 12, "out_0012"),
                                                     ("dir/a.b.png", 3, "dir/a.b_0003.png"), ("x.", 2, "x_0002")])
def test_numbered_path(outfile, number, expected):
    assert str(numbered_path(outfile, number)) == expected
