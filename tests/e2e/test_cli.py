"""The command line, end to end against the loopback server."""

import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest

from dezoomify_nb.cli import main

from .helpers import assert_same_pixels, is_tile, read

FAST = ["-i", "0ms", "--retry-delay", "10ms"]


def run(capsys, *args):
    code = main([*FAST, *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("kind", ["zoomify", "dzi-png", "iiif2", "iiif3", "generic"])
def test_largest(server, capsys, tmp_path, kind):
    code, _, err = run(capsys, "--largest", server.url(kind), tmp_path / "o.png")
    assert code == 0, err
    assert "Image successfully saved" in err
    assert_same_pixels(read(tmp_path / "o.png"), server.level_image(kind, 0), kind)


def test_max_width_jpeg(server, capsys, tmp_path):
    code, _, err = run(capsys, "-w", 600, server.url("iiif3"), tmp_path / "small.jpg")
    assert code == 0, err
    assert_same_pixels(read(tmp_path / "small.jpg"), server.level_image("iiif3", 1), "dzi-jpg")
    assert read(tmp_path / "small.jpg").shape == (350, 500, 3)


def test_max_height_and_zoom_level(server, capsys, tmp_path):
    assert run(capsys, "-h", 200, server.url("dzi-png"), tmp_path / "h.png")[0] == 0
    assert read(tmp_path / "h.png").shape == (175, 250, 3)
    assert run(capsys, "--zoom-level", 1, server.url("zoomify"), tmp_path / "z.png")[0] == 0
    assert_same_pixels(read(tmp_path / "z.png"), server.level_image("zoomify", 1), "zoomify")


def test_no_level_flag_when_not_interactive_takes_the_largest(server, capsys, tmp_path, monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: False, raising=False)
    code, _, err = run(capsys, server.url("dzi-png"), tmp_path / "d.png")
    assert code == 0 and "downloading the largest" in err
    assert read(tmp_path / "d.png").shape == (700, 1000, 3)


def test_interactive_level_picker(server, capsys, tmp_path, monkeypatch):
    import io

    fake = io.StringIO("x\n1\n")
    fake.isatty = lambda: True
    monkeypatch.setattr("sys.stdin", fake)
    code, _, err = run(capsys, server.url("iiif2"), tmp_path / "i.png")
    assert code == 0, err
    assert "Found the following zoom levels" in err and "'x' is not a valid number" in err
    assert read(tmp_path / "i.png").shape == (350, 500, 3)


def test_generic_forced(server, capsys, tmp_path):
    template = server.base_url + "/generic/tile_{{X}}_{{Y}}.png"
    code, _, err = run(capsys, "--dezoomer", "generic", template, tmp_path / "g.png")
    assert code == 0, err
    np.testing.assert_array_equal(read(tmp_path / "g.png"), server.level_image("generic", 0))


def test_failed_tiles_exit_1_and_still_write(server, capsys, tmp_path):
    server.missing("TileGroup0/1-1-1.jpg")
    code, _, err = run(capsys, "-r", 0, "--largest", server.url("zoomify"), tmp_path / "f.png")
    assert code == 1
    assert "Only 11 tiles out of 12" in err and "Traceback" not in err
    assert (read(tmp_path / "f.png")[256:512, 256:512] == 0).all()


def test_headers_option(server, capsys, tmp_path):
    code, _, _ = run(capsys, "-H", "X-Api-Key: s3cret", "-H", "Referer: https://museum.example/",
                     "--largest", server.url("iiif3"), tmp_path / "h.png")
    assert code == 0
    tile_headers = [h for p, h in zip(server.requests, server.headers_seen, strict=True) if is_tile(p)]
    assert tile_headers and all(h["X-Api-Key"] == "s3cret" for h in tile_headers)
    assert all(h["Referer"] == "https://museum.example/" for h in tile_headers)


def test_default_output_name_in_cwd(server, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run(capsys, "-l", server.url("iiif2"))[0] == 0
    assert run(capsys, "-l", server.url("iiif2"))[0] == 0
    # an untitled IIIF image is named after its identifier (…/iiif2/info.json), never info.jpg
    assert sorted(p.name for p in tmp_path.iterdir()) == ["iiif2.jpg", "iiif2_0001.jpg"]
    assert run(capsys, "-l", server.url("generic"))[0] == 0  # nothing to name it after
    assert (tmp_path / "dezoomified.png").exists() or (tmp_path / "dezoomified.jpg").exists()


def test_existing_outfile_is_not_overwritten(server, capsys, tmp_path):
    (tmp_path / "x.png").write_bytes(b"precious")
    code, _, err = run(capsys, "-l", server.url("iiif2"), tmp_path / "x.png")
    assert code == 1 and "already exists" in err
    assert (tmp_path / "x.png").read_bytes() == b"precious"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["http://127.0.0.1:9/nothing/info.json"], "error:"),
        (["--dezoomer", "nope", "http://x/"], "unknown dezoomer"),
        (["-l", "/nonexistent/ImageProperties.xml"], "error:"),
    ],
)
def test_errors_are_one_line_with_hint(capsys, args, message, tmp_path):
    code, _, err = run(capsys, *args, tmp_path / "o.png")
    assert code == 1
    assert message in err and "hint:" in err and "Traceback" not in err


def test_nothing_recognised_lists_every_dezoomer(server, capsys, tmp_path):
    base = server.serve_files("/plain/", {"notes.html": "<html><body>Just a page, no image.</body></html>"})
    code, _, err = run(capsys, base + "/notes.html", tmp_path / "o.png")
    assert code == 1
    for name in ("zoomify", "iiif", "deepzoom", "generic"):
        assert f" - {name}:" in err


def test_missing_input_says_so(server, capsys, tmp_path):
    code, _, err = run(capsys, server.base_url + "/nothing-here/info.json", tmp_path / "o.png")
    assert code == 1 and "HTTP 404" in err and "hint:" in err


def test_jpeg_too_large_is_refused_before_download(capsys, tmp_path):
    (tmp_path / "big").mkdir()
    (tmp_path / "big" / "ImageProperties.xml").write_text(
        '<IMAGE_PROPERTIES WIDTH="70000" HEIGHT="300" NUMTILES="1" NUMIMAGES="1" VERSION="1.8" TILESIZE="256" />'
    )
    code, _, err = run(capsys, "-l", tmp_path / "big" / "ImageProperties.xml", tmp_path / "big.jpg")
    assert code == 1 and "65" in err and "PNG" in err
    assert not (tmp_path / "big.jpg").exists()


def test_local_zoomify_folder(server, capsys, tmp_path):
    """A Zoomify tree copied to disk downloads from its local path, tiles relative to it."""
    root = tmp_path / "zoomify"
    with httpx.Client() as client:
        for path in ["ImageProperties.xml"] + [
            f"TileGroup0/{z}-{x}-{y}.jpg" for z, (cols, rows) in [(0, (2, 2)), (1, (4, 3))]
            for x in range(cols) for y in range(rows)
        ]:
            r = client.get(f"{server.base_url}/zoomify/{path}")
            r.raise_for_status()
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_bytes(r.content)
    code, _, err = run(capsys, "-l", root / "ImageProperties.xml", tmp_path / "local.png")
    assert code == 0, err
    assert_same_pixels(read(tmp_path / "local.png"), server.level_image("zoomify", 0), "zoomify")


@pytest.mark.parametrize("transport", ["httpx", "aiohttp"])
def test_transport_option(server, capsys, tmp_path, monkeypatch, transport):
    """``--transport`` picks the HTTP client of every request (metadata and tiles); same pixels."""
    fetch = __import__("dezoomify_nb.net.fetch", fromlist=["fetch"])
    used = []
    real_httpx, real_aiohttp = fetch._get_http, fetch.aio.get

    def with_httpx(*args):
        used.append("httpx")
        return real_httpx(*args)

    async def with_aiohttp(*args):
        used.append("aiohttp")
        return await real_aiohttp(*args)

    monkeypatch.setattr(fetch, "_get_http", with_httpx)
    monkeypatch.setattr(fetch.aio, "get", with_aiohttp)
    code, _, err = run(capsys, "--transport", transport, "--largest", server.url("iiif2"), tmp_path / "t.png")
    assert code == 0, err
    assert_same_pixels(read(tmp_path / "t.png"), server.level_image("iiif2", 0), "iiif2")
    assert set(used) == {transport}
    assert len(used) == len(server.requests) and server.count(is_tile) > 0  # every request the server saw


def test_bad_arguments_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--parallelism", "0", "x"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["--transport", "curl", "x"])
    assert info.value.code == 2


def _exe(name: str) -> str:
    found = Path(sys.executable).with_name(name)
    return str(found) if found.exists() else shutil.which(name) or name


def test_module_and_console_script_are_the_same_cli(server, tmp_path):
    version = subprocess.run([sys.executable, "-m", "dezoomify_nb", "-V"], capture_output=True, text=True, check=True)
    script = subprocess.run([_exe("dezoomify-nb"), "-V"], capture_output=True, text=True, check=True)
    assert version.stdout == script.stdout and version.stdout.startswith("dezoomify-nb ")
    done = subprocess.run(
        [sys.executable, "-m", "dezoomify_nb", "-l", *FAST, server.url("dzi-png"), str(tmp_path / "m.png")],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "tile" in done.stderr  # the progress bar
    np.testing.assert_array_equal(read(tmp_path / "m.png"), server.level_image("dzi-png", 0))
